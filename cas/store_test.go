package cas_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// memBackend is a cas.Backend in memory, with hooks to misbehave. It has
// none of the optional interfaces, so the Store's fallbacks run.
type memBackend struct {
	mu       sync.Mutex
	blobs    map[cas.Hash][]byte
	cancels  int
	commits  int
	writeErr error // returned by every Writer.Write when set
	truncate bool  // Open serves one byte less than Size says
	closed   bool
}

func newMem() *memBackend { return &memBackend{blobs: map[cas.Hash][]byte{}} }

func (m *memBackend) Stat(ctx context.Context, h cas.Hash) (cas.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[h]
	if !ok {
		return cas.Info{}, cas.ErrNotFound
	}
	return cas.Info{Hash: h, Size: int64(len(b)), ModTime: time.Now()}, nil
}

type memReader struct {
	*bytes.Reader
	size int64
}

func (r memReader) Size() int64  { return r.size }
func (r memReader) Close() error { return nil }

func (m *memBackend) Open(ctx context.Context, h cas.Hash) (cas.Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[h]
	if !ok {
		return nil, cas.ErrNotFound
	}
	size := int64(len(b))
	if m.truncate {
		b = b[:len(b)-1]
	}
	return memReader{bytes.NewReader(b), size}, nil
}

type memWriter struct {
	m   *memBackend
	buf bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.m.writeErr != nil {
		return 0, w.m.writeErr
	}
	return w.buf.Write(p)
}

func (w *memWriter) Commit(ctx context.Context, h cas.Hash, size int64) error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.m.blobs[h] = bytes.Clone(w.buf.Bytes())
	w.m.commits++
	return nil
}

func (w *memWriter) Cancel() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.m.cancels++
	return nil
}

func (m *memBackend) Create(ctx context.Context, opt cas.CreateOptions) (cas.Writer, error) {
	return &memWriter{m: m}, nil
}

func (m *memBackend) Delete(ctx context.Context, h cas.Hash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blobs[h]; !ok {
		return cas.ErrNotFound
	}
	delete(m.blobs, h)
	return nil
}

func (m *memBackend) Walk(ctx context.Context, fn func(cas.Info) error) error {
	m.mu.Lock()
	var infos []cas.Info
	for h, b := range m.blobs {
		infos = append(infos, cas.Info{Hash: h, Size: int64(len(b))})
	}
	m.mu.Unlock()
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBackend) Close() error {
	m.closed = true
	return nil
}

// corrupt flips a byte of the blob h.
func (m *memBackend) corrupt(h cas.Hash, at int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[h][at] ^= 0x55
}

type observation struct {
	op    string
	bytes int64
	err   error
}

type recorder struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recorder) Observe(op string, n int64, elapsed time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, observation{op, n, err})
}

