package castest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// UploadCounter is implemented by backends whose uploads with a known hash
// can leave server-side state under the blob's own name (S3 multipart
// uploads): it counts what is pending for h. The suite checks it is zero
// after a failed put.
type UploadCounter interface {
	IncompleteUploads(ctx context.Context, h cas.Hash) (int, error)
}

const (
	// LargeSize is the size of the large streamed blob.
	LargeSize = 256 << 20
	// heapGrowthLimit is how much HeapInuse may grow above its baseline
	// while a LargeSize blob is written or read: a few part buffers, never
	// a share of the blob.
	heapGrowthLimit = 64 << 20
	// heapSampleEvery is how often (in bytes streamed) the heap is sampled.
	heapSampleEvery = 8 << 20
)

// emptyHash is BLAKE3 of no bytes (the official test vector of length 0).
var emptyHash = cas.MustParseHash("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")

// Run runs the conformance suite. open returns a fresh, empty backend for
// each subtest; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) cas.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"RoundTrip", testRoundTrip},
		{"Empty", testEmpty},
		{"TwoPhase", testTwoPhase},
		{"LargeStreamed", testLargeStreamed},
		{"KnownHashMultipart", testKnownHashMultipart},
		{"RangedReads", testRangedReads},
		{"ConcurrentSamePut", testConcurrentSamePut},
		{"ExpectedMismatch", testExpectedMismatch},
		{"CancelMidStream", testCancelMidStream},
		{"ReadBodyError", testReadBodyError},
		{"MaxSize", testMaxSize},
		{"Sizes", testSizes},
		{"AnnouncedSize", testAnnouncedSize},
		{"Delete", testDelete},
		{"DeleteMany", testDeleteMany},
		{"Walk", testWalk},
		{"PingAndClose", testPingAndClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newFixture(t, open))
		})
	}
}

// fixture is one subtest's backend and the Store over it.
type fixture struct {
	t   *testing.T
	ctx context.Context
	b   cas.Backend
	s   *cas.Store
}

func newFixture(t *testing.T, open func(t *testing.T) cas.Backend) *fixture {
	b := open(t)
	s := cas.New(b, cas.Options{})
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return &fixture{t: t, ctx: ctx, b: b, s: s}
}

// store returns another Store over the same backend, with other options.
// It is not closed: closing it would close the shared backend.
func (f *fixture) store(opt cas.Options) *cas.Store { return cas.New(f.b, opt) }

func (f *fixture) put(data []byte, opt cas.PutOptions) cas.Info {
	f.t.Helper()
	info, err := f.s.Put(f.ctx, bytes.NewReader(data), opt)
	if err != nil {
		f.t.Fatalf("put %d bytes: %v", len(data), err)
	}
	if want := cas.Sum(data); info.Hash != want || info.Size != int64(len(data)) {
		f.t.Fatalf("put: got %s (%d bytes), want %s (%d bytes)", info.Hash, info.Size, want, len(data))
	}
	return info
}

// walk returns every stored blob's size.
func (f *fixture) walk() map[cas.Hash]int64 {
	f.t.Helper()
	m := map[cas.Hash]int64{}
	err := f.s.Walk(f.ctx, func(info cas.Info) error {
		if _, dup := m[info.Hash]; dup {
			return fmt.Errorf("walk: %s seen twice", info.Hash)
		}
		m[info.Hash] = info.Size
		return nil
	})
	if err != nil {
		f.t.Fatalf("walk: %v", err)
	}
	return m
}

func (f *fixture) wantWalk(want map[cas.Hash]int64) {
	f.t.Helper()
	got := f.walk()
	if len(got) != len(want) {
		f.t.Errorf("walk: %d blobs, want %d: %v", len(got), len(want), got)
	}
	for h, size := range want {
		if g, ok := got[h]; !ok {
			f.t.Errorf("walk: %s missing", h)
		} else if g != size {
			f.t.Errorf("walk: %s has %d bytes, want %d", h, g, size)
		}
	}
}

