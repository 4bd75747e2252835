package refs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
)

// hookedIndex runs a hook before the next Update: a sweep that slips in
// between storing a blob and committing the version that names it.
type hookedIndex struct {
	index.Store
	mu   sync.Mutex
	hook func()
	// idemReads counts the reads of idempotency records outside
	// transactions.
	idemReads atomic.Int64
}

func (h *hookedIndex) Idempotency(ctx context.Context, key string) (index.IdempotencyRecord, error) {
	h.idemReads.Add(1)
	return h.Store.Idempotency(ctx, key)
}

func (h *hookedIndex) beforeNextUpdate(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = f
}

func (h *hookedIndex) Update(ctx context.Context, fn func(tx index.Tx) error) error {
	h.mu.Lock()
	f := h.hook
	h.hook = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return h.Store.Update(ctx, fn)
}

type fixture struct {
	svc   *Service
	idx   *hookedIndex
	blobs *cas.Store
}

func newFixture(tb testing.TB, opt Options) *fixture {
	tb.Helper()
	pidx, err := pebbleindex.Open("", pebbleindex.Options{InMemory: true})
	if err != nil {
		tb.Fatal(err)
	}
	backend, err := dirstore.Open(tb.TempDir(), dirstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	blobs := cas.New(backend, cas.Options{})
	tb.Cleanup(func() {
		pidx.Close()
		blobs.Close()
	})
	idx := &hookedIndex{Store: pidx}
	return &fixture{svc: New(idx, blobs, opt), idx: idx, blobs: blobs}
}

// sweep does what a sweep does to an unreferenced blob: claim, delete the
// bytes, forget the row.
func (f *fixture) sweep(tb testing.TB, h cas.Hash) {
	tb.Helper()
	ctx := context.Background()
	claimed, err := f.idx.Store.ClaimBlobs(ctx, "test-sweep", []cas.Hash{h}, time.Now().Add(time.Hour))
	if err != nil || len(claimed) != 1 {
		tb.Fatalf("claim %s: %v (%d claimed)", h, err, len(claimed))
	}
	if err := f.blobs.Delete(ctx, h); err != nil {
		tb.Fatalf("delete %s: %v", h, err)
	}
	if err := f.idx.Store.ForgetBlobs(ctx, "test-sweep", []cas.Hash{h}); err != nil {
		tb.Fatalf("forget %s: %v", h, err)
	}
}

// asIs renders the result itself, for tests (status 201, or 200 when
// nothing was created).
func asIs[T any](out *T) func(T, bool) (int, []byte, error) {
	return func(v T, created bool) (int, []byte, error) {
		*out = v
		if created {
			return 201, []byte(fmt.Sprint(v)), nil
		}
		return 200, []byte(fmt.Sprint(v)), nil
	}
}

func (f *fixture) collection(tb testing.TB) uuid.UUID {
	tb.Helper()
	var c index.Collection
	if _, err := f.svc.CreateCollection(context.Background(), index.NewCollection{}, Request[index.Collection]{Render: asIs(&c)}); err != nil {
		tb.Fatal(err)
	}
	return c.ID
}

// TestAnnouncedSize: a body of another length than announced stores
// nothing, whether it is shorter or longer, new or stored already.
func TestAnnouncedSize(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	data := bytes.Repeat([]byte("announced "), 1000)
	h := cas.Sum(data)
	for _, size := range []int64{int64(len(data)) - 1, int64(len(data)) + 1} {
		if _, _, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), size); err == nil {
			t.Errorf("PutBlob of %d bytes announced as %d succeeded", len(data), size)
		}
		if _, err := f.svc.AddBlob(ctx, bytes.NewReader(data), size, Request[cas.Info]{Render: asIs(new(cas.Info))}); err == nil {
			t.Errorf("AddBlob of %d bytes announced as %d succeeded", len(data), size)
		}
		c := f.collection(t)
		if _, err := f.svc.CreateAsset(ctx, NewAsset{Collection: c, Content: AssetContent{Body: bytes.NewReader(data), Size: size}},
			Request[index.Asset]{Render: asIs(new(index.Asset))}); err == nil {
			t.Errorf("CreateAsset of %d bytes announced as %d succeeded", len(data), size)
		}
		if _, err := f.blobs.Stat(ctx, h); !errors.Is(err, cas.ErrNotFound) {
			t.Fatalf("a put of the wrong length left bytes: %v", err)
		}
		if _, err := f.svc.BlobInfo(ctx, h); !errors.Is(err, index.ErrNotFound) {
			t.Fatalf("a put of the wrong length is registered: %v", err)
		}
	}
	if _, created, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil || !created {
		t.Fatalf("put announced right: created %v, %v", created, err)
	}
	// Stored already: the body is still read whole and its length checked.
	if _, _, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data))+1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("put of a stored blob announced longer: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestPutBlob(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	data := []byte("some bytes")
	h := cas.Sum(data)
	info, created, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data)))
	if err != nil || !created || info.Size != int64(len(data)) {
		t.Fatalf("first put: %+v %v %v", info, created, err)
	}
	_, created, err = f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data)))
	if err != nil || created {
		t.Fatalf("second put: created %v, %v", created, err)
	}
	// Stored already, but the body is still verified.
	_, _, err = f.svc.PutBlob(ctx, h, strings.NewReader("other bytes"), 0)
	if !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("mismatch on a stored blob: %v", err)
	}
	other := cas.Sum([]byte("never"))
	if _, _, err := f.svc.PutBlob(ctx, other, strings.NewReader("other bytes"), 0); !errors.Is(err, cas.ErrHashMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := f.blobs.Stat(ctx, other); !errors.Is(err, cas.ErrNotFound) {
		t.Fatalf("a mismatched put left bytes: %v", err)
	}
	if _, err := f.svc.BlobInfo(ctx, other); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a mismatched put is live: %v", err)
	}
	missing, err := f.svc.MissingBlobs(ctx, []cas.Hash{other, h, other})
	if err != nil || len(missing) != 1 || missing[0] != other {
		t.Fatalf("missing: %v %v", missing, err)
	}
}

