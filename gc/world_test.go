package gc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// An engine opens an empty index for a test; every engine test runs on each.
type engine struct {
	name string
	open func(tb testing.TB, opt index.Options) index.Store
}

var (
	// peers maps an index.Store to a function opening another handle on the
	// same index (another replica), for engines that have one.
	peers     sync.Map
	enginesMu sync.Mutex
	engines   = []engine{{name: "pebble", open: openPebble}, {name: "postgres", open: openPostgres}}
)

func openPebble(tb testing.TB, opt index.Options) index.Store {
	s, err := pebbleindex.Open("", pebbleindex.Options{Options: opt, InMemory: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(tb testing.TB, opt index.Options) index.Store {
	url := testenv.NewDatabase(tb)
	open := func() index.Store {
		s, err := pgindex.Open(context.Background(), url, opt)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	peers.Store(s, open)
	tb.Cleanup(func() { peers.Delete(s) })
	return s
}

// world is an index engine and a directory blob store with a test clock.
type world struct {
	t     testing.TB
	ctx   context.Context
	clk   *indextest.Clock
	idx   index.Store
	dir   *dirstore.Store
	store *cas.Store
	coll  uuid.UUID
}

func forEachEngine(t *testing.T, fn func(t *testing.T, w *world)) {
	enginesMu.Lock()
	list := append([]engine(nil), engines...)
	enginesMu.Unlock()
	for _, e := range list {
		t.Run(e.name, func(t *testing.T) {
			clk := indextest.NewClock(indextest.Epoch)
			fn(t, newWorld(t, e, clk.Now, clk))
		})
	}
}

func newWorld(t testing.TB, e engine, now func() time.Time, clk *indextest.Clock) *world {
	idx := e.open(t, index.Options{Now: now})
	dir, err := dirstore.Open(t.TempDir(), dirstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := cas.New(dir, cas.Options{})
	t.Cleanup(func() { store.Close() })
	w := &world{t: t, ctx: context.Background(), clk: clk, idx: idx, dir: dir, store: store}
	w.coll = w.collection("c")
	return w
}

func (w *world) now() time.Time { return w.clk.Peek() }

func (w *world) update(what string, fn func(tx index.Tx) error) {
	w.t.Helper()
	if err := w.idx.Update(w.ctx, fn); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *world) collection(name string) uuid.UUID {
	w.t.Helper()
	var id uuid.UUID
	w.update("create collection", func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: name}})
		id = c.ID
		return err
	})
	return id
}

// upload stores data the way refs does: register, write, finish.
func (w *world) upload(data []byte) cas.Hash {
	w.t.Helper()
	h, err := uploadBlob(w.ctx, w.idx, w.store, data)
	if err != nil {
		w.t.Fatal(err)
	}
	return h
}

var errGaveUp = errors.New("upload: gave up")

// uploadBlob registers, writes and finishes one blob, starting again when a
// sweep takes it in between (as a client would), a bounded number of times.
func uploadBlob(ctx context.Context, idx index.Store, store *cas.Store, data []byte) (cas.Hash, error) {
	h := cas.Sum(data)
	for attempt := 0; attempt < 200; attempt++ {
		state, ticket, err := idx.BeginBlob(ctx, h)
		if errors.Is(err, index.ErrBlobBusy) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return h, fmt.Errorf("begin blob: %w", err)
		}
		if state == index.BlobLive {
			return h, nil
		}
		if _, err := store.Put(ctx, bytes.NewReader(data), cas.PutOptions{Expected: &h}); err != nil {
			return h, fmt.Errorf("put blob: %w", err)
		}
		err = idx.FinishBlob(ctx, h, int64(len(data)), ticket)
		if errors.Is(err, index.ErrBlobMissing) {
			continue
		}
		if err != nil {
			return h, fmt.Errorf("finish blob: %w", err)
		}
		return h, nil
	}
	return h, errGaveUp
}

func (w *world) data(tag string) []byte {
	return []byte(fmt.Sprintf("<bytes of %s, %s>", tag, uuid.NewString()))
}

// asset creates an asset whose versions have these bytes, in order.
func (w *world) asset(gcFlag bool, versions ...[]byte) uuid.UUID {
	w.t.Helper()
	var id uuid.UUID
	for i, d := range versions {
		h := w.upload(d)
		w.update("asset version", func(tx index.Tx) error {
			if i == 0 {
				a, err := tx.CreateAsset(index.NewAsset{Collection: w.coll, MediaType: "application/octet-stream", Hash: h, GarbageCollect: gcFlag})
				id = a.ID
				return err
			}
			_, _, err := tx.CommitAsset(id, index.AssetChange{Hash: h, GarbageCollect: &gcFlag}, false)
			return err
		})
	}
	return id
}

func (w *world) assetVersion(id uuid.UUID, data []byte, draft bool) {
	w.t.Helper()
	h := w.upload(data)
	w.update("asset version", func(tx index.Tx) error {
		_, _, err := tx.CommitAsset(id, index.AssetChange{Hash: h}, draft)
		return err
	})
}