func (f *fixture) wantAbsent(h cas.Hash) {
	f.t.Helper()
	if _, err := f.s.Stat(f.ctx, h); !errors.Is(err, cas.ErrNotFound) {
		f.t.Errorf("stat %s: got %v, want ErrNotFound", h, err)
	}
	r, err := f.s.Open(f.ctx, h)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, cas.ErrNotFound) {
		f.t.Errorf("open %s: got %v, want ErrNotFound", h, err)
	}
}

// wantNoTemp checks that the backend holds no temporary data, in general
// and for the given hashes.
func (f *fixture) wantNoTemp(hs ...cas.Hash) {
	f.t.Helper()
	items, n, err := f.s.CleanTemp(f.ctx, 0)
	if err != nil {
		f.t.Fatalf("clean temp: %v", err)
	}
	if items != 0 || n != 0 {
		f.t.Errorf("temporary data left behind: %d items, %d bytes", items, n)
	}
	if uc, ok := f.b.(UploadCounter); ok {
		for _, h := range hs {
			c, err := uc.IncompleteUploads(f.ctx, h)
			if err != nil {
				f.t.Fatalf("incomplete uploads of %s: %v", h, err)
			}
			if c != 0 {
				f.t.Errorf("%d incomplete uploads of %s left behind", c, h)
			}
		}
	}
}

