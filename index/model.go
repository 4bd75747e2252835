package index

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// Kind says what an entity is. Every UUID has exactly one kind, stored with it,
// so resolving a bare UUID never needs a search.
type Kind uint8

const (
	KindCollection Kind = 1
	KindUnit       Kind = 2
	KindAsset      Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindCollection:
		return "collection"
	case KindUnit:
		return "unit"
	case KindAsset:
		return "asset"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind parses "collection", "unit" or "asset".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "collection":
		return KindCollection, nil
	case "unit":
		return KindUnit, nil
	case "asset":
		return KindAsset, nil
	}
	return 0, fmt.Errorf("%w: unknown kind %q", ErrInvalid, s)
}

// Ref names one version of an entity: the latest published version
// (Version 0, Draft false), version N (Version N), or the draft (Draft true).
type Ref struct {
	ID      uuid.UUID
	Version int64
	Draft   bool
}

// Latest is the Ref of id's latest published version.
func Latest(id uuid.UUID) Ref { return Ref{ID: id} }

// String formats the ref as "uuid", "uuid@N" or "uuid@draft".
func (r Ref) String() string {
	switch {
	case r.Draft:
		return r.ID.String() + "@draft"
	case r.Version > 0:
		return r.ID.String() + "@" + strconv.FormatInt(r.Version, 10)
	}
	return r.ID.String()
}

// ParseRef parses "uuid", "uuid@N" (N a positive integer) or "uuid@draft".
// Errors wrap ErrInvalid.
func ParseRef(s string) (Ref, error) {
	id, ver, found := strings.Cut(s, "@")
	u, err := ParseUUID(id)
	if err != nil {
		return Ref{}, err
	}
	r := Ref{ID: u}
	if !found {
		return r, nil
	}
	if ver == "draft" {
		r.Draft = true
		return r, nil
	}
	n, err := ParseVersion(ver)
	if err != nil {
		return Ref{}, err
	}
	r.Version = n
	return r, nil
}

// ParseVersion parses a positive decimal version number (no sign, no leading
// zeros, at most 2^53 so that JSON clients read it exactly).
func ParseVersion(s string) (int64, error) {
	if s == "" || len(s) > 16 || s[0] == '0' {
		return 0, fmt.Errorf("%w: version %q is not a positive integer", ErrInvalid, s)
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: version %q is not a positive integer", ErrInvalid, s)
		}
		n = n*10 + int64(s[i]-'0')
	}
	if n > 1<<53 {
		return 0, fmt.Errorf("%w: version %q is too large", ErrInvalid, s)
	}
	return n, nil
}

// ParseUUID parses the canonical 36-character RFC 4122 form, in either case.
// Errors wrap ErrInvalid.
func ParseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, fmt.Errorf("%w: %q is not a UUID", ErrInvalid, s)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: %q is not a UUID", ErrInvalid, s)
	}
	return u, nil
}

// Link is one edge from a unit version to a unit or an asset.
type Link struct {
	Target uuid.UUID
	// Kind is KindUnit or KindAsset. Writers may leave it zero; the index fills
	// it in from the target (and rejects a kind that does not match).
	Kind Kind
	// Version pins the link to that version of the target; 0 follows the
	// target's latest published version.
	Version int64
}

// CollectionFields are a collection's metadata.
type CollectionFields struct {
	Name, Description, Owner, Author, License string
}

// Collection is one version of a collection. Collections have no drafts.
type Collection struct {
	ID             uuid.UUID
	Version        int64
	CreatedAt      time.Time
	GarbageCollect bool
	CollectionFields
}

// Unit is one version of a unit: a pointer to its OLX blob and its links.
type Unit struct {
	ID         uuid.UUID
	Collection uuid.UUID
	Name       string
	Version    int64 // 0 for the draft
	CreatedAt  time.Time
	Hash       cas.Hash
	Size       int64
	// Links in the order the writer gave them (duplicates removed, first kept).
	Links          []Link
	GarbageCollect bool
}

// Asset is one version of an asset: a pointer to a blob and its media type.
type Asset struct {
	ID             uuid.UUID
	Collection     uuid.UUID
	Name           string
	MediaType      string
	Version        int64 // 0 for the draft
	CreatedAt      time.Time
	Hash           cas.Hash
	Size           int64
	GarbageCollect bool
}

// Entity is one version of an entity of any kind: exactly one of the pointers
// is set, matching Kind.
type Entity struct {
	Kind       Kind
	Collection *Collection
	Unit       *Unit
	Asset      *Asset
}

// LinkingUnit is a unit whose latest published version links to a target.
type LinkingUnit struct {
	Unit
	// LinkVersion is the pin of the link (0 when unpinned).
	LinkVersion int64
}

// BlobState is where a blob is in its life in the registry.
type BlobState uint8

const (
	// BlobPending: an upload is under way; the bytes may not be complete. A
	// pending blob cannot be referenced, and a sweep leaves it alone until its
	// lease ends.
	BlobPending BlobState = 1
	// BlobLive: the bytes are stored and verified; versions may reference it.
	BlobLive BlobState = 2
	// BlobDeleting: a sweep claimed it; its bytes are being deleted. It never
	// becomes live again: new references fail with ErrBlobMissing, uploads
	// with ErrBlobBusy until the sweep has forgotten it.
	BlobDeleting BlobState = 3
)

func (s BlobState) String() string {
	switch s {
	case BlobPending:
		return "pending"
	case BlobLive:
		return "live"
	case BlobDeleting:
		return "deleting"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Ticket names one registration of a blob (one pending row). FinishBlob
// checks it, so that an upload whose registration a sweep took can never
// turn a later registration of the same hash live before its bytes exist.
type Ticket uint64

// Blob is a row of the blob registry.
type Blob struct {
	Hash      cas.Hash
	Size      int64 // -1 while unknown (pending, or claimed without a row)
	State     BlobState
	CreatedAt time.Time // first registered
	LeasedAt  time.Time // lease last renewed (registration, upload, HEAD, missing-query)
	// ClaimedBy names the sweep that holds a deleting row and ClaimedAt is
	// when it took it, on the engine's wall clock (the delete fence of
	// package gc); empty and zero in the other states.
	ClaimedBy string
	ClaimedAt time.Time
	// Inline: the bytes are kept in the index, not in the blob store (see
	// InlineWriter). Tools that look for a live blob's bytes in the blob
	// store (verify, backup, the store identity check) skip these rows.
	Inline bool
}

// VersionKey names one stored version for GC.
type VersionKey struct {
	Kind    Kind
	ID      uuid.UUID
	Version int64
}

// IdempotencyRecord remembers the answer given to a creating request so that
// a retry with the same key gets the same answer and creates nothing.
type IdempotencyRecord struct {
	// Key is the client's Idempotency-Key scoped by method and path
	// ("POST /api/v1/units\x00key"); at most 1024 bytes.
	Key string
	// Fingerprint identifies the request (method, path, query, body); the same
	// key with another fingerprint is a conflict.
	Fingerprint cas.Hash
	Status      int
	Body        []byte
	ExpiresAt   time.Time
}

// GCRun is a stored report of a sweep, kept as the JSON the API serves.
type GCRun struct {
	ID        string
	StartedAt time.Time
	Report    []byte
}