func TestBusyBlobWaitsForTheSweep(t *testing.T) {
	f := newFixture(t, Options{BusyWait: 300 * time.Millisecond})
	ctx := context.Background()
	data := []byte("busy")
	h := cas.Sum(data)
	if _, _, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.idx.Store.ClaimBlobs(ctx, "test-sweep", []cas.Hash{h}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, ErrRetry) || !errors.Is(err, index.ErrBlobBusy) {
		t.Fatalf("put of a blob being deleted: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("gave up after %v, want about the busy wait", d)
	}
	// The sweep ends while the next upload waits: it goes through.
	waiting := make(chan struct{})
	var once sync.Once
	f.svc.onBusy = func(cas.Hash) { once.Do(func() { close(waiting) }) }
	swept := make(chan error, 1)
	go func() {
		<-waiting
		if err := f.blobs.Delete(ctx, h); err != nil {
			swept <- err
			return
		}
		swept <- f.idx.Store.ForgetBlobs(ctx, "test-sweep", []cas.Hash{h})
	}()
	f.svc.opt.BusyWait = 30 * time.Second // the sweep ends long before
	_, created, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data)))
	if serr := <-swept; serr != nil {
		t.Fatalf("ending the sweep: %v", serr)
	}
	if err != nil || !created {
		t.Fatalf("put after the sweep: created %v, %v", created, err)
	}
	if b, err := f.blobs.ReadAll(ctx, h, 100); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("bytes after the sweep: %q %v", b, err)
	}
}