func readAllFrom(t *testing.T, r cas.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func testRoundTrip(t *testing.T, f *fixture) {
	data := NewContent(1, 1000).Bytes()
	before := time.Now()
	info := f.put(data, cas.PutOptions{})
	h := info.Hash

	st, err := f.s.Stat(f.ctx, h)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if st.Hash != h || st.Size != int64(len(data)) {
		t.Errorf("stat: got %s (%d bytes), want %s (%d bytes)", st.Hash, st.Size, h, len(data))
	}
	if st.ModTime.IsZero() || st.ModTime.Before(before.Add(-time.Minute)) || st.ModTime.After(time.Now().Add(time.Minute)) {
		t.Errorf("stat: ModTime %v is not the time of the put (%v)", st.ModTime, before)
	}

	for _, opt := range []cas.Options{{}, {VerifyReadsUpTo: -1}} {
		r, err := f.store(opt).Open(f.ctx, h)
		if err != nil {
			t.Fatalf("open (%+v): %v", opt, err)
		}
		if r.Size() != int64(len(data)) {
			t.Errorf("open: Size %d, want %d", r.Size(), len(data))
		}
		if got := readAllFrom(t, r); !bytes.Equal(got, data) {
			t.Errorf("open (%+v): bytes differ", opt)
		}
		if err := r.Close(); err != nil {
			t.Errorf("close reader: %v", err)
		}
	}

	got, err := f.s.ReadAll(f.ctx, h, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read all: %v (bytes equal: %v)", err, bytes.Equal(got, data))
	}
	if _, err := f.s.ReadAll(f.ctx, h, int64(len(data))-1); !errors.Is(err, cas.ErrTooLarge) {
		t.Errorf("read all under the size: got %v, want ErrTooLarge", err)
	}

	// The same bytes again, by hash this time: the same blob.
	again := f.put(data, cas.PutOptions{Expected: &h})
	if again.Hash != h {
		t.Errorf("second put: %s, want %s", again.Hash, h)
	}
	f.wantWalk(map[cas.Hash]int64{h: int64(len(data))})
	f.wantNoTemp(h)
}

func testEmpty(t *testing.T, f *fixture) {
	info := f.put(nil, cas.PutOptions{})
	if info.Hash != emptyHash || info.Size != 0 {
		t.Fatalf("put empty: %s (%d bytes), want %s", info.Hash, info.Size, emptyHash)
	}
	f.put([]byte{}, cas.PutOptions{Expected: &emptyHash})
	st, err := f.s.Stat(f.ctx, emptyHash)
	if err != nil || st.Size != 0 {
		t.Fatalf("stat empty: %+v, %v", st, err)
	}
	for _, opt := range []cas.Options{{}, {VerifyReadsUpTo: -1}} {
		r, err := f.store(opt).Open(f.ctx, emptyHash)
		if err != nil {
			t.Fatalf("open empty: %v", err)
		}
		if r.Size() != 0 {
			t.Errorf("empty Size %d", r.Size())
		}
		var buf [16]byte
		if n, err := r.Read(buf[:]); n != 0 || err != io.EOF {
			t.Errorf("read empty: %d, %v; want 0, EOF", n, err)
		}
		r.Close()
	}
	b, err := f.s.ReadAll(f.ctx, emptyHash, 0)
	if err != nil || len(b) != 0 {
		t.Errorf("read all empty: %q, %v", b, err)
	}
	f.wantWalk(map[cas.Hash]int64{emptyHash: 0})
	f.wantNoTemp(emptyHash)
}

func testTwoPhase(t *testing.T, f *fixture) {
	data := NewContent(2, 3<<20).Bytes()
	want := cas.Sum(data)

	// Sum, then Cancel: nothing.
	u, err := f.s.Begin(f.ctx, cas.PutOptions{Expected: &want})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := u.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	h, n, err := u.Sum()
	if err != nil || h != want || n != int64(len(data)) {
		t.Fatalf("sum: %s %d %v, want %s %d", h, n, err, want, len(data))
	}
	f.wantAbsent(want)
	if err := u.Cancel(); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := u.Commit(f.ctx); err == nil {
		t.Errorf("commit after cancel succeeded")
	}
	f.wantAbsent(want)
	f.wantWalk(map[cas.Hash]int64{})
	f.wantNoTemp(want)

	// Sum, then Commit: visible only after Commit.
	u, err = f.s.Begin(f.ctx, cas.PutOptions{})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer u.Cancel()
	if _, err := u.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatalf("read from: %v", err)
	}
	if h, _, err := u.Sum(); err != nil || h != want {
		t.Fatalf("sum: %s %v", h, err)
	}
	if _, err := u.Write([]byte("x")); err == nil {
		t.Errorf("write after Sum succeeded")
	}
	f.wantAbsent(want)
	info, err := u.Commit(f.ctx)
	if err != nil || info.Hash != want || info.Size != int64(len(data)) {
		t.Fatalf("commit: %+v, %v", info, err)
	}
	if again, err := u.Commit(f.ctx); err != nil || again != info {
		t.Errorf("second commit: %+v, %v; want %+v", again, err, info)
	}
	if err := u.Cancel(); err != nil {
		t.Errorf("cancel after commit: %v", err)
	}
	if _, err := f.s.Stat(f.ctx, want); err != nil {
		t.Errorf("stat after cancel after commit: %v", err)
	}
	f.wantWalk(map[cas.Hash]int64{want: int64(len(data))})
	f.wantNoTemp(want)
}

// heapWatch samples HeapInuse while bytes stream and remembers the peak.
type heapWatch struct {
	base, peak uint64
	next       int64
	seen       int64
}

func newHeapWatch() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse}
}

func (w *heapWatch) add(n int) {
	w.seen += int64(n)
	if w.seen < w.next {
		return
	}
	w.next = w.seen + heapSampleEvery
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > w.peak {
		w.peak = ms.HeapInuse
	}
}

func (w *heapWatch) check(t *testing.T, what string) {
	t.Helper()
	growth := int64(w.peak) - int64(w.base)
	t.Logf("%s %d MiB: heap in use grew by %.1f MiB at most", what, w.seen>>20, float64(growth)/(1<<20))
	if growth > heapGrowthLimit {
		t.Errorf("%s: heap in use grew by %d MiB (limit %d MiB): memory grows with the blob",
			what, growth>>20, heapGrowthLimit>>20)
	}
}

type watchedReader struct {
	r io.Reader
	w *heapWatch
}

func (r watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.w.add(n)
	return n, err
}

type hashingDiscard struct {
	h *cas.Hasher
	w *heapWatch
}

func (d hashingDiscard) Write(p []byte) (int, error) {
	_, _ = d.h.Write(p)
	d.w.add(len(p))
	return len(p), nil
}

