package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// Sentinel errors. Backends translate their native errors (pgconn codes,
// pebble.ErrNotFound) into these in one place; callers branch with errors.Is.
var (
	// ErrNotFound: the entity, version, draft or record does not exist (or is
	// invisible to the read, like a draft-only entity to a bare-uuid read).
	ErrNotFound = errors.New("index: not found")
	// ErrConflict: the write contradicts the state (a taken name, deleting an
	// entity that is linked, a second sweep). *ConflictError carries details.
	ErrConflict = errors.New("index: conflict")
	// ErrInvalid: the request itself is wrong (unknown link target, cycle,
	// bad cursor, bad limit, wrong kind). The API answers 400.
	ErrInvalid = errors.New("index: invalid")
	// ErrBlobMissing: a version names a hash that is not a live blob (never
	// stored, still pending, or claimed by a sweep). The API answers 404 and the
	// client uploads the bytes again. *BlobMissingError names the hash.
	ErrBlobMissing = errors.New("index: blob not stored")
	// ErrBlobBusy: an upload names a blob that a sweep is deleting; retry after
	// the sweep has forgotten it (moments later).
	ErrBlobBusy = errors.New("index: blob being deleted")
	// ErrUnavailable: the engine does not answer (connection lost, timeout).
	// The API answers 503.
	ErrUnavailable = errors.New("index: unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("index: closed")
)

// ConflictError is an ErrConflict with the entity that holds what was asked
// for (the uuid holding a name, the unit that links a target).
type ConflictError struct {
	Reason string
	Holder uuid.UUID // uuid.Nil when there is none to name
}

func (e *ConflictError) Error() string {
	if e.Holder != uuid.Nil {
		return fmt.Sprintf("index: conflict: %s (held by %s)", e.Reason, e.Holder)
	}
	return "index: conflict: " + e.Reason
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// BlobMissingError is an ErrBlobMissing naming the hash.
type BlobMissingError struct{ Hash cas.Hash }

func (e *BlobMissingError) Error() string {
	return "index: blob not stored: " + e.Hash.String()
}

// Is makes errors.Is(err, ErrBlobMissing) true.
func (e *BlobMissingError) Is(target error) bool { return target == ErrBlobMissing }

// Page limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ListOptions select one page of a list.
type ListOptions struct {
	// Cursor continues a list from the NextCursor of the previous page; empty
	// starts at the beginning. A cursor that does not parse is ErrInvalid.
	Cursor string
	// Limit sizes the page: 0 means DefaultLimit; more than MaxLimit or less
	// than 0 is ErrInvalid.
	Limit int
	// Name, when HasName, keeps only entities with exactly this name
	// (collection contents only).
	Name    string
	HasName bool
}

// Page is one page of a list. NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// Reader answers every read. Entity lists are ordered by the entity's creation
// (the time of its first version, the draft included) then uuid; history lists
// newest version first. Draft-only entities (no published version) are
// invisible to bare reads (Ref with Version 0 and not Draft), lists, LinkedBy
// and history lists (ErrNotFound for those).
type Reader interface {
	// Kind returns the kind of the entity with this uuid (a draft-only entity
	// too), or ErrNotFound.
	Kind(ctx context.Context, id uuid.UUID) (Kind, error)

	Collection(ctx context.Context, id uuid.UUID, version int64) (Collection, error) // version 0: latest
	Unit(ctx context.Context, ref Ref) (Unit, error)
	Asset(ctx context.Context, ref Ref) (Asset, error)
	// Lookup resolves many refs of any kind at once (the API's resolve and
	// ?expand=links): out[i] answers refs[i], Kind 0 (all nil) when not found.
	// Ref.Draft on a collection is not found.
	Lookup(ctx context.Context, refs []Ref) ([]Entity, error)

	Collections(ctx context.Context, opt ListOptions) (Page[Collection], error)
	CollectionVersions(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Collection], error)
	// Units and Assets list the entities of a collection, latest published
	// version of each; opt.Name filters. ErrNotFound when the collection is not.
	Units(ctx context.Context, collection uuid.UUID, opt ListOptions) (Page[Unit], error)
	Assets(ctx context.Context, collection uuid.UUID, opt ListOptions) (Page[Asset], error)
	UnitVersions(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Unit], error)
	AssetVersions(ctx context.Context, id uuid.UUID, opt ListOptions) (Page[Asset], error)
	// LinkedBy lists the units whose latest published version links to target
	// (a unit or an asset with a published version), pinned or not.
	LinkedBy(ctx context.Context, target uuid.UUID, opt ListOptions) (Page[LinkingUnit], error)

	// Blob returns the registry row of h, or ErrNotFound. It renews nothing.
	Blob(ctx context.Context, h cas.Hash) (Blob, error)
	// Idempotency returns the record stored under key if it has not expired,
	// or ErrNotFound.
	Idempotency(ctx context.Context, key string) (IdempotencyRecord, error)
}

// NewCollection is the first version of a collection.
type NewCollection struct {
	CollectionFields
	GarbageCollect bool
}