func TestCommitStoresOLXAgainAfterASweep(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	c := f.collection(t)
	olx := []byte("<swept/>")
	h := cas.Sum(olx)
	f.idx.beforeNextUpdate(func() { f.sweep(t, h) })
	var u index.Unit
	ans, err := f.svc.CreateUnit(ctx, NewUnit{Collection: c, OLX: olx}, Request[index.Unit]{Render: asIs(&u)})
	if err != nil || ans.Status != 201 {
		t.Fatalf("create: %v %v", ans, err)
	}
	if u.Hash != h {
		t.Fatalf("hash %s", u.Hash)
	}
	f.svc.cache = newBlobCache(0, 0) // read from the store
	_, b, err := f.svc.UnitOLX(ctx, index.Latest(u.ID))
	if err != nil || !bytes.Equal(b, olx) {
		t.Fatalf("OLX after the sweep: %q %v", b, err)
	}
}

func TestStreamedAssetAfterASweep(t *testing.T) {
	ctx := context.Background()
	t.Run("bytes stored by this request: 503, send again", func(t *testing.T) {
		f := newFixture(t, Options{})
		c := f.collection(t)
		data := []byte("new asset bytes")
		f.idx.beforeNextUpdate(func() { f.sweep(t, cas.Sum(data)) })
		var a index.Asset
		_, err := f.svc.CreateAsset(ctx, NewAsset{Collection: c, Content: AssetContent{Body: bytes.NewReader(data)}}, Request[index.Asset]{Render: asIs(&a)})
		if !errors.Is(err, ErrRetry) {
			t.Fatalf("want ErrRetry, got %v", err)
		}
		// The client sends it again: it goes through.
		if _, err := f.svc.CreateAsset(ctx, NewAsset{Collection: c, Content: AssetContent{Body: bytes.NewReader(data)}}, Request[index.Asset]{Render: asIs(&a)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bytes stored before: the staged copy is committed", func(t *testing.T) {
		f := newFixture(t, Options{})
		c := f.collection(t)
		data := []byte("asset bytes stored before")
		h := cas.Sum(data)
		if _, _, err := f.svc.PutBlob(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		f.idx.beforeNextUpdate(func() { f.sweep(t, h) })
		var a index.Asset
		if _, err := f.svc.CreateAsset(ctx, NewAsset{Collection: c, Content: AssetContent{Body: bytes.NewReader(data)}}, Request[index.Asset]{Render: asIs(&a)}); err != nil {
			t.Fatal(err)
		}
		_, r, err := f.svc.OpenAsset(ctx, index.Latest(a.ID))
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	})
	t.Run("hash form: the blob is missing", func(t *testing.T) {
		f := newFixture(t, Options{})
		c := f.collection(t)
		h := cas.Sum([]byte("never stored"))
		var a index.Asset
		_, err := f.svc.CreateAsset(ctx, NewAsset{Collection: c, Content: AssetContent{Hash: &h}}, Request[index.Asset]{Render: asIs(&a)})
		var missing *index.BlobMissingError
		if !errors.As(err, &missing) || missing.Hash != h {
			t.Fatalf("want a BlobMissingError naming %s, got %v", h, err)
		}
	})
}

func TestIdempotency(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	body := cas.Sum([]byte(`{"name":"x"}`))
	req := func(key string, body cas.Hash, out *index.Collection) Request[index.Collection] {
		return Request[index.Collection]{Key: key, Method: "POST", Path: "/api/v1/collections", Body: &body, Render: asIs(out)}
	}
	const n = 8
	answers := make([]Answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var c index.Collection
			ans, err := f.svc.CreateCollection(ctx, index.NewCollection{CollectionFields: index.CollectionFields{Name: "x"}}, req("k", body, &c))
			if err != nil {
				t.Error(err)
			}
			answers[i] = ans
		})
	}
	wg.Wait()
	replays := 0
	for _, a := range answers {
		if a.Status != 201 || !bytes.Equal(a.Body, answers[0].Body) {
			t.Fatalf("answers differ: %+v vs %+v", a, answers[0])
		}
		if a.Replayed {
			replays++
		}
	}
	if replays != n-1 {
		t.Fatalf("%d replays, want %d", replays, n-1)
	}
	page, err := f.svc.Collections(ctx, index.ListOptions{})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("%d collections, %v", len(page.Items), err)
	}
	var c index.Collection
	if _, err := f.svc.CreateCollection(ctx, index.NewCollection{}, req("k", cas.Sum(nil), &c)); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("reused key: %v", err)
	}
	if _, err := f.svc.CreateCollection(ctx, index.NewCollection{}, req(strings.Repeat("x", 256), body, &c)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long key: %v", err)
	}
	// A key longer than the index takes is stored by its hash.
	long := strings.Repeat("키", 255)
	a1, err := f.svc.CreateCollection(ctx, index.NewCollection{}, req(long, body, &c))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := f.svc.CreateCollection(ctx, index.NewCollection{}, req(long, body, &c))
	if err != nil || !a2.Replayed || !bytes.Equal(a1.Body, a2.Body) {
		t.Fatalf("long key replay: %+v %v", a2, err)
	}
}