func testLargeStreamed(t *testing.T, f *fixture) {
	c := NewContent(3, LargeSize)
	want := c.Hash()

	hw := newHeapWatch()
	info, err := f.s.Put(f.ctx, watchedReader{r: c, w: hw}, cas.PutOptions{})
	if err != nil {
		t.Fatalf("put %d MiB: %v", LargeSize>>20, err)
	}
	hw.check(t, "put")
	if info.Hash != want || info.Size != LargeSize {
		t.Fatalf("put: %s (%d bytes), want %s (%d bytes)", info.Hash, info.Size, want, int64(LargeSize))
	}

	hw = newHeapWatch()
	r, err := f.s.Open(f.ctx, want)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer r.Close()
	if r.Size() != LargeSize {
		t.Fatalf("open: Size %d", r.Size())
	}
	sink := hashingDiscard{h: cas.NewHasher(), w: hw}
	buf := make([]byte, 1<<20)
	if n, err := io.CopyBuffer(sink, r, buf); err != nil || n != LargeSize {
		t.Fatalf("read: %d bytes, %v", n, err)
	}
	hw.check(t, "read")
	if got := sink.h.Sum(); got != want {
		t.Fatalf("read bytes hash to %s, want %s", got, want)
	}
	// A few ranges far into the blob.
	for _, off := range []int64{LargeSize / 2, LargeSize - 4096 - 7} {
		got := make([]byte, 4096)
		if _, err := r.ReadAt(got, off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		exp := make([]byte, 4096)
		_, _ = c.ReadAt(exp, off)
		if !bytes.Equal(got, exp) {
			t.Errorf("read at %d: bytes differ", off)
		}
	}
	f.wantWalk(map[cas.Hash]int64{want: LargeSize})
	f.wantNoTemp(want)
	if err := f.s.Delete(f.ctx, want); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

func testKnownHashMultipart(t *testing.T, f *fixture) {
	// Several S3 parts at the default part size, sent to the final key.
	c := NewContent(4, 40<<20+12345)
	want := c.Hash()
	info, err := f.s.Put(f.ctx, c, cas.PutOptions{Expected: &want})
	if err != nil || info.Hash != want || info.Size != c.Size() {
		t.Fatalf("put: %+v, %v", info, err)
	}
	r, err := f.s.Open(f.ctx, want)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer r.Close()
	h := cas.NewHasher()
	if n, err := io.Copy(h, r); err != nil || n != c.Size() {
		t.Fatalf("read: %d, %v", n, err)
	}
	if got := h.Sum(); got != want {
		t.Fatalf("read bytes hash to %s, want %s", got, want)
	}
	f.wantWalk(map[cas.Hash]int64{want: c.Size()})
	f.wantNoTemp(want)
}

func testRangedReads(t *testing.T, f *fixture) {
	c := NewContent(5, 5<<20+123) // above the default VerifyReadsUpTo
	small := NewContent(6, 100<<10)
	for _, content := range []*Content{c, small} {
		info := f.put(content.Bytes(), cas.PutOptions{})
		for _, opt := range []cas.Options{{}, {VerifyReadsUpTo: -1}, {VerifyReadsUpTo: 64 << 20}} {
			t.Run(fmt.Sprintf("%dB/verify%d", content.Size(), opt.VerifyReadsUpTo), func(t *testing.T) {
				r, err := f.store(opt).Open(f.ctx, info.Hash)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				defer r.Close()
				checkRanges(t, r, content)
			})
		}
	}
}

func checkRanges(t *testing.T, r cas.Reader, c *Content) {
	size := c.Size()
	expect := func(off, n int64) []byte {
		b := make([]byte, n)
		_, _ = c.ReadAt(b, off)
		return b
	}
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != size {
		t.Fatalf("seek end: %d, %v; want %d", end, err, size)
	}
	offsets := []int64{0, 1, 7, 8, contentBlock - 3, size / 2, size - 100, size - 1}
	for _, off := range offsets {
		if off < 0 || off >= size {
			continue
		}
		n := min(int64(4000), size-off)
		if p, err := r.Seek(off, io.SeekStart); err != nil || p != off {
			t.Fatalf("seek %d: %d, %v", off, p, err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("read %d bytes at %d after seek: %v", n, off, err)
		}
		if !bytes.Equal(got, expect(off, n)) {
			t.Errorf("read %d bytes at %d after seek: bytes differ", n, off)
		}
		got2 := make([]byte, n)
		if m, err := r.ReadAt(got2, off); int64(m) != n || (err != nil && err != io.EOF) {
			t.Fatalf("read at %d: %d, %v", off, m, err)
		}
		if !bytes.Equal(got2, expect(off, n)) {
			t.Errorf("read at %d: bytes differ", off)
		}
	}
	// Relative seeks.
	if p, err := r.Seek(-10, io.SeekEnd); err != nil || p != size-10 {
		t.Fatalf("seek -10 from end: %d, %v", p, err)
	}
	tail, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(tail, expect(size-10, 10)) {
		t.Errorf("read the last 10 bytes: %v (equal %v)", err, bytes.Equal(tail, expect(size-10, 10)))
	}
	// ReadAt across the end: the bytes there, and io.EOF.
	got := make([]byte, 50)
	m, err := r.ReadAt(got, size-20)
	if m != 20 || err != io.EOF || !bytes.Equal(got[:20], expect(size-20, 20)) {
		t.Errorf("read at across the end: %d, %v", m, err)
	}
	if m, err := r.ReadAt(got, size); m != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v; want 0, EOF", m, err)
	}
	// After all that, a whole sequential read still verifies.
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("seek start: %v", err)
	}
	all, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(all, c.Bytes()) {
		t.Errorf("read all after seeks: %v (equal %v)", err, bytes.Equal(all, c.Bytes()))
	}
}

func testConcurrentSamePut(t *testing.T, f *fixture) {
	const writers = 8
	data := NewContent(7, 6<<20+5).Bytes()
	want := cas.Sum(data)
	var wg sync.WaitGroup
	infos := make([]cas.Info, writers)
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var opt cas.PutOptions
			if i%2 == 0 {
				opt.Expected = &want
			}
			infos[i], errs[i] = f.s.Put(f.ctx, bytes.NewReader(data), opt)
		}()
	}
	wg.Wait()
	for i := range writers {
		if errs[i] != nil {
			t.Errorf("writer %d: %v", i, errs[i])
		} else if infos[i].Hash != want || infos[i].Size != int64(len(data)) {
			t.Errorf("writer %d: %s (%d bytes)", i, infos[i].Hash, infos[i].Size)
		}
	}
	got, err := f.s.ReadAll(f.ctx, want, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("read all: %v", err)
	}
	f.wantWalk(map[cas.Hash]int64{want: int64(len(data))})
	f.wantNoTemp(want)
}

