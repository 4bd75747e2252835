package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// Kind is what an entity is, as the API writes it.
type Kind string

const (
	KindCollection Kind = "collection"
	KindUnit       Kind = "unit"
	KindAsset      Kind = "asset"
)

// At selects the version a path names: Latest (the bare uuid), Draft, or
// Version(n). The zero value is Latest.
type At struct {
	n     int64
	draft bool
}

var (
	// Latest is the latest published version.
	Latest = At{}
	// Draft is the draft of a unit or an asset.
	Draft = At{draft: true}
)

// Version selects published version n (a positive integer).
func Version(n int64) At { return At{n: n} }

// IsLatest reports whether a is Latest.
func (a At) IsLatest() bool { return a.n == 0 && !a.draft }

// segment is the {n} path parameter: "draft" or the number.
func (a At) segment() (string, error) {
	switch {
	case a.draft:
		return "draft", nil
	case a.n > 0:
		return strconv.FormatInt(a.n, 10), nil
	}
	return "", fmt.Errorf("%w: version %d is not positive", ErrInvalid, a.n)
}

// String is the version part of a ref: "", "@draft" or "@n".
func (a At) String() string {
	switch {
	case a.draft:
		return "@draft"
	case a.n > 0:
		return "@" + strconv.FormatInt(a.n, 10)
	}
	return ""
}

// Ref is the ref string ("uuid", "uuid@N", "uuid@draft") that Resolve takes.
func Ref(id uuid.UUID, at At) string { return id.String() + at.String() }

// Int64 returns a pointer to n: for pinned link versions and the like.
func Int64(n int64) *int64 { return &n }

// String returns a pointer to s: for fields that are omitted when nil.
func String(s string) *string { return &s }

// Bool returns a pointer to b: for fields that are omitted when nil.
func Bool(b bool) *bool { return &b }

// Collection is one version of a collection.
type Collection struct {
	UUID           uuid.UUID `json:"uuid"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Owner          string    `json:"owner"`
	Author         string    `json:"author"`
	License        string    `json:"license"`
	GarbageCollect bool      `json:"garbage_collect"`
}

// NewCollection is the body of POST /api/v1/collections.
type NewCollection struct {
	Name           string `json:"name"`
	Description    string `json:"description"`
	Owner          string `json:"owner"`
	Author         string `json:"author"`
	License        string `json:"license"`
	GarbageCollect bool   `json:"garbage_collect"`
}

// CollectionPatch is the body of PATCH /api/v1/collections/{uuid}: nil
// fields keep their value.
type CollectionPatch struct {
	Name           *string `json:"name,omitempty"`
	Description    *string `json:"description,omitempty"`
	Owner          *string `json:"owner,omitempty"`
	Author         *string `json:"author,omitempty"`
	License        *string `json:"license,omitempty"`
	GarbageCollect *bool   `json:"garbage_collect,omitempty"`
}

// Link is one edge of a unit version. On input Kind may be empty (the server
// fills it in) and Version nil follows the target's latest published
// version; a number pins it. Resolved is set only by UnitExpanded (and is
// nil there too when the target has no such version).
type Link struct {
	Target   uuid.UUID `json:"target"`
	Kind     Kind      `json:"kind,omitempty"`
	Version  *int64    `json:"version"`
	Resolved *Resolved `json:"resolved,omitempty"`
}

// Resolved is what a link points at now (?expand=links).
type Resolved struct {
	UUID    uuid.UUID `json:"uuid"`
	Kind    Kind      `json:"kind"`
	Version *int64    `json:"version"`
	Hash    cas.Hash  `json:"hash"`
	Size    int64     `json:"size"`
}

// Unit is one version of a unit. Version is nil for the draft.
type Unit struct {
	UUID           uuid.UUID `json:"uuid"`
	Collection     uuid.UUID `json:"collection"`
	Name           string    `json:"name"`
	Version        *int64    `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	Hash           cas.Hash  `json:"hash"`
	Size           int64     `json:"size"`
	Links          []Link    `json:"links"`
	GarbageCollect bool      `json:"garbage_collect"`
}

// NewUnit is the body of POST /api/v1/units. OLX must be valid UTF-8 (the
// client refuses it otherwise, as the server would). Links nil sends none.
type NewUnit struct {
	Collection     uuid.UUID `json:"collection"`
	Name           string    `json:"name,omitempty"`
	OLX            string    `json:"olx"`
	Links          []Link    `json:"links,omitempty"`
	GarbageCollect bool      `json:"garbage_collect"`
	Draft          bool      `json:"draft,omitempty"`
}

// UnitChange is the body of a new version or a draft of a unit. Links nil
// keeps the latest version's links; a non-nil empty slice removes them all.
// Nil Name and GarbageCollect keep theirs.
type UnitChange struct {
	OLX            string  `json:"olx"`
	Links          []Link  `json:"links"`
	GarbageCollect *bool   `json:"garbage_collect,omitempty"`
	Name           *string `json:"name,omitempty"`
}