// CollectionPatch changes some fields of a collection; nil keeps the latest value.
type CollectionPatch struct {
	Name, Description, Owner, Author, License *string
	GarbageCollect                            *bool
}

// NewUnit is the first version (or the first draft) of a unit.
type NewUnit struct {
	Collection     uuid.UUID
	Name           string // "" for none
	Hash           cas.Hash
	Links          []Link
	GarbageCollect bool
	Draft          bool
}

// UnitChange is a new version or a draft of a unit. Nil fields keep the value
// of the base version: the draft when there is one and a draft is written,
// else the latest published version (API.md, "Omitted is not empty").
type UnitChange struct {
	Hash           cas.Hash
	Name           *string
	Links          *[]Link // nil keeps the links; a pointer to an empty slice removes all
	GarbageCollect *bool
}

// NewAsset is the first version (or the first draft) of an asset.
type NewAsset struct {
	Collection     uuid.UUID
	Name           string
	MediaType      string
	Hash           cas.Hash
	GarbageCollect bool
	Draft          bool
}

// AssetChange is a new version or a draft of an asset; nil fields keep the
// base version's value as for UnitChange.
type AssetChange struct {
	Hash           cas.Hash
	Name           *string
	MediaType      *string
	GarbageCollect *bool
}

// Tx is a write transaction. Its reads see its own writes. Every method checks
// the rules of API.md and returns ErrNotFound, ErrInvalid, ErrConflict or
// ErrBlobMissing without changing anything when they do not hold; the caller
// then returns the error so that Update rolls everything back.
//
// Version sizes come from the blob registry: a version may only name a live
// blob, and naming it keeps the blob from any sweep that has not yet claimed
// it (see package gc for the protocol).
type Tx interface {
	Reader

	CreateCollection(c NewCollection) (Collection, error)
	// UpdateCollection adds a version. A patch that changes nothing creates
	// nothing and returns the latest version with created false.
	UpdateCollection(id uuid.UUID, p CollectionPatch) (c Collection, created bool, err error)
	// DeleteCollection deletes the collection and its versions. While it holds
	// units or assets it is ErrConflict unless recursive; recursive deletes them
	// too, and is still ErrConflict while a unit of another collection (its
	// latest version or draft) links into it.
	DeleteCollection(id uuid.UUID, recursive bool) error

	// CreateUnit creates a unit at version 1, or with only a draft.
	// Names are unique within a collection among units and assets (drafts
	// and draft-only entities hold their names): a taken name is a
	// *ConflictError naming the holder. Links must name existing units or
	// assets (draft-only ones too) of the right kind, and unit links must not
	// close a cycle (A has an edge to B when A's latest version or draft links
	// B); else ErrInvalid.
	CreateUnit(u NewUnit) (Unit, error)
	// CommitUnit adds the next published version, or (draft) creates or
	// replaces the draft. A published version identical to the latest
	// published one (same hash, name, links and flag) creates nothing and
	// returns the latest with created false.
	CommitUnit(id uuid.UUID, c UnitChange, draft bool) (u Unit, created bool, err error)
	// PublishUnitDraft turns the draft into the next numbered version;
	// ErrNotFound when there is no draft.
	PublishUnitDraft(id uuid.UUID) (Unit, error)
	// DeleteUnitDraft deletes the draft; ErrNotFound when there is none.
	DeleteUnitDraft(id uuid.UUID) error

	CreateAsset(a NewAsset) (Asset, error)
	CommitAsset(id uuid.UUID, c AssetChange, draft bool) (a Asset, created bool, err error)
	PublishAssetDraft(id uuid.UUID) (Asset, error)
	DeleteAssetDraft(id uuid.UUID) error

	// DeleteEntity deletes a unit or an asset with all its versions and its
	// draft. ErrConflict (naming the unit) while the latest version or draft of
	// another unit links to it.
	DeleteEntity(id uuid.UUID) error

	// PutIdempotency stores rec. A live record under the same key is
	// ErrConflict, returned by the call or, when the engine sends the
	// record with the commit, by Update (either way nothing is written).
	PutIdempotency(rec IdempotencyRecord) error
}

