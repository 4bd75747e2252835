package indextest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Opener opens an empty store with opt for one test; it closes the store
// with t.Cleanup. Close must tolerate a second call (the suite closes some
// stores itself).
type Opener func(t *testing.T, opt index.Options) index.Store

// Run runs the conformance suite against the stores open returns. Each
// subtest opens its own empty store, with a Clock from NewClock(Epoch) as
// opt.Now.
func Run(t *testing.T, open func(t *testing.T, opt index.Options) index.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Collections", collectionTests},
		{"Units", unitTests},
		{"Assets", assetTests},
		{"Drafts", draftTests},
		{"Names", nameTests},
		{"Links", linkTests},
		{"LinkedBy", linkedByTests},
		{"Delete", deleteTests},
		{"Lookup", lookupTests},
		{"Pagination", paginationTests},
		{"Blobs", blobTests},
		{"GC", gcTests},
		{"Idempotency", idempotencyTests},
		{"Transactions", txTests},
		{"Concurrency", concurrencyTests},
		{"Changes", changeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					// Subtests run in parallel (up to go test -parallel):
					// each has a store of its own, and opening one may be
					// slow (PostgreSQL creates a database).
					t.Parallel()
					tc.run(newEnv(t, open))
				})
			}
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	run  func(e *env)
}

// env is what a subtest works with: its own store and clock, and helpers
// that fail the test on unexpected errors.
type env struct {
	t     *testing.T
	ctx   context.Context
	s     index.Store
	clock *Clock
	seq   atomic.Int64
	// tickets holds the Ticket of the last registration of each hash.
	tickets sync.Map
}

// begin is BeginBlob, remembering the ticket for finish.
func (e *env) begin(h cas.Hash) (index.BlobState, error) {
	st, tk, err := e.s.BeginBlob(e.ctx, h)
	if err == nil {
		e.tickets.Store(h, tk)
	}
	return st, err
}

// finish is FinishBlob under the ticket of the last begin of h (0 when none).
func (e *env) finish(h cas.Hash, size int64) error {
	tk, _ := e.tickets.Load(h)
	t, _ := tk.(index.Ticket)
	return e.s.FinishBlob(e.ctx, h, size, t)
}

func newEnv(t *testing.T, open func(t *testing.T, opt index.Options) index.Store) *env {
	t.Helper()
	clock := NewClock(Epoch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	s := open(t, index.Options{Now: clock.Now})
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	return &env{t: t, ctx: ctx, s: s, clock: clock}
}

// --- blobs --------------------------------------------------------------

// blob registers a new live blob (BeginBlob then FinishBlob) of a unique
// content and returns its hash. Its registered size is len(content)+7 so that
// a store taking sizes from anywhere but the registry shows up.
func (e *env) blob() cas.Hash {
	e.t.Helper()
	h, _ := e.blobSized(-1)
	return h
}

// blobSized registers a new live blob with this size (-1: a size of its own
// choosing) and returns its hash and size.
func (e *env) blobSized(size int64) (cas.Hash, int64) {
	e.t.Helper()
	n := e.seq.Add(1)
	content := fmt.Sprintf("<problem id=%q>%s</problem>", e.t.Name(), strings.Repeat("x", int(n%97)))
	content = fmt.Sprintf("%d:%s", n, content)
	h := cas.Sum([]byte(content))
	if size < 0 {
		size = int64(len(content)) + 7
	}
	e.register(h, size)
	return h, size
}

// register makes h a live blob of size.
func (e *env) register(h cas.Hash, size int64) {
	e.t.Helper()
	st, err := e.begin(h)
	if err != nil {
		e.t.Fatalf("BeginBlob(%s): %v", short(h), err)
	}
	if st != index.BlobPending && st != index.BlobLive {
		e.t.Fatalf("BeginBlob(%s) = %v, want pending or live", short(h), st)
	}
	if err := e.finish(h, size); err != nil {
		e.t.Fatalf("FinishBlob(%s): %v", short(h), err)
	}
}

// pending registers a blob that is begun but not finished.
func (e *env) pending() cas.Hash {
	e.t.Helper()
	h := cas.Sum(fmt.Appendf(nil, "pending %s %d", e.t.Name(), e.seq.Add(1)))
	st, err := e.begin(h)
	if err != nil || st != index.BlobPending {
		e.t.Fatalf("BeginBlob(%s) = %v, %v; want pending", short(h), st, err)
	}
	return h
}

// unregistered returns a hash the registry has never seen.
func (e *env) unregistered() cas.Hash {
	return cas.Sum(fmt.Appendf(nil, "never registered %s %d", e.t.Name(), e.seq.Add(1)))
}

func short(h cas.Hash) string { return h.String()[:12] }

// --- transactions ------------------------------------------------------

// update runs fn in a transaction and returns its error.
func (e *env) update(fn func(tx index.Tx) error) error {
	return e.s.Update(e.ctx, fn)
}

// must runs fn in a transaction and fails the test on an error.
func (e *env) must(what string, fn func(tx index.Tx) error) {
	e.t.Helper()
	if err := e.s.Update(e.ctx, fn); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

func (e *env) collection(name string) index.Collection {
	e.t.Helper()
	var c index.Collection
	e.must("CreateCollection "+name, func(tx index.Tx) (err error) {
		c, err = tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{
			Name: name, Description: "about " + name, Owner: "owner", Author: "author", License: "CC-BY-4.0",
		}})
		return err
	})
	return c
}

