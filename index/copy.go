package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// Copying an index to another engine (blockstore copy) needs what the
// Store interface does not give: an entity's whole stored history with its
// numbers, times and entity-level state, and a write that stores such a
// history with its uuids, numbers and times as they are. Exporter and
// Importer are that capability; engines implement both and callers find
// them by type assertion. They pass indextest.RunCopy.

// ErrDiverged: an import found the destination's entity differing from the
// history given where a copy never changes it (a published version with
// other content, another kind, another collection or creation time). The
// destination is not a copy of that source, or was written to since.
var ErrDiverged = errors.New("index: destination differs from the source")

// History is one entity as a copy moves it: its identity, the entity-level
// state the rules depend on, and every version it stores.
type History struct {
	Kind       Kind
	ID         uuid.UUID
	Collection uuid.UUID // units and assets; uuid.Nil for a collection
	// CreatedAt is the entity's creation (its first version, a draft
	// included): lists order by it.
	CreatedAt time.Time
	// EverLinked and LastUnlinked are the orphan tracking of an asset (see
	// "Orphans" in doc.go); LastUnlinked is zero when no link went away.
	EverLinked   bool
	LastUnlinked time.Time
	// Versions are the published versions in ascending number (with gaps
	// where retention deleted some), then the draft (Number 0) if any.
	Versions []VersionRecord
}

// VersionRecord is one stored version of any kind; the fields a kind does
// not have are zero.
type VersionRecord struct {
	Number    int64 // 0: the draft
	CreatedAt time.Time
	// SupersededAt is the created_at of the next published version (what
	// retention counts from); zero for the latest and the draft. It is
	// stored state, not content: Equal ignores it, an import updates it.
	SupersededAt   time.Time
	GarbageCollect bool
	Name           string   // a collection's name too
	Hash           cas.Hash // units and assets
	Size           int64
	MediaType      string // assets
	Links          []Link // units: normalized, kinds filled in
	// Collections only.
	Description, Owner, Author, License string
}

// Equal reports whether v and w are the same version: every field but
// SupersededAt, times to the nanosecond.
func (v VersionRecord) Equal(w VersionRecord) bool {
	return v.Number == w.Number && v.CreatedAt.Equal(w.CreatedAt) && v.GarbageCollect == w.GarbageCollect &&
		v.Name == w.Name && v.Hash == w.Hash && v.Size == w.Size && v.MediaType == w.MediaType &&
		SameLinks(v.Links, w.Links) && v.Description == w.Description && v.Owner == w.Owner &&
		v.Author == w.Author && v.License == w.License
}

// Published returns the published versions, ascending.
func (h *History) Published() []VersionRecord {
	if d := h.Draft(); d != nil {
		return h.Versions[:len(h.Versions)-1]
	}
	return h.Versions
}

// Draft returns the draft, or nil.
func (h *History) Draft() *VersionRecord {
	if n := len(h.Versions); n > 0 && h.Versions[n-1].Number == 0 {
		return &h.Versions[n-1]
	}
	return nil
}

// Latest returns the latest published version, or nil (draft-only).
func (h *History) Latest() *VersionRecord {
	if p := h.Published(); len(p) > 0 {
		return &p[len(p)-1]
	}
	return nil
}

// RetentionGC is the flag retention follows: the latest published
// version's, or the draft's when the draft was written after it.
func (h *History) RetentionGC() bool {
	l, d := h.Latest(), h.Draft()
	if d != nil && (l == nil || d.CreatedAt.After(l.CreatedAt)) {
		return d.GarbageCollect
	}
	return l != nil && l.GarbageCollect
}

// HeldNames returns the names the entity holds in its collection: those of
// its latest published version and its draft, non-empty, once each.
// Collections hold none.
func (h *History) HeldNames() []string {
	if h.Kind == KindCollection {
		return nil
	}
	var out []string
	for _, v := range []*VersionRecord{h.Latest(), h.Draft()} {
		if v != nil && v.Name != "" && !slices.Contains(out, v.Name) {
			out = append(out, v.Name)
		}
	}
	return out
}

// Hashes returns the distinct hashes the versions name, in version order.
func (h *History) Hashes() []cas.Hash {
	var out []cas.Hash
	if h.Kind == KindCollection {
		return nil
	}
	for _, v := range h.Versions {
		if !slices.Contains(out, v.Hash) {
			out = append(out, v.Hash)
		}
	}
	return out
}

// Truncate returns h with every time truncated to d: an engine that keeps
// times at a coarser precision (PostgreSQL: microseconds) stores and
// compares what it can hold. The versions are copied; h is not changed.
func (h History) Truncate(d time.Duration) History {
	tr := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.UTC().Truncate(d)
	}
	h.CreatedAt, h.LastUnlinked = tr(h.CreatedAt), tr(h.LastUnlinked)
	vs := make([]VersionRecord, len(h.Versions))
	for i, v := range h.Versions {
		v.CreatedAt, v.SupersededAt = tr(v.CreatedAt), tr(v.SupersededAt)
		vs[i] = v
	}
	h.Versions = vs
	return h
}