// TestUnitRetries: keyed unit writes do not read their key's record first;
// a retry after a commit still gets the stored answer, whether the write
// fails on its name (taken by the first attempt) or on the key, and a key
// reused for another request is refused.
func TestUnitRetries(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	c := f.collection(t)
	create := func(key, name, olx string) (Answer, error) {
		var u index.Unit
		body := cas.Sum([]byte(name + olx))
		return f.svc.CreateUnit(ctx, NewUnit{Collection: c, Name: name, OLX: []byte(olx)},
			Request[index.Unit]{Key: key, Method: "POST", Path: "/api/v1/units", Body: &body, Render: asIs(&u)})
	}
	for _, name := range []string{"", "html/named.xml"} {
		key := "k-" + name
		reads := f.idx.idemReads.Load()
		first, err := create(key, name, "<p>"+name+"</p>")
		if err != nil || first.Replayed {
			t.Fatalf("name %q: first: %+v %v", name, first, err)
		}
		if n := f.idx.idemReads.Load() - reads; n != 0 {
			t.Errorf("name %q: the first create read the key's record %d times", name, n)
		}
		again, err := create(key, name, "<p>"+name+"</p>")
		if err != nil || !again.Replayed || !bytes.Equal(again.Body, first.Body) || again.Status != first.Status {
			t.Fatalf("name %q: retry: %+v %v; first %+v", name, again, err, first)
		}
		if _, err := create(key, name, "<p>other</p>"); !errors.Is(err, ErrKeyReused) {
			t.Fatalf("name %q: key reused: %v", name, err)
		}
	}
	// Concurrent retries: one unit.
	const n = 8
	answers := make([]Answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ans, err := create("together", "html/together.xml", "<together/>")
			if err != nil {
				t.Error(err)
			}
			answers[i] = ans
		})
	}
	wg.Wait()
	replays := 0
	for _, a := range answers {
		if !bytes.Equal(a.Body, answers[0].Body) {
			t.Fatalf("answers differ: %q vs %q", a.Body, answers[0].Body)
		}
		if a.Replayed {
			replays++
		}
	}
	if replays != n-1 {
		t.Fatalf("%d replays, want %d", replays, n-1)
	}
	page, err := f.svc.CollectionUnits(ctx, c, index.ListOptions{})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("%d units, want 3: %v", len(page.Items), err)
	}
}