func (e *env) createUnit(nu index.NewUnit) index.Unit {
	e.t.Helper()
	if nu.Hash.IsZero() {
		nu.Hash = e.blob()
	}
	var u index.Unit
	e.must("CreateUnit", func(tx index.Tx) (err error) {
		u, err = tx.CreateUnit(nu)
		return err
	})
	return u
}

// unit creates a published unit in coll with these links.
func (e *env) unit(coll uuid.UUID, name string, links ...index.Link) index.Unit {
	e.t.Helper()
	return e.createUnit(index.NewUnit{Collection: coll, Name: name, Links: links})
}

// draftUnit creates a draft-only unit.
func (e *env) draftUnit(coll uuid.UUID, name string, links ...index.Link) index.Unit {
	e.t.Helper()
	return e.createUnit(index.NewUnit{Collection: coll, Name: name, Links: links, Draft: true})
}

func (e *env) createAsset(na index.NewAsset) index.Asset {
	e.t.Helper()
	if na.Hash.IsZero() {
		na.Hash = e.blob()
	}
	var a index.Asset
	e.must("CreateAsset", func(tx index.Tx) (err error) {
		a, err = tx.CreateAsset(na)
		return err
	})
	return a
}

// asset creates a published asset in coll.
func (e *env) asset(coll uuid.UUID, name string) index.Asset {
	e.t.Helper()
	return e.createAsset(index.NewAsset{Collection: coll, Name: name, MediaType: "image/png"})
}

// commitUnit adds a version (or the draft) and fails on an error.
func (e *env) commitUnit(id uuid.UUID, c index.UnitChange, draft bool) (index.Unit, bool) {
	e.t.Helper()
	var u index.Unit
	var created bool
	e.must("CommitUnit", func(tx index.Tx) (err error) {
		u, created, err = tx.CommitUnit(id, c, draft)
		return err
	})
	return u, created
}

// nextUnit commits a new published version of id with a fresh blob,
// keeping everything else.
func (e *env) nextUnit(id uuid.UUID) index.Unit {
	e.t.Helper()
	u, created := e.commitUnit(id, index.UnitChange{Hash: e.blob()}, false)
	if !created {
		e.t.Fatalf("CommitUnit(%s) with a new hash: created = false", id)
	}
	return u
}

func (e *env) commitAsset(id uuid.UUID, c index.AssetChange, draft bool) (index.Asset, bool) {
	e.t.Helper()
	var a index.Asset
	var created bool
	e.must("CommitAsset", func(tx index.Tx) (err error) {
		a, created, err = tx.CommitAsset(id, c, draft)
		return err
	})
	return a, created
}

// setLinks commits a new published version of unit id with these links.
func (e *env) setLinks(id uuid.UUID, links ...index.Link) index.Unit {
	e.t.Helper()
	if links == nil {
		links = []index.Link{}
	}
	u, _ := e.commitUnit(id, index.UnitChange{Hash: e.blob(), Links: &links}, false)
	return u
}