func (w *world) unit(gcFlag bool, data []byte, links []index.Link, draft bool) uuid.UUID {
	w.t.Helper()
	h := w.upload(data)
	var id uuid.UUID
	w.update("create unit", func(tx index.Tx) error {
		u, err := tx.CreateUnit(index.NewUnit{Collection: w.coll, Hash: h, Links: links, GarbageCollect: gcFlag, Draft: draft})
		id = u.ID
		return err
	})
	return id
}

func (w *world) unitVersion(id uuid.UUID, data []byte, links []index.Link, draft bool) {
	w.t.Helper()
	h := w.upload(data)
	w.update("unit version", func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(id, index.UnitChange{Hash: h, Links: &links}, draft)
		return err
	})
}

// hasBytes reports whether the blob store holds data, intact.
func (w *world) hasBytes(data []byte) bool {
	w.t.Helper()
	if in, ok := w.inlineBytes(cas.Sum(data)); ok {
		if !bytes.Equal(in, data) {
			w.t.Fatalf("inline bytes of %s differ", cas.Sum(data))
		}
		return true
	}
	got, err := w.store.ReadAll(w.ctx, cas.Sum(data), 1<<20)
	if errors.Is(err, cas.ErrNotFound) {
		return false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		w.t.Fatalf("bytes of %s differ", cas.Sum(data))
	}
	return true
}

// row returns the registry row of data's hash.
func (w *world) row(data []byte) (index.Blob, bool) {
	w.t.Helper()
	b, err := w.idx.Blob(w.ctx, cas.Sum(data))
	if errors.Is(err, index.ErrNotFound) {
		return b, false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return b, true
}

// stored says whether data is both registered and stored; it fails the test
// when only one of the two holds, unless half is allowed.
func (w *world) stored(data []byte) bool {
	w.t.Helper()
	_, row := w.row(data)
	b := w.hasBytes(data)
	if row != b {
		w.t.Fatalf("blob %s: registry row %v, bytes %v", cas.Sum(data), row, b)
	}
	return b
}

func (w *world) version(kind index.Kind, id uuid.UUID, v int64) bool {
	w.t.Helper()
	var err error
	switch kind {
	case index.KindAsset:
		_, err = w.idx.Asset(w.ctx, index.Ref{ID: id, Version: v, Draft: v == 0})
	case index.KindUnit:
		_, err = w.idx.Unit(w.ctx, index.Ref{ID: id, Version: v, Draft: v == 0})
	}
	if errors.Is(err, index.ErrNotFound) {
		return false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return true
}

// collector returns a Collector on the world. Unless the test says
// otherwise, the mass-delete guard is off (small worlds are mostly garbage)
// and the delete bound is short (a resumed claim waits that long).
func (w *world) collector(opt Options) *Collector {
	opt.Now = w.now
	return New(w.idx, w.store, testOptions(opt))
}

func testOptions(opt Options) Options {
	if opt.MaxDeleteShare == 0 {
		opt.MaxDeleteShare = 1
	}
	if opt.DeleteBound == 0 {
		opt.DeleteBound = 2 * time.Second
	}
	return opt
}

func (w *world) sweep(c *Collector, req Request) Report {
	w.t.Helper()
	rep, err := c.Sweep(w.ctx, req)
	if err != nil {
		w.t.Fatalf("sweep: %v", err)
	}
	return rep
}

// counts returns how many registry rows and stored blobs there are.
func (w *world) counts() (rows, blobs int) {
	w.t.Helper()
	if err := w.idx.Blobs(w.ctx, func(index.Blob) error { rows++; return nil }); err != nil {
		w.t.Fatal(err)
	}
	if err := w.store.Walk(w.ctx, func(cas.Info) error { blobs++; return nil }); err != nil {
		w.t.Fatal(err)
	}
	return rows, blobs
}

// checkReferencedStored fails when a hash a stored version names has no
// bytes: the invariant the whole package keeps.
func (w *world) checkReferencedStored() {
	w.t.Helper()
	err := w.idx.ReferencedHashes(w.ctx, func(h cas.Hash) error {
		if _, ok := w.inlineBytes(h); ok {
			return nil
		}
		if _, err := w.store.Stat(w.ctx, h); err != nil {
			return fmt.Errorf("referenced blob %s: %w", h, err)
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

func touch(t testing.TB, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// inlineBytes returns the bytes of h when the index keeps them (inline
// blobs, index.InlineReader).
func (w *world) inlineBytes(h cas.Hash) ([]byte, bool) {
	w.t.Helper()
	r, ok := w.idx.(index.InlineReader)
	if !ok {
		return nil, false
	}
	got, err := r.InlineBlobs(w.ctx, []cas.Hash{h})
	if err != nil {
		w.t.Fatal(err)
	}
	b, ok := got[h]
	return b, ok
}