func TestIdenticalVersionCreatesNothing(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	c := f.collection(t)
	var u index.Unit
	if _, err := f.svc.CreateUnit(ctx, NewUnit{Collection: c, OLX: []byte("<a/>")}, Request[index.Unit]{Render: asIs(&u)}); err != nil {
		t.Fatal(err)
	}
	olx := []byte("<a/>")
	var v index.Unit
	ans, err := f.svc.CommitUnit(ctx, u.ID, UnitChange{OLX: &olx}, Request[index.Unit]{Render: asIs(&v)})
	if err != nil || ans.Status != 200 || v.Version != 1 {
		t.Fatalf("identical version: %+v %+v %v", ans, v, err)
	}
	// Omitted OLX keeps the bytes: a change of flag alone.
	yes := true
	ans, err = f.svc.CommitUnit(ctx, u.ID, UnitChange{GarbageCollect: &yes}, Request[index.Unit]{Render: asIs(&v)})
	if err != nil || ans.Status != 201 || v.Version != 2 || v.Hash != u.Hash {
		t.Fatalf("flag-only version: %+v %+v %v", ans, v, err)
	}
	// A draft without OLX takes the latest version's.
	d, err := f.svc.PutUnitDraft(ctx, u.ID, UnitChange{})
	if err != nil || d.Version != 0 || d.Hash != u.Hash {
		t.Fatalf("draft: %+v %v", d, err)
	}
}

func TestResolveAndCache(t *testing.T) {
	for _, cacheBytes := range []int64{-1, 0} {
		t.Run(fmt.Sprint("cache ", cacheBytes), func(t *testing.T) {
			f := newFixture(t, Options{CacheBytes: cacheBytes})
			ctx := context.Background()
			c := f.collection(t)
			var refs []index.Ref
			want := map[uuid.UUID]string{}
			for i := range 40 {
				var u index.Unit
				olx := fmt.Sprintf("<unit n=%d/>", i%30) // some share bytes
				if _, err := f.svc.CreateUnit(ctx, NewUnit{Collection: c, OLX: []byte(olx)}, Request[index.Unit]{Render: asIs(&u)}); err != nil {
					t.Fatal(err)
				}
				refs = append(refs, index.Latest(u.ID))
				want[u.ID] = olx
			}
			absent := index.Ref{ID: uuid.New()}
			refs = append(refs, absent, index.Ref{ID: c}, index.Ref{ID: refs[0].ID, Draft: true})
			out, err := f.svc.Resolve(ctx, refs, true)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range out[:40] {
				if r.Kind != index.KindUnit || string(r.OLX) != want[refs[i].ID] {
					t.Fatalf("item %d: kind %v olx %q", i, r.Kind, r.OLX)
				}
			}
			if out[40].Found() || out[41].Kind != index.KindCollection || out[42].Found() {
				t.Fatalf("tail: %+v", out[40:])
			}
			st := f.svc.CacheStats()
			if cacheBytes < 0 && st.Entries != 0 {
				t.Fatalf("a disabled cache holds %d entries", st.Entries)
			}
			if cacheBytes == 0 && (st.Entries != 30 || st.Hits == 0) {
				t.Fatalf("cache: %+v", st)
			}
		})
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newBlobCache(10, 4)
	b := func(s string) []byte { return []byte(s) }
	h := func(s string) cas.Hash { return cas.Sum([]byte(s)) }
	c.add(h("aaaa"), b("aaaa"))
	c.add(h("bbbb"), b("bbbb"))
	c.add(h("toolarge"), b("toolarge"))
	if _, ok := c.get(h("aaaa")); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.add(h("cccc"), b("cccc")) // evicts b
	if _, ok := c.get(h("bbbb")); ok {
		t.Fatal("b kept")
	}
	for _, k := range []string{"aaaa", "cccc"} {
		if v, ok := c.get(h(k)); !ok || string(v) != k {
			t.Fatalf("%s: %q %v", k, v, ok)
		}
	}
	if _, ok := c.get(h("toolarge")); ok {
		t.Fatal("a blob over the item limit was kept")
	}
	if st := c.stats(); st.Bytes != 8 || st.Entries != 2 {
		t.Fatalf("stats %+v", st)
	}
}