func (e *env) deleteEntity(id uuid.UUID) error {
	return e.update(func(tx index.Tx) error { return tx.DeleteEntity(id) })
}

// --- reads -------------------------------------------------------------

func (e *env) getUnit(ref index.Ref) index.Unit {
	e.t.Helper()
	u, err := e.s.Unit(e.ctx, ref)
	if err != nil {
		e.t.Fatalf("Unit(%s): %v", ref, err)
	}
	return u
}

func (e *env) getAsset(ref index.Ref) index.Asset {
	e.t.Helper()
	a, err := e.s.Asset(e.ctx, ref)
	if err != nil {
		e.t.Fatalf("Asset(%s): %v", ref, err)
	}
	return a
}

func (e *env) getBlob(h cas.Hash) index.Blob {
	e.t.Helper()
	b, err := e.s.Blob(e.ctx, h)
	if err != nil {
		e.t.Fatalf("Blob(%s): %v", short(h), err)
	}
	return b
}

// --- assertions ----------------------------------------------------------

// wantErr fails unless errors.Is(err, target).
func (e *env) wantErr(what string, err, target error) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// wantOK fails on an error.
func (e *env) wantOK(what string, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// wantHolder fails unless err is a *ConflictError naming holder.
func (e *env) wantHolder(what string, err error, holder uuid.UUID) {
	e.t.Helper()
	var ce *index.ConflictError
	if !errors.As(err, &ce) {
		e.t.Fatalf("%s: error %v, want a *index.ConflictError held by %s", what, err, holder)
	}
	if !errors.Is(err, index.ErrConflict) {
		e.t.Fatalf("%s: errors.Is(%v, ErrConflict) = false", what, err)
	}
	if ce.Holder != holder {
		e.t.Fatalf("%s: conflict held by %s, want %s (%v)", what, ce.Holder, holder, err)
	}
}

// wantBlobMissing fails unless err is a *BlobMissingError naming h.
func (e *env) wantBlobMissing(what string, err error, h cas.Hash) {
	e.t.Helper()
	if !errors.Is(err, index.ErrBlobMissing) {
		e.t.Fatalf("%s: error %v, want ErrBlobMissing", what, err)
	}
	var bm *index.BlobMissingError
	if !errors.As(err, &bm) {
		e.t.Fatalf("%s: error %v is not a *index.BlobMissingError", what, err)
	}
	if bm.Hash != h {
		e.t.Fatalf("%s: BlobMissingError names %s, want %s", what, short(bm.Hash), short(h))
	}
}

// within fails unless t is in [from, to] (the clock readings around a write).
func (e *env) within(what string, got, from, to time.Time) {
	e.t.Helper()
	if got.Before(from) || got.After(to) {
		e.t.Fatalf("%s: time %s not within [%s, %s]: the store must take times from Options.Now (microsecond precision)",
			what, got.UTC().Format(time.RFC3339Nano), from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
}

// sameLinks compares link lists, nil and empty alike.
func sameLinks(a, b []index.Link) bool {
	return len(a) == 0 && len(b) == 0 || index.SameLinks(a, b)
}

func (e *env) wantLinks(what string, got, want []index.Link) {
	e.t.Helper()
	if !sameLinks(got, want) {
		e.t.Fatalf("%s: links\n got %v\nwant %v", what, fmtLinks(got), fmtLinks(want))
	}
}

func fmtLinks(ls []index.Link) string {
	var b strings.Builder
	b.WriteString("[")
	for i, l := range ls {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%s@%d", l.Kind, l.Target.String()[:8], l.Version)
	}
	b.WriteString("]")
	return b.String()
}

// wantUnit compares every field of two unit versions.
func (e *env) wantUnit(what string, got, want index.Unit) {
	e.t.Helper()
	if got.ID != want.ID || got.Collection != want.Collection || got.Name != want.Name ||
		got.Version != want.Version || !got.CreatedAt.Equal(want.CreatedAt) || got.Hash != want.Hash ||
		got.Size != want.Size || got.GarbageCollect != want.GarbageCollect || !sameLinks(got.Links, want.Links) {
		e.t.Fatalf("%s:\n got %s\nwant %s", what, fmtUnit(got), fmtUnit(want))
	}
}

func fmtUnit(u index.Unit) string {
	return fmt.Sprintf("{id %s coll %s name %q v%d at %s hash %s size %d gc %v links %s}",
		u.ID, u.Collection, u.Name, u.Version, u.CreatedAt.UTC().Format(time.RFC3339Nano), short(u.Hash), u.Size,
		u.GarbageCollect, fmtLinks(u.Links))
}

func (e *env) wantAsset(what string, got, want index.Asset) {
	e.t.Helper()
	if got.ID != want.ID || got.Collection != want.Collection || got.Name != want.Name ||
		got.MediaType != want.MediaType || got.Version != want.Version || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.Hash != want.Hash || got.Size != want.Size || got.GarbageCollect != want.GarbageCollect {
		e.t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func (e *env) wantCollection(what string, got, want index.Collection) {
	e.t.Helper()
	if got.ID != want.ID || got.Version != want.Version || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.GarbageCollect != want.GarbageCollect || got.CollectionFields != want.CollectionFields {
		e.t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// --- lists -----------------------------------------------------------------

// pages reads a whole list with page size limit (0: the default), checking
// that every page but the last is full, that the last page carries no
// cursor and is empty only when the whole list is.
func pages[T any](e *env, what string, base index.ListOptions, limit int, list func(index.ListOptions) (index.Page[T], error)) []T {
	e.t.Helper()
	size := limit
	if size == 0 {
		size = index.DefaultLimit
	}
	opt := base
	opt.Limit = limit
	opt.Cursor = ""
	var out []T
	for i := 0; ; i++ {
		if i > 100000 {
			e.t.Fatalf("%s: more than 100000 pages: the cursor does not advance", what)
		}
		p, err := list(opt)
		if err != nil {
			e.t.Fatalf("%s: page %d (limit %d): %v", what, i, limit, err)
		}
		if len(p.Items) > size {
			e.t.Fatalf("%s: page %d has %d items, limit %d", what, i, len(p.Items), size)
		}
		if p.NextCursor != "" && len(p.Items) != size {
			e.t.Fatalf("%s: page %d has %d items and a cursor: only the last page may be short", what, i, len(p.Items))
		}
		if p.NextCursor == "" && len(p.Items) == 0 && i > 0 {
			e.t.Fatalf("%s: page %d is empty: the page before it was the last and must carry no cursor", what, i)
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		opt.Cursor = p.NextCursor
	}
}

func unitIDs(us []index.Unit) []uuid.UUID {
	out := make([]uuid.UUID, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func assetIDs(as []index.Asset) []uuid.UUID {
	out := make([]uuid.UUID, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func collectionIDs(cs []index.Collection) []uuid.UUID {
	out := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func (e *env) wantIDs(what string, got, want []uuid.UUID) {
	e.t.Helper()
	if len(got) != len(want) {
		e.t.Fatalf("%s: got %d items %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			e.t.Fatalf("%s: item %d is %s, want %s\n got %v\nwant %v", what, i, got[i], want[i], got, want)
		}
	}
}

func (e *env) wantVersions(what string, got, want []int64) {
	e.t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Fatalf("%s: versions %v, want %v", what, got, want)
	}
}

func unitVersions(us []index.Unit) []int64 {
	out := make([]int64, len(us))
	for i, u := range us {
		out[i] = u.Version
	}
	return out
}

func assetVersions(as []index.Asset) []int64 {
	out := make([]int64, len(as))
	for i, a := range as {
		out[i] = a.Version
	}
	return out
}

func collectionVersions(cs []index.Collection) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.Version
	}
	return out
}

// descending returns n, n-1, …, 1.
func descending(n int64) []int64 {
	out := make([]int64, 0, n)
	for v := n; v >= 1; v-- {
		out = append(out, v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// unitLink and assetLink build links with the kind filled in, as the store
// returns them.
func unitLink(id uuid.UUID, version int64) index.Link {
	return index.Link{Target: id, Kind: index.KindUnit, Version: version}
}

func assetLink(id uuid.UUID, version int64) index.Link {
	return index.Link{Target: id, Kind: index.KindAsset, Version: version}
}

const (
	time1h = time.Hour
	time1d = 24 * time.Hour
)

// errStop is what the suite's stream callbacks return to stop a stream.
var errStop = errors.New("indextest: stop")