// Check reports (ErrInvalid) a history that no engine could have stored:
// versions out of order, a draft of a collection, a collection member
// without a collection, links on a version that is not a unit's.
func (h *History) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: history of %s %s: %s", ErrInvalid, h.Kind, h.ID, fmt.Sprintf(format, args...))
	}
	switch h.Kind {
	case KindCollection:
		if h.Collection != uuid.Nil {
			return bad("a collection in a collection")
		}
	case KindUnit, KindAsset:
		if h.Collection == uuid.Nil {
			return bad("no collection")
		}
	default:
		return bad("unknown kind")
	}
	if h.ID == uuid.Nil || len(h.Versions) == 0 {
		return bad("no uuid or no version")
	}
	prev := int64(0)
	for i, v := range h.Versions {
		switch {
		case v.Number == 0 && i != len(h.Versions)-1:
			return bad("the draft is not last")
		case v.Number == 0 && h.Kind == KindCollection:
			return bad("a collection has a draft")
		case v.Number < 0 || v.Number != 0 && v.Number <= prev:
			return bad("version %d after %d", v.Number, prev)
		case len(v.Links) > 0 && h.Kind != KindUnit:
			return bad("links on a %s", h.Kind)
		}
		for _, l := range v.Links {
			if l.Kind != KindUnit && l.Kind != KindAsset || l.Version < 0 {
				return bad("link to %s of kind %s, pin %d", l.Target, l.Kind, l.Version)
			}
		}
		if v.Number > 0 {
			prev = v.Number
		}
	}
	return nil
}

// Exporter streams an index's entities with their whole history.
type Exporter interface {
	// Export calls fn with every entity that has a stored version:
	// collections first, in creation order, then each collection's units
	// and then its assets, in creation order. It reads a page at a time, not
	// one snapshot: an entity written during the export may or may not be
	// seen (a later export sees it). fn runs outside the engine's reads and
	// may take its time.
	Export(ctx context.Context, fn func(History) error) error
	// Entities streams the kind and uuid of every entity, in no order
	// promised (a copy finds those its source no longer has).
	Entities(ctx context.Context, fn func(Kind, uuid.UUID) error) error
}

// ImportResult says what one Import changed.
type ImportResult struct {
	Created  bool // the entity was new
	Written  int  // versions written: published versions added, a draft added or replaced
	Removed  int  // versions removed: published versions the history lacks, a draft it lacks
	Metadata bool // entity-level state changed (orphan tracking, superseded times)
}

// Changed reports whether the import changed anything.
func (r ImportResult) Changed() bool {
	return r.Created || r.Written > 0 || r.Removed > 0 || r.Metadata
}

// Importer stores histories as they are, and records which store an index
// was copied from.
type Importer interface {
	// Import makes the entity h.ID equal to h, in one transaction: it
	// creates the entity when it is absent, adds the published versions it
	// lacks and removes those h lacks (retention deleted them at the
	// source), adds, replaces or removes the draft, and sets the
	// entity-level state and the superseded times. Versions present and
	// Equal are left alone, so a second Import of the same history changes
	// nothing. A published version present with other content, or an entity
	// of another kind, collection or creation time, is ErrDiverged and
	// changes nothing.
	//
	// The rules an engine keeps for new writes hold for what Import stores,
	// except the ones about other entities: every hash h names must be a
	// live blob in this store's registry (*BlobMissingError otherwise; a
	// copy registers blobs before it imports) whose size is the version's;
	// a collection member's collection must exist (ErrNotFound); the names
	// it holds must be free (*ConflictError naming the holder). Link targets
	// need not exist yet (a copy imports a unit before the newer units it
	// links), and no cycle check runs (the source kept the graph acyclic).
	// Times are stored at the engine's precision (see History.Truncate).
	Import(ctx context.Context, h History) (ImportResult, error)
	// ImportGroup imports hs as Import does, all in one transaction, the
	// names the entities hold released first: entities that swapped names
	// at the source, which no order of single imports can move.
	ImportGroup(ctx context.Context, hs []History) ([]ImportResult, error)

	// CopySource returns the source recorded by SetCopySource, "" when none.
	CopySource(ctx context.Context) (string, error)
	// SetCopySource records that this index is (being made) a copy of the
	// store named source.
	SetCopySource(ctx context.Context, source string) error
}

// ImportPlan is what an Import changes in the versions of one entity.
type ImportPlan struct {
	// Insert holds indexes into the history's Versions to store: those
	// absent, and a draft that replaces another.
	Insert []int
	// Remove holds indexes into the stored versions to delete: published
	// versions the history lacks, and a draft it lacks or replaces.
	Remove []int
	// Supersede holds indexes into the history's Versions that are stored
	// with another superseded time.
	Supersede []int
}

// PlanImport compares h's versions with have, those stored (any order),
// and returns what an import changes; ErrDiverged when a published version
// is stored with other content.
func PlanImport(h *History, have []VersionRecord) (ImportPlan, error) {
	var p ImportPlan
	byNumber := make(map[int64]int, len(have))
	for i, v := range have {
		byNumber[v.Number] = i
	}
	want := make(map[int64]bool, len(h.Versions))
	for i, v := range h.Versions {
		want[v.Number] = true
		j, ok := byNumber[v.Number]
		switch {
		case !ok:
			p.Insert = append(p.Insert, i)
		case v.Number == 0 && !have[j].Equal(v):
			// Drafts change: the stored one is replaced.
			p.Remove = append(p.Remove, j)
			p.Insert = append(p.Insert, i)
		case !have[j].Equal(v):
			return ImportPlan{}, fmt.Errorf("%w: version %d of %s %s differs from the source's", ErrDiverged, v.Number, h.Kind, h.ID)
		case !have[j].SupersededAt.Equal(v.SupersededAt):
			p.Supersede = append(p.Supersede, i)
		}
	}
	for j, v := range have {
		if !want[v.Number] {
			p.Remove = append(p.Remove, j)
		}
	}
	return p, nil
}