func testExpectedMismatch(t *testing.T, f *fixture) {
	keep := f.put([]byte("a blob that stays"), cas.PutOptions{})
	before := f.walk()
	for _, size := range []int64{1000, 20<<20 + 1} { // one part; several S3 parts
		data := NewContent(8, size)
		real := data.Hash()
		wrong := cas.Sum([]byte(fmt.Sprintf("not the bytes of %d", size)))
		_, err := f.s.Put(f.ctx, data, cas.PutOptions{Expected: &wrong})
		var me *cas.MismatchError
		if !errors.As(err, &me) || !errors.Is(err, cas.ErrHashMismatch) {
			t.Fatalf("put %d bytes with a wrong hash: got %v, want *MismatchError", size, err)
		}
		if me.Want != wrong || me.Got != real {
			t.Errorf("mismatch: want %s got %s; expected want %s got %s", me.Want, me.Got, wrong, real)
		}
		f.wantAbsent(wrong)
		f.wantAbsent(real)
		f.wantWalk(before)
		f.wantNoTemp(wrong, real)
	}
	if _, err := f.s.Stat(f.ctx, keep.Hash); err != nil {
		t.Errorf("the other blob: %v", err)
	}
}

// cancelReader cancels a context once it has produced after bytes.
type cancelReader struct {
	r      io.Reader
	after  int64
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n >= c.after {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func testCancelMidStream(t *testing.T, f *fixture) {
	f.put([]byte("a blob that stays"), cas.PutOptions{})
	before := f.walk()
	c := NewContent(9, 64<<20)
	h := c.Hash()
	for _, known := range []bool{false, true} {
		t.Run(fmt.Sprintf("known=%v", known), func(t *testing.T) {
			ctx, cancel := context.WithCancel(f.ctx)
			defer cancel()
			var opt cas.PutOptions
			if known {
				opt.Expected = &h
			}
			_, _ = c.Seek(0, io.SeekStart)
			_, err := f.s.Put(ctx, &cancelReader{r: c, after: 20 << 20, cancel: cancel}, opt)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("put with a cancelled context: got %v, want context.Canceled", err)
			}
			f.wantAbsent(h)
			f.wantWalk(before)
			f.wantNoTemp(h)
		})
	}
	t.Run("before commit", func(t *testing.T) {
		ctx, cancel := context.WithCancel(f.ctx)
		defer cancel()
		u, err := f.s.Begin(ctx, cas.PutOptions{Expected: &h})
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		defer u.Cancel()
		_, _ = c.Seek(0, io.SeekStart)
		if _, err := u.ReadFrom(c); err != nil {
			t.Fatalf("read from: %v", err)
		}
		if _, _, err := u.Sum(); err != nil {
			t.Fatalf("sum: %v", err)
		}
		cancel()
		if _, err := u.Commit(f.ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("commit after the upload's context ended: got %v, want context.Canceled", err)
		}
		f.wantAbsent(h)
		f.wantWalk(before)
		f.wantNoTemp(h)
	})
}

type failingReader struct {
	r     io.Reader
	after int64
	n     int64
}

var errBody = errors.New("castest: the body broke")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n >= r.after {
		return 0, errBody
	}
	p = p[:min(int64(len(p)), r.after-r.n)]
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

func testReadBodyError(t *testing.T, f *fixture) {
	c := NewContent(10, 30<<20)
	h := c.Hash()
	for _, known := range []bool{false, true} {
		var opt cas.PutOptions
		if known {
			opt.Expected = &h
		}
		_, _ = c.Seek(0, io.SeekStart)
		_, err := f.s.Put(f.ctx, &failingReader{r: c, after: 17 << 20}, opt)
		if !errors.Is(err, errBody) {
			t.Fatalf("put (known %v) from a failing body: got %v, want the body's error", known, err)
		}
	}
	f.wantAbsent(h)
	f.wantWalk(map[cas.Hash]int64{})
	f.wantNoTemp(h)
}

func testMaxSize(t *testing.T, f *fixture) {
	data := NewContent(11, 1<<20+1).Bytes()
	h := cas.Sum(data)
	for _, known := range []bool{false, true} {
		opt := cas.PutOptions{MaxSize: 1 << 20}
		if known {
			opt.Expected = &h
		}
		if _, err := f.s.Put(f.ctx, bytes.NewReader(data), opt); !errors.Is(err, cas.ErrTooLarge) {
			t.Fatalf("put %d bytes over MaxSize (known %v): got %v, want ErrTooLarge", len(data), known, err)
		}
	}
	f.wantAbsent(h)
	f.wantWalk(map[cas.Hash]int64{})
	f.wantNoTemp(h)
	info := f.put(data, cas.PutOptions{MaxSize: int64(len(data))})
	f.wantWalk(map[cas.Hash]int64{info.Hash: info.Size})
	if _, err := f.s.Put(f.ctx, bytes.NewReader(nil), cas.PutOptions{MaxSize: -1}); err == nil {
		t.Errorf("put with a negative MaxSize succeeded")
	}
}

// testSizes writes blobs around the sizes backends cut their writes at
// (4 KiB blocks, 1 MiB chunks, the 4 MiB of small blobs and preallocation),
// in writes of odd sizes, with and without the size announced, and reads
// every byte back.
func testSizes(t *testing.T, f *fixture) {
	sizes := []int64{4095, 4097, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 4096, 4<<20 + 4097, 9<<20 + 1}
	for i, size := range sizes {
		c := NewContent(uint64(40+i), size)
		data := c.Bytes()
		h := c.Hash()
		for _, announce := range []bool{false, true} {
			opt := cas.PutOptions{Expected: &h}
			if announce {
				opt.Size = size
			}
			u, err := f.s.Begin(f.ctx, opt)
			if err != nil {
				t.Fatalf("begin %d bytes: %v", size, err)
			}
			for rest, step := data, 1; len(rest) > 0; step = step*7 + 1 {
				n := min(len(rest), step%(3<<20)+1)
				if _, err := u.Write(rest[:n]); err != nil {
					t.Fatalf("write %d bytes: %v", size, err)
				}
				rest = rest[n:]
			}
			if _, err := u.Commit(f.ctx); err != nil {
				t.Fatalf("commit %d bytes (announced %v): %v", size, announce, err)
			}
			if got := f.read(h, size); !bytes.Equal(got, data) {
				t.Fatalf("%d bytes (announced %v): the bytes read back differ", size, announce)
			}
			if err := f.s.Delete(f.ctx, h); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
	f.wantWalk(map[cas.Hash]int64{})
	f.wantNoTemp()
}

// read returns the bytes of blob h, read sequentially (verified) to the end.
func (f *fixture) read(h cas.Hash, size int64) []byte {
	f.t.Helper()
	r, err := f.store(cas.Options{VerifyReadsUpTo: -1}).Open(f.ctx, h)
	if err != nil {
		f.t.Fatalf("open %s: %v", h, err)
	}
	defer r.Close()
	if r.Size() != size {
		f.t.Errorf("open %s: Size %d, want %d", h, r.Size(), size)
	}
	return readAllFrom(f.t, r)
}

// testAnnouncedSize: an upload whose bytes are more or fewer than the size
// announced fails and stores nothing.
func testAnnouncedSize(t *testing.T, f *fixture) {
	data := NewContent(12, 5<<20+3).Bytes()
	h := cas.Sum(data)
	size := int64(len(data))
	for _, tc := range []struct {
		announced int64
		want      error
	}{{size - 1, cas.ErrTooLarge}, {size + 1, io.ErrUnexpectedEOF}, {size + 8<<20, io.ErrUnexpectedEOF}} {
		for _, known := range []bool{false, true} {
			opt := cas.PutOptions{Size: tc.announced}
			if known {
				opt.Expected = &h
			}
			if _, err := f.s.Put(f.ctx, bytes.NewReader(data), opt); !errors.Is(err, tc.want) {
				t.Fatalf("put %d bytes announced as %d (known %v): got %v, want %v", size, tc.announced, known, err, tc.want)
			}
		}
	}
	if _, err := f.s.Put(f.ctx, bytes.NewReader(data), cas.PutOptions{Size: size, MaxSize: size - 1}); !errors.Is(err, cas.ErrTooLarge) {
		t.Errorf("put announced over MaxSize: got %v, want ErrTooLarge", err)
	}
	if _, err := f.s.Put(f.ctx, bytes.NewReader(nil), cas.PutOptions{Size: -1}); err == nil {
		t.Errorf("put with a negative Size succeeded")
	}
	f.wantAbsent(h)
	f.wantWalk(map[cas.Hash]int64{})
	f.wantNoTemp(h)
	info := f.put(data, cas.PutOptions{Size: size})
	f.wantWalk(map[cas.Hash]int64{info.Hash: info.Size})
}

func testDelete(t *testing.T, f *fixture) {
	absent := cas.Sum([]byte("never stored"))
	if err := f.s.Delete(f.ctx, absent); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("delete absent: got %v, want ErrNotFound", err)
	}
	info := f.put([]byte("to be deleted"), cas.PutOptions{})
	if err := f.s.Delete(f.ctx, info.Hash); err != nil {
		t.Fatalf("delete: %v", err)
	}
	f.wantAbsent(info.Hash)
	if _, err := f.s.ReadAll(f.ctx, info.Hash, 1<<20); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("read all deleted: got %v, want ErrNotFound", err)
	}
	if err := f.s.Delete(f.ctx, info.Hash); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("delete twice: got %v, want ErrNotFound", err)
	}
	f.wantWalk(map[cas.Hash]int64{})
	// The same blob again, after its deletion (its shard or prefix was emptied).
	f.put([]byte("to be deleted"), cas.PutOptions{})
	f.wantWalk(map[cas.Hash]int64{info.Hash: info.Size})
}