// Store is an index engine.
type Store interface {
	Reader

	// Update runs fn in a write transaction, committed durably when fn returns
	// nil and rolled back otherwise; Update returns fn's error. fn may be run
	// again when the engine asks for a retry (serialization failure), so it
	// must not have effects outside tx.
	Update(ctx context.Context, fn func(tx Tx) error) error

	// The blob registry (see Blob and BlobState).

	// BeginBlob is called before an upload writes bytes under h: a live blob
	// gets its lease renewed (BlobLive), an absent one becomes pending
	// (BlobPending) with a fresh lease and a new Ticket, a pending one gets
	// its lease renewed (BlobPending, with the Ticket of that registration,
	// which concurrent uploaders of the same bytes share). A deleting one is
	// ErrBlobBusy.
	BeginBlob(ctx context.Context, h cas.Hash) (BlobState, Ticket, error)
	// FinishBlob is called when the bytes under h are durable: a live blob
	// gets a fresh lease; a pending one becomes live with this size and a
	// fresh lease when ticket is the Ticket of its registration.
	// ErrBlobMissing when the row is gone, deleting, or pending under another
	// ticket (a sweep took the registration and someone registered the hash
	// again: the bytes this caller wrote may be gone; upload again).
	FinishBlob(ctx context.Context, h cas.Hash, size int64, ticket Ticket) error
	// RenewBlobs renews the lease of every live blob among hs and returns the
	// rows of those that are live (the others are missing to clients).
	RenewBlobs(ctx context.Context, hs []cas.Hash) (map[cas.Hash]Blob, error)

	// What garbage collection needs: streams, not slices, in ascending hash
	// order where a hash is streamed.

	// Blobs streams every registry row in ascending hash order.
	Blobs(ctx context.Context, fn func(Blob) error) error
	// ReferencedHashes streams, in ascending order and once each, every hash
	// that a stored version (published or draft, of a unit or an asset) names.
	ReferencedHashes(ctx context.Context, fn func(cas.Hash) error) error
	// ExpiredVersions streams the published versions that retention may
	// delete at now: of entities whose latest version (the draft when newer)
	// has GarbageCollect set, superseded (the next version created) before
	// now-retention; never the latest published version, never a draft, never
	// a version pinned by a link of a unit version that is itself kept.
	ExpiredVersions(ctx context.Context, now time.Time, retention time.Duration, fn func(VersionKey) error) error
	// DeleteVersions deletes the given versions, re-checking each against the
	// rules of ExpiredVersions at now (a pin may have appeared); it returns
	// the versions it deleted.
	DeleteVersions(ctx context.Context, now time.Time, retention time.Duration, vs []VersionKey) ([]VersionKey, error)
	// OrphanedAssets streams assets with GarbageCollect set on their latest
	// version that some unit version once linked, that no stored unit
	// version (drafts included) links now, and whose last link went away
	// before cutoff.
	OrphanedAssets(ctx context.Context, cutoff time.Time, fn func(uuid.UUID) error) error
	// DeleteOrphans deletes the given assets, re-checking each; it returns
	// those it deleted.
	DeleteOrphans(ctx context.Context, cutoff time.Time, ids []uuid.UUID) ([]uuid.UUID, error)
	// ClaimBlobs moves to BlobDeleting each hash of hs that no stored version
	// names and whose lease was last renewed before leaseCutoff (pending or
	// live), or that has no row at all (bytes left in the blob store without
	// a registry row: a row is inserted as deleting). The claim records sweep
	// and the engine's wall-clock time (Blob.ClaimedBy, ClaimedAt). It waits
	// for commits that are naming the blob, and returns the rows it claimed.
	ClaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, leaseCutoff time.Time) ([]Blob, error)
	// ReclaimBlobs hands to sweep the deleting rows of hs that another sweep
	// claimed more than olderThan ago on the engine's wall clock (a fresh
	// ClaimedAt, ClaimedBy sweep), and returns them. Rows claimed more
	// recently, by sweep itself, or not deleting are left alone.
	ReclaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, olderThan time.Duration) ([]Blob, error)
	// DeletingBlobs streams the rows in BlobDeleting (a sweep that died left them).
	DeletingBlobs(ctx context.Context, fn func(Blob) error) error
	// ForgetBlobs deletes the rows of hs that are in BlobDeleting under a
	// claim of sweep; the others are left alone.
	ForgetBlobs(ctx context.Context, sweep string, hs []cas.Hash) error

	// TryLockGC takes the one-sweep-at-a-time lock (a PostgreSQL advisory lock
	// across replicas; a process lock embedded) or returns ErrConflict. The
	// returned function releases it.
	TryLockGC(ctx context.Context) (unlock func(), err error)
	PutGCRun(ctx context.Context, run GCRun) error // insert or replace by ID
	// GCRuns returns up to limit runs, newest first (started_at, then id),
	// beginning after the run whose ID is after ("": from the newest). An
	// unknown after is ErrNotFound.
	GCRuns(ctx context.Context, limit int, after string) ([]GCRun, error)
	GCRun(ctx context.Context, id string) (GCRun, error)
	// DeleteExpiredIdempotency removes records that expired before now.
	DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int, error)

	// Ping says whether the engine answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Options configure a backend.
type Options struct {
	// Now is the clock for created_at, leases and expiries; nil is time.Now.
	// Tests move it forward to exercise retention and leases.
	Now func() time.Time
}

// Clock returns o.Now or time.Now.
func (o Options) Clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Identity is implemented by engines that record the store id binding the
// index to its blob store (DESIGN.md, invariant 6). It is optional: callers
// find it by type assertion, and an engine without it cannot be checked.
type Identity interface {
	// StoreID returns the recorded store id, "" when none is recorded.
	StoreID(ctx context.Context) (string, error)
	// BindStoreID records id when no id is recorded and returns the id
	// recorded afterwards: id, or the one found (two processes binding at
	// once agree on the first).
	BindStoreID(ctx context.Context, id string) (string, error)
	// ReplaceStoreID records id whatever was recorded before; "" removes
	// the record. It is the operator's explicit rebinding.
	ReplaceStoreID(ctx context.Context, id string) error
}