// LinkingUnit is an item of a linked-by list: the linking unit and the pin
// of its link (nil when unpinned).
type LinkingUnit struct {
	Unit
	LinkVersion *int64 `json:"link_version"`
}

// Asset is one version of an asset. Version is nil for the draft.
type Asset struct {
	UUID           uuid.UUID `json:"uuid"`
	Collection     uuid.UUID `json:"collection"`
	Version        *int64    `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	Name           string    `json:"name"`
	MediaType      string    `json:"media_type"`
	Hash           cas.Hash  `json:"hash"`
	Size           int64     `json:"size"`
	GarbageCollect bool      `json:"garbage_collect"`
}

// NewAsset names a new asset. An empty MediaType is
// application/octet-stream.
type NewAsset struct {
	Collection     uuid.UUID
	Name           string
	MediaType      string
	GarbageCollect bool
}

// AssetChange is a new version or a draft of an asset: nil fields keep the
// latest version's value.
type AssetChange struct {
	Name           *string
	MediaType      *string
	GarbageCollect *bool
}

// Content is where the bytes of an asset version come from. With Hash zero,
// Body is streamed in the request. With Hash set, the version points at a
// blob already stored; Body, when set, is what the client uploads again
// (PUT /blobs/{hash}) if the server answers that the blob is gone.
type Content struct {
	Hash cas.Hash
	Body Body
}

// ResolvedItem is one item of a resolve answer: exactly one of Collection,
// Unit and Asset is set, matching Kind. OLX is set for units when it was
// asked for.
type ResolvedItem struct {
	Ref        string
	Kind       Kind
	Collection *Collection
	Unit       *Unit
	Asset      *Asset
	OLX        *string
}

// UnmarshalJSON decodes an item by its "kind".
func (it *ResolvedItem) UnmarshalJSON(b []byte) error {
	var head struct {
		Kind Kind    `json:"kind"`
		Ref  string  `json:"ref"`
		OLX  *string `json:"olx"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	*it = ResolvedItem{Ref: head.Ref, Kind: head.Kind, OLX: head.OLX}
	switch head.Kind {
	case KindCollection:
		it.Collection = new(Collection)
		return json.Unmarshal(b, it.Collection)
	case KindUnit:
		it.Unit = new(Unit)
		return json.Unmarshal(b, it.Unit)
	case KindAsset:
		it.Asset = new(Asset)
		return json.Unmarshal(b, it.Asset)
	}
	return fmt.Errorf("client: resolve item of unknown kind %q", head.Kind)
}

// Resolution is the answer of POST /api/v1/resolve: the items found, in the
// order asked, and the refs not found, in that order too.
type Resolution struct {
	Items   []ResolvedItem `json:"items"`
	Missing []string       `json:"missing"`
}

// GCRequest is the body of POST /api/v1/gc. Zero durations take the
// server's defaults.
type GCRequest struct {
	DryRun    bool
	Retention time.Duration
	Grace     time.Duration
	// RetentionSet and GraceSet send Retention and Grace even when zero (a
	// sweep with no retention or no grace).
	RetentionSet, GraceSet bool
	// Force lets the sweep delete more than the server's
	// --gc-max-delete-share of the stored blobs.
	Force bool
}

func (r GCRequest) body(wait bool) map[string]any {
	m := map[string]any{"dry_run": r.DryRun, "wait": wait}
	if r.Retention > 0 || r.RetentionSet {
		m["retention"] = r.Retention.String()
	}
	if r.Grace > 0 || r.GraceSet {
		m["grace"] = r.Grace.String()
	}
	if r.Force {
		m["force"] = true
	}
	return m
}

// Report is what a sweep did (or would do, on a dry run). FinishedAt is nil
// while it runs; Progress is the server's progress object then, as sent.
type Report struct {
	ID              string          `json:"id"`
	DryRun          bool            `json:"dry_run"`
	StartedAt       time.Time       `json:"started_at"`
	FinishedAt      *time.Time      `json:"finished_at"`
	VersionsDeleted int64           `json:"versions_deleted"`
	AssetsDeleted   int64           `json:"assets_deleted"`
	BlobsDeleted    int64           `json:"blobs_deleted"`
	BytesFreed      int64           `json:"bytes_freed"`
	BlobsKept       int64           `json:"blobs_kept"`
	Phases          []Phase         `json:"phases"`
	Progress        json.RawMessage `json:"progress,omitempty"`
	// Status is running, succeeded or failed; Error says why a sweep
	// failed; Notes say what the figures leave out or why it stopped.
	Status string   `json:"status"`
	Error  string   `json:"error,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Phase is how long one step of a sweep took.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// StoredBlob is the answer of POST /api/v1/blobs.
type StoredBlob struct {
	Hash cas.Hash `json:"hash"`
	Size int64    `json:"size"`
}

// ListOptions select one page of a list. Name filters collection contents
// (units and assets) by exact name when non-nil; other lists ignore it.
type ListOptions struct {
	Cursor string
	Limit  int
	Name   *string
}

// Page is one page of a list; NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}