func testDeleteMany(t *testing.T, f *fixture) {
	var infos []cas.Info
	for i := range 5 {
		infos = append(infos, f.put([]byte(fmt.Sprintf("blob %d", i)), cas.PutOptions{}))
	}
	absent := cas.Sum([]byte("never stored"))
	if err := f.s.DeleteMany(f.ctx, []cas.Hash{infos[0].Hash, infos[1].Hash, absent, infos[1].Hash, infos[3].Hash}); err != nil {
		t.Fatalf("delete many: %v", err)
	}
	f.wantWalk(map[cas.Hash]int64{infos[2].Hash: infos[2].Size, infos[4].Hash: infos[4].Size})
	if err := f.s.DeleteMany(f.ctx, nil); err != nil {
		t.Errorf("delete none: %v", err)
	}
	if err := f.s.DeleteMany(f.ctx, []cas.Hash{infos[2].Hash, infos[4].Hash}); err != nil {
		t.Fatalf("delete the rest: %v", err)
	}
	f.wantWalk(map[cas.Hash]int64{})
}

func testWalk(t *testing.T, f *fixture) {
	f.wantWalk(map[cas.Hash]int64{})
	want := map[cas.Hash]int64{}
	for i := range 20 {
		info := f.put(NewContent(uint64(100+i), int64(i*1000)).Bytes(), cas.PutOptions{})
		want[info.Hash] = info.Size
	}
	f.wantWalk(want)
	before := time.Now().Add(-time.Hour)
	err := f.s.Walk(f.ctx, func(info cas.Info) error {
		if info.ModTime.Before(before) {
			return fmt.Errorf("%s: ModTime %v", info.Hash, info.ModTime)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk: %v", err)
	}
	// fn's error stops the walk and comes back as it is.
	stop := errors.New("stop here")
	calls := 0
	err = f.s.Walk(f.ctx, func(cas.Info) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("walk stopped by fn: %v after %d calls; want the error itself after 1", err, calls)
	}
	// A cancelled context stops it too.
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if err := f.s.Walk(ctx, func(cas.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("walk with a cancelled context: got %v, want context.Canceled", err)
	}
}

func testPingAndClose(t *testing.T, f *fixture) {
	if err := f.s.Ping(f.ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	info := f.put([]byte("x"), cas.PutOptions{})
	u, err := f.s.Begin(f.ctx, cas.PutOptions{})
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer u.Cancel()
	if _, err := u.Write([]byte("in flight")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := f.s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := u.Commit(f.ctx); !errors.Is(err, cas.ErrClosed) {
		t.Errorf("commit after close: got %v, want ErrClosed", err)
	}
	if _, err := f.s.Stat(f.ctx, info.Hash); !errors.Is(err, cas.ErrClosed) {
		t.Errorf("stat after close: got %v, want ErrClosed", err)
	}
	if _, err := f.s.Put(f.ctx, bytes.NewReader(nil), cas.PutOptions{}); !errors.Is(err, cas.ErrClosed) {
		t.Errorf("put after close: got %v, want ErrClosed", err)
	}
	if err := f.s.Ping(f.ctx); !errors.Is(err, cas.ErrClosed) {
		t.Errorf("ping after close: got %v, want ErrClosed", err)
	}
	if err := f.s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