func (r *recorder) take() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.obs
	r.obs = nil
	return o
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestObserver(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	s := cas.New(newMem(), cas.Options{Observer: rec})
	data := pattern(1000)
	info, err := s.Put(ctx, bytes.NewReader(data), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wrong := cas.Sum([]byte("other"))
	_, mismatch := s.Put(ctx, bytes.NewReader(data), cas.PutOptions{Expected: &wrong})
	_, notFound := s.Stat(ctx, wrong)
	r, err := s.Open(ctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_ = s.Walk(ctx, func(cas.Info) error { return nil })
	u, _ := s.Begin(ctx, cas.PutOptions{})
	_, _ = u.Write([]byte("abc"))
	_ = u.Cancel()

	got := rec.take()
	want := []observation{
		{cas.OpPut, 1000, nil},
		{cas.OpPut, 1000, mismatch},
		{cas.OpStat, 0, notFound},
		{cas.OpOpen, 1000, nil},
		{cas.OpWalk, 1, nil},
		{cas.OpPut, 3, cas.ErrCanceled},
	}
	if len(got) != len(want) {
		t.Fatalf("observations: %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].op != want[i].op || got[i].bytes != want[i].bytes || !errors.Is(got[i].err, want[i].err) || (want[i].err == nil) != (got[i].err == nil) {
			t.Errorf("observation %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestOpenVerifies(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	s := cas.New(m, cas.Options{VerifyReadsUpTo: 100})
	small, err := s.Put(ctx, bytes.NewReader(pattern(100)), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	large, err := s.Put(ctx, bytes.NewReader(pattern(5000)), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.corrupt(small.Hash, 99)
	m.corrupt(large.Hash, 4999)

	if _, err := s.Open(ctx, small.Hash); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("open a corrupt small blob: %v, want ErrHashMismatch", err)
	}
	if _, err := s.ReadAll(ctx, large.Hash, 1<<20); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("read all of a corrupt blob: %v, want ErrHashMismatch", err)
	}

	r, err := s.Open(ctx, large.Hash)
	if err != nil {
		t.Fatalf("open a corrupt large blob: %v (it fails at the end, not here)", err)
	}
	defer r.Close()
	if _, err := r.ReadAt(make([]byte, 10), 4990); err != nil {
		t.Errorf("read at: %v (ranges are not verified)", err)
	}
	// Read a little, seek back into what was read, read on across the end
	// of the hashed prefix: the check still happens at the end.
	if _, err := io.ReadFull(r, make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("read a corrupt large blob to the end: %v, want ErrHashMismatch", err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("read after the mismatch: %v, want it again", err)
	}

	// A sound blob read after a seek past the hashed prefix: no check, no error.
	sound, err := s.Put(ctx, bytes.NewReader(pattern(3000)), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Open(ctx, sound.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := r2.Seek(1000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r2); err != nil || len(b) != 2000 {
		t.Errorf("read from 1000: %d bytes, %v", len(b), err)
	}
}

func TestOpenTruncated(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	s := cas.New(m, cas.Options{VerifyReadsUpTo: 100})
	small, _ := s.Put(ctx, bytes.NewReader(pattern(50)), cas.PutOptions{})
	large, _ := s.Put(ctx, bytes.NewReader(pattern(500)), cas.PutOptions{})
	m.truncate = true
	if _, err := s.Open(ctx, small.Hash); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("open a truncated small blob: %v, want ErrHashMismatch", err)
	}
	r, err := s.Open(ctx, large.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("read a truncated large blob: %v, want ErrHashMismatch", err)
	}
}

func TestUploadLifecycle(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	s := cas.New(m, cas.Options{})

	// Cancel: the backend discards once; later calls say so.
	u, err := s.Begin(ctx, cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = u.Write([]byte("abc"))
	if err := u.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := u.Cancel(); err != nil {
		t.Errorf("second cancel: %v", err)
	}
	if _, err := u.Write([]byte("d")); !errors.Is(err, cas.ErrCanceled) {
		t.Errorf("write after cancel: %v, want ErrCanceled", err)
	}
	if _, _, err := u.Sum(); !errors.Is(err, cas.ErrCanceled) {
		t.Errorf("sum after cancel: %v, want ErrCanceled", err)
	}
	if m.cancels != 1 || m.commits != 0 {
		t.Errorf("backend: %d cancels, %d commits; want 1, 0", m.cancels, m.commits)
	}

	// A failing backend write ends the upload and discards it.
	m.writeErr = errors.New("disk on fire")
	_, err = s.Put(ctx, bytes.NewReader([]byte("abc")), cas.PutOptions{})
	if !errors.Is(err, m.writeErr) {
		t.Errorf("put with a failing write: %v", err)
	}
	if m.cancels != 2 || m.commits != 0 {
		t.Errorf("backend: %d cancels, %d commits; want 2, 0", m.cancels, m.commits)
	}
	m.writeErr = nil

	// MaxSize through Write: the upload is over after ErrTooLarge.
	u, _ = s.Begin(ctx, cas.PutOptions{MaxSize: 4})
	if _, err := u.Write([]byte("abcd")); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("e")); !errors.Is(err, cas.ErrTooLarge) {
		t.Errorf("write past MaxSize: %v, want ErrTooLarge", err)
	}
	if _, err := u.Commit(ctx); !errors.Is(err, cas.ErrTooLarge) {
		t.Errorf("commit after ErrTooLarge: %v, want ErrTooLarge", err)
	}
	if m.cancels != 3 || m.commits != 0 {
		t.Errorf("backend: %d cancels, %d commits; want 3, 0", m.cancels, m.commits)
	}

	// The expected hash is copied at Begin.
	data := []byte("expected")
	h := cas.Sum(data)
	exp := h
	u, _ = s.Begin(ctx, cas.PutOptions{Expected: &exp})
	exp = cas.Hash{}
	_, _ = u.Write(data)
	if info, err := u.Commit(ctx); err != nil || info.Hash != h {
		t.Errorf("commit: %+v, %v", info, err)
	}
	if err := u.Cancel(); err != nil || m.cancels != 3 {
		t.Errorf("cancel after commit: %v, %d cancels", err, m.cancels)
	}

	// A cancelled context at Begin.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Begin(cctx, cas.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("begin with a cancelled context: %v", err)
	}
}

func TestFallbacks(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	s := cas.New(m, cas.Options{})
	if s.Backend() != m {
		t.Errorf("Backend() is not the backend")
	}
	a, _ := s.Put(ctx, bytes.NewReader([]byte("a")), cas.PutOptions{})
	b, _ := s.Put(ctx, bytes.NewReader([]byte("b")), cas.PutOptions{})
	if err := s.DeleteMany(ctx, []cas.Hash{a.Hash, cas.Sum([]byte("absent"))}); err != nil {
		t.Errorf("delete many without BatchDeleter: %v", err)
	}
	if _, err := s.Stat(ctx, a.Hash); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("stat deleted: %v", err)
	}
	if _, err := s.Stat(ctx, b.Hash); err != nil {
		t.Errorf("stat kept: %v", err)
	}
	if items, n, err := s.CleanTemp(ctx, 0); items != 0 || n != 0 || err != nil {
		t.Errorf("clean temp without TempCleaner: %d, %d, %v", items, n, err)
	}
	if _, _, err := s.CleanTemp(ctx, -time.Second); err == nil {
		t.Errorf("clean temp with a negative age succeeded")
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping without Pinger: %v", err)
	}
	if _, err := s.ReadAll(ctx, b.Hash, -1); err == nil {
		t.Errorf("read all with a negative limit succeeded")
	}
	if err := s.Close(); err != nil || !m.closed {
		t.Errorf("close: %v (backend closed: %v)", err, m.closed)
	}
	if err := s.Delete(ctx, b.Hash); !errors.Is(err, cas.ErrClosed) {
		t.Errorf("delete after close: %v", err)
	}
}

// io.CopyN (and so http.ServeContent) reads exactly Size bytes and never
// sees io.EOF: the check must fire on the read that reaches Size.
func TestMismatchWithoutEOF(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	s := cas.New(m, cas.Options{VerifyReadsUpTo: -1})
	info, err := s.Put(ctx, bytes.NewReader(pattern(10000)), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, r, info.Size); err != nil {
		t.Errorf("CopyN of a sound blob: %v", err)
	}
	r.Close()

	m.corrupt(info.Hash, 10)
	r, err = s.Open(ctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.CopyN(io.Discard, r, info.Size); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("CopyN of a corrupt blob: %v, want ErrHashMismatch", err)
	}
}
