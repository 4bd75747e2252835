package cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultVerifyReadsUpTo is the size up to which Open verifies a blob
// entirely before it returns, when Options.VerifyReadsUpTo is 0.
const DefaultVerifyReadsUpTo = 256 << 10

// copyBufferSize is the size of the pooled buffers Upload.ReadFrom copies with.
const copyBufferSize = 1 << 20

// ErrCanceled is the error of an Upload that its caller cancelled: further
// writes return it, and the Observer sees it.
var ErrCanceled = errors.New("cas: upload canceled")

// Operation names the Store passes to its Observer.
const (
	OpStat = "stat"
	OpOpen = "open"
	// OpVerify is the end of a verified read of a whole blob larger than
	// VerifyReadsUpTo: its error wraps ErrHashMismatch when the bytes
	// served differed from their hash.
	OpVerify     = "verify"
	OpReadAll    = "read_all"
	OpPut        = "put"
	OpDelete     = "delete"
	OpDeleteMany = "delete_many"
	OpWalk       = "walk"
	OpCleanTemp  = "clean_temp"
	OpPing       = "ping"
)

// Observer receives one call per Store operation, when it ends: the
// operation's name (the Op constants), the bytes it concerned (the blob's size
// for puts, opens and reads; the count of blobs for delete_many and walk; the
// bytes removed for clean_temp), how long it took and its error (nil on
// success). Metrics hang here; the Store never logs. Observe must be safe for
// concurrent use and must not block.
type Observer interface {
	Observe(op string, bytes int64, elapsed time.Duration, err error)
}

// Options configure a Store.
type Options struct {
	// VerifyReadsUpTo: Open reads blobs up to this size fully, verifies their
	// hash and serves them from memory (a corrupt small blob is
	// ErrHashMismatch at Open). 0 means DefaultVerifyReadsUpTo (256 KiB);
	// -1 disables it (every blob is verified at the end of a sequential read).
	VerifyReadsUpTo int64
	// Observer, when set, is told about every operation (for metrics).
	Observer Observer
}

// Store is the portable blob store over a Backend. It checks arguments,
// hashes what it writes, verifies what it reads, wraps errors once and
// reports to its Observer. It is safe for concurrent use.
type Store struct {
	b          Backend
	verifyUpTo int64 // < 0: never read a blob fully at Open
	obs        Observer
	closed     atomic.Bool
}

// New returns a Store over b. The Store owns b: Close closes it.
func New(b Backend, opt Options) *Store {
	v := opt.VerifyReadsUpTo
	if v == 0 {
		v = DefaultVerifyReadsUpTo
	}
	return &Store{b: b, verifyUpTo: v, obs: opt.Observer}
}

// Backend returns the backend the Store runs over, for callers that need a
// backend's own features (its optional interfaces are used by the Store).
func (s *Store) Backend() Backend { return s.b }

func (s *Store) observe(op string, n int64, start time.Time, err error) {
	if s.obs != nil {
		s.obs.Observe(op, n, time.Since(start), err)
	}
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// PutOptions constrain one put.
type PutOptions struct {
	// Expected, when set, is the hash the bytes must have: bytes that hash
	// otherwise fail with *MismatchError and nothing is stored.
	Expected *Hash
	// MaxSize limits the blob's size: 0 means unlimited; more bytes fail
	// with ErrTooLarge and nothing is stored.
	MaxSize int64
	// Size, when > 0, is the number of bytes the caller says are coming
	// (an HTTP Content-Length): the backend may preallocate for them or
	// write a large blob its own way. Any other count fails (more bytes
	// with ErrTooLarge) and nothing is stored. 0 means unknown.
	Size int64
}

// Put streams r into the store (Begin, copy, Commit) and returns the Info of
// the stored blob. Whatever fails, nothing is left behind. Put does not close r.
func (s *Store) Put(ctx context.Context, r io.Reader, opt PutOptions) (Info, error) {
	u, err := s.Begin(ctx, opt)
	if err != nil {
		return Info{}, err
	}
	defer u.Cancel()
	if _, err := u.ReadFrom(r); err != nil {
		return Info{}, err
	}
	return u.Commit(ctx)
}

// Begin starts a two-phase upload: the caller writes the bytes (Write,
// ReadFrom), calls Sum (hash and size known, nothing visible yet), may do
// other work (e.g. register the blob in the index), then calls Commit. The
// caller must end the Upload with Commit or Cancel (defer Cancel: it is a
// no-op after Commit). Cancelling ctx fails the upload and leaves nothing.
func (s *Store) Begin(ctx context.Context, opt PutOptions) (*Upload, error) {
	start := time.Now()
	if err := s.checkOpen(); err != nil {
		err = fmt.Errorf("cas: put: %w", err)
		s.observe(OpPut, 0, start, err)
		return nil, err
	}
	if opt.MaxSize < 0 || opt.Size < 0 {
		err := fmt.Errorf("cas: put: negative MaxSize %d or Size %d", opt.MaxSize, opt.Size)
		s.observe(OpPut, 0, start, err)
		return nil, err
	}
	if opt.MaxSize > 0 && opt.Size > opt.MaxSize {
		err := fmt.Errorf("cas: put: %d bytes announced, at most %d: %w", opt.Size, opt.MaxSize, ErrTooLarge)
		s.observe(OpPut, 0, start, err)
		return nil, err
	}
	var expected *Hash
	if opt.Expected != nil {
		e := *opt.Expected // the caller may reuse its variable
		expected = &e
	}
	if err := ctx.Err(); err != nil {
		err = fmt.Errorf("cas: put: %w", err)
		s.observe(OpPut, 0, start, err)
		return nil, err
	}
	copt := CreateOptions{Known: expected, Size: -1}
	if opt.Size > 0 {
		copt.Size = opt.Size
	}
	w, err := s.b.Create(ctx, copt)
	if err != nil {
		err = fmt.Errorf("cas: put: create: %w", err)
		s.observe(OpPut, 0, start, err)
		return nil, err
	}
	return &Upload{
		s:        s,
		ctx:      ctx,
		w:        w,
		hasher:   NewHasher(),
		expected: expected,
		max:      opt.MaxSize,
		size:     opt.Size,
		start:    start,
	}, nil
}

type uploadState int

const (
	uploadWriting uploadState = iota
	uploadSummed
	uploadCommitted
	uploadFailed // failed or cancelled; err says why
)

// Upload is one blob being written; see Store.Begin. It is an io.Writer and
// an io.ReaderFrom. An Upload is used by one goroutine at a time; to stop it
// from elsewhere, cancel the context given to Begin.
type Upload struct {
	s        *Store
	ctx      context.Context
	w        Writer
	hasher   *Hasher
	expected *Hash
	max      int64
	size     int64 // announced; 0: unknown
	start    time.Time

	n     int64
	state uploadState
	err   error // why the upload failed (state uploadFailed)
	sum   Hash
	info  Info
}

// fail ends the upload with err: the backend discards the bytes, later calls
// return err, and the Observer hears of it. It returns err.
func (u *Upload) fail(err error) error {
	if u.state == uploadFailed || u.state == uploadCommitted {
		return err
	}
	u.state, u.err = uploadFailed, err
	if cerr := u.w.Cancel(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("cas: put: discard: %w", cerr))
		u.err = err
	}
	u.s.observe(OpPut, u.n, u.start, err)
	return err
}

// ctxErr wraps the upload context's error, if any.
func (u *Upload) ctxErr() error {
	if err := u.ctx.Err(); err != nil {
		return fmt.Errorf("cas: put: %w", err)
	}
	return nil
}

// Write adds p to the blob. Past MaxSize it fails with ErrTooLarge (and the
// upload is over). Any error ends the upload: nothing is stored.
func (u *Upload) Write(p []byte) (int, error) {
	switch u.state {
	case uploadFailed:
		return 0, u.err
	case uploadSummed, uploadCommitted:
		return 0, errors.New("cas: put: write after Sum")
	}
	if err := u.ctxErr(); err != nil {
		return 0, u.fail(err)
	}
	if u.max > 0 && u.n+int64(len(p)) > u.max {
		return 0, u.fail(fmt.Errorf("cas: put: more than %d bytes: %w", u.max, ErrTooLarge))
	}
	if u.size > 0 && u.n+int64(len(p)) > u.size {
		return 0, u.fail(fmt.Errorf("cas: put: more than the %d bytes announced: %w", u.size, ErrTooLarge))
	}
	// Hash and write the same slice: the bytes are not copied here.
	_, _ = u.hasher.Write(p)
	n, err := u.w.Write(p)
	u.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if cerr := u.ctxErr(); cerr != nil {
			return n, u.fail(cerr)
		}
		return n, u.fail(fmt.Errorf("cas: put: write: %w", err))
	}
	return n, nil
}

var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, copyBufferSize)
	return &b
}}

// ReadFrom copies r to the upload until EOF with a pooled 1 MiB buffer. An
// error reading r ends the upload (nothing is stored). It does not close r.
func (u *Upload) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var total int64
	for {
		// Fill the buffer: large writes hash faster and make fewer syscalls.
		nr, rerr := io.ReadFull(r, buf)
		if nr > 0 {
			nw, werr := u.Write(buf[:nr])
			total += int64(nw)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return total, nil
		case rerr != nil:
			if u.state == uploadFailed {
				return total, u.err
			}
			if err := u.ctxErr(); err != nil {
				return total, u.fail(err)
			}
			return total, u.fail(fmt.Errorf("cas: put: read body: %w", rerr))
		}
	}
}

// Sum ends the bytes and returns their hash and size; nothing is visible
// yet. When PutOptions.Expected differs it fails with *MismatchError and the
// upload is cancelled. Calling Sum again returns the same answer.
func (u *Upload) Sum() (Hash, int64, error) {
	switch u.state {
	case uploadFailed:
		return Hash{}, 0, u.err
	case uploadSummed, uploadCommitted:
		return u.sum, u.n, nil
	}
	if err := u.ctxErr(); err != nil {
		return Hash{}, 0, u.fail(err)
	}
	if u.size > 0 && u.n != u.size {
		return Hash{}, 0, u.fail(fmt.Errorf("cas: put: %d bytes announced, %d received: %w", u.size, u.n, io.ErrUnexpectedEOF))
	}
	u.sum = u.hasher.Sum()
	u.state = uploadSummed
	if u.expected != nil && *u.expected != u.sum {
		return Hash{}, 0, u.fail(&MismatchError{Want: *u.expected, Got: u.sum})
	}
	return u.sum, u.n, nil
}

// Commit calls Sum if needed, then makes the blob durable and visible under
// its hash. Info.ModTime is the time of the commit. Committing bytes that are
// already stored succeeds. After an error nothing is stored.
func (u *Upload) Commit(ctx context.Context) (Info, error) {
	if _, _, err := u.Sum(); err != nil {
		return Info{}, err
	}
	if u.state == uploadCommitted {
		return u.info, nil
	}
	if err := u.s.checkOpen(); err != nil {
		return Info{}, u.fail(fmt.Errorf("cas: put %s: %w", u.sum, err))
	}
	if err := u.ctxErr(); err != nil {
		return Info{}, u.fail(err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, u.fail(fmt.Errorf("cas: put %s: %w", u.sum, err))
	}
	if err := u.w.Commit(ctx, u.sum, u.n); err != nil {
		return Info{}, u.fail(fmt.Errorf("cas: put %s: commit: %w", u.sum, err))
	}
	u.state = uploadCommitted
	u.info = Info{Hash: u.sum, Size: u.n, ModTime: time.Now().UTC()}
	u.s.observe(OpPut, u.n, u.start, nil)
	return u.info, nil
}

// Cancel discards the upload and its temporary data. It is safe to defer:
// after Commit, or after the upload failed, it does nothing and returns nil.
func (u *Upload) Cancel() error {
	if u.state == uploadCommitted || u.state == uploadFailed {
		return nil
	}
	u.state, u.err = uploadFailed, ErrCanceled
	err := u.w.Cancel()
	u.s.observe(OpPut, u.n, u.start, ErrCanceled)
	if err != nil {
		return fmt.Errorf("cas: put: cancel: %w", err)
	}
	return nil
}

// Stat returns the Info of the blob stored under h, or an error wrapping
// ErrNotFound.
func (s *Store) Stat(ctx context.Context, h Hash) (Info, error) {
	start := time.Now()
	info, err := s.stat(ctx, h)
	s.observe(OpStat, info.Size, start, err)
	return info, err
}

func (s *Store) stat(ctx context.Context, h Hash) (Info, error) {
	if err := s.checkOpen(); err != nil {
		return Info{}, fmt.Errorf("cas: stat %s: %w", h, err)
	}
	info, err := s.b.Stat(ctx, h)
	if err != nil {
		return Info{}, fmt.Errorf("cas: stat %s: %w", h, err)
	}
	return info, nil
}

// Open returns a Reader over the blob stored under h, or an error wrapping
// ErrNotFound. Blobs up to VerifyReadsUpTo are read and verified before Open
// returns (a corrupt one is an error wrapping ErrHashMismatch) and served
// from memory. Larger ones come back as a Reader whose sequential read to the
// end checks the hash and returns an error wrapping ErrHashMismatch instead
// of io.EOF when it differs: the read that reaches the end returns the error
// and all but the blob's last byte, so that a reader that counts bytes
// (io.CopyN, http.ServeContent) sees a short read. A Seek back into what was read
// keeps the check; reads that skip ahead lose it, and ReadAt is never
// checked. The caller must Close the Reader.
func (s *Store) Open(ctx context.Context, h Hash) (Reader, error) {
	start := time.Now()
	r, err := s.open(ctx, h)
	var n int64
	if r != nil {
		n = r.Size()
	}
	s.observe(OpOpen, n, start, err)
	return r, err
}

func (s *Store) open(ctx context.Context, h Hash) (Reader, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cas: open %s: %w", h, err)
	}
	r, err := s.b.Open(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("cas: open %s: %w", h, err)
	}
	if s.verifyUpTo < 0 || r.Size() > s.verifyUpTo {
		v := &verifyingReader{r: r, want: h, hasher: NewHasher(), s: s, start: time.Now()}
		if fr, ok := r.(FileReader); ok {
			return &verifyingFile{verifyingReader: v, f: fr.File()}, nil
		}
		return v, nil
	}
	b, err := readVerified(r, h)
	if cerr := r.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("cas: open %s: %w", h, err)
	}
	return memReader{bytes.NewReader(b)}, nil
}

// readVerified reads all of r (r.Size() bytes) and checks that they hash to h.
func readVerified(r Reader, h Hash) ([]byte, error) {
	b := make([]byte, r.Size())
	n, err := io.ReadFull(r, b)
	switch {
	case err == io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("stored bytes end after %d of %d: %w", n, len(b), ErrHashMismatch)
	case err != nil:
		return nil, fmt.Errorf("read: %w", err)
	}
	if got := Sum(b); got != h {
		return nil, fmt.Errorf("stored bytes hash to %s: %w", got, ErrHashMismatch)
	}
	return b, nil
}

// ReadAll returns the verified bytes of the blob stored under h, which must
// be at most limit bytes long (else an error wrapping ErrTooLarge).
func (s *Store) ReadAll(ctx context.Context, h Hash, limit int64) ([]byte, error) {
	start := time.Now()
	b, err := s.readAll(ctx, h, limit)
	s.observe(OpReadAll, int64(len(b)), start, err)
	return b, err
}

func (s *Store) readAll(ctx context.Context, h Hash, limit int64) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cas: read %s: %w", h, err)
	}
	if limit < 0 {
		return nil, fmt.Errorf("cas: read %s: negative limit %d", h, limit)
	}
	r, err := s.b.Open(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("cas: read %s: %w", h, err)
	}
	defer r.Close()
	if r.Size() > limit {
		return nil, fmt.Errorf("cas: read %s: %d bytes, more than %d: %w", h, r.Size(), limit, ErrTooLarge)
	}
	b, err := readVerified(r, h)
	if err != nil {
		return nil, fmt.Errorf("cas: read %s: %w", h, err)
	}
	return b, nil
}

// Delete removes the blob stored under h; an absent blob is an error
// wrapping ErrNotFound.
func (s *Store) Delete(ctx context.Context, h Hash) error {
	start := time.Now()
	err := s.checkOpen()
	if err == nil {
		err = s.b.Delete(ctx, h)
	}
	if err != nil {
		err = fmt.Errorf("cas: delete %s: %w", h, err)
	}
	s.observe(OpDelete, 0, start, err)
	return err
}

// DeleteMany removes the blobs stored under hs; absent ones are fine. It uses
// the backend's BatchDeleter when it has one.
func (s *Store) DeleteMany(ctx context.Context, hs []Hash) error {
	start := time.Now()
	err := s.deleteMany(ctx, hs)
	if err != nil {
		err = fmt.Errorf("cas: delete %d blobs: %w", len(hs), err)
	}
	s.observe(OpDeleteMany, int64(len(hs)), start, err)
	return err
}

func (s *Store) deleteMany(ctx context.Context, hs []Hash) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if len(hs) == 0 {
		return nil
	}
	if bd, ok := s.b.(BatchDeleter); ok {
		return bd.DeleteMany(ctx, hs)
	}
	for _, h := range hs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.b.Delete(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%s: %w", h, err)
		}
	}
	return nil
}

// Walk calls fn for every stored blob, in no promised order, until fn
// returns an error (which Walk returns as it is) or the blobs end. Blobs
// stored or deleted while Walk runs may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	start := time.Now()
	var n int64
	var fnErr error
	err := s.checkOpen()
	if err == nil {
		err = s.b.Walk(ctx, func(info Info) error {
			n++
			if err := fn(info); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
	}
	if err != nil && (fnErr == nil || err != fnErr) {
		err = fmt.Errorf("cas: walk: %w", err)
	}
	s.observe(OpWalk, n, start, err)
	return err
}

// CleanTemp removes the backend's temporary data older than olderThan (see
// TempCleaner) and reports how many items and bytes it removed; (0, 0, nil)
// when the backend keeps none. With olderThan 0 it removes all of it, which
// is right only when no upload runs (at start, under the data's lock).
func (s *Store) CleanTemp(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	start := time.Now()
	items, n, err := s.cleanTemp(ctx, olderThan)
	if err != nil {
		err = fmt.Errorf("cas: clean temporary data: %w", err)
	}
	s.observe(OpCleanTemp, n, start, err)
	return items, n, err
}

func (s *Store) cleanTemp(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, 0, err
	}
	if olderThan < 0 {
		return 0, 0, fmt.Errorf("negative age %s", olderThan)
	}
	tc, ok := s.b.(TempCleaner)
	if !ok {
		return 0, 0, nil
	}
	return tc.CleanTemp(ctx, olderThan)
}

// Ping reports whether the backend answers (readiness); nil when the backend
// cannot tell.
func (s *Store) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.checkOpen()
	if p, ok := s.b.(Pinger); ok && err == nil {
		err = p.Ping(ctx)
	}
	if err != nil {
		err = fmt.Errorf("cas: ping: %w", err)
	}
	s.observe(OpPing, 0, start, err)
	return err
}

// Close closes the backend. Later calls of the Store's methods fail with
// ErrClosed; uploads in progress fail at Commit. Closing twice returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.b.Close(); err != nil {
		return fmt.Errorf("cas: close: %w", err)
	}
	return nil
}

// memReader serves a verified blob from memory.
type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

// verifyingReader hashes the bytes read sequentially from offset 0 and, when
// such a read reaches the end (Size bytes, or io.EOF), compares the hash with
// want. On a mismatch that read returns all but the last byte and the error.
type verifyingReader struct {
	s      *Store    // observes the end of the check (OpVerify)
	start  time.Time // when the read began
	r      Reader
	want   Hash
	hasher *Hasher
	pos    int64 // the offset of r
	hashed int64 // bytes [0, hashed) went through hasher
	err    error // sticky: the mismatch found at the end
	ok     bool  // the end was reached and the hash matched
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	// Hash what extends the hashed prefix, also after a seek back into it.
	if end := v.pos + int64(n); !v.ok && v.pos <= v.hashed && v.hashed < end {
		_, _ = v.hasher.Write(p[v.hashed-v.pos : n])
		v.hashed = end
	}
	v.pos += int64(n)
	// Check when the hashed prefix reaches the size, not only at io.EOF:
	// io.CopyN and http.ServeContent stop after Size bytes and never read EOF.
	if !v.ok && v.pos == v.hashed && (v.hashed == v.r.Size() || err == io.EOF) {
		if got := v.hasher.Sum(); got != v.want {
			v.err = fmt.Errorf("cas: read %s: stored bytes hash to %s: %w", v.want, got, ErrHashMismatch)
			v.verified(v.err)
			// Withhold the last byte: io.CopyN drops the error of a copy
			// that got all it asked for, but not of a short one.
			if n > 0 {
				n--
			}
			return n, v.err
		}
		v.ok = true
		v.verified(nil)
	}
	return n, err
}

// verified tells the Store's Observer how the check of a whole read ended.
func (v *verifyingReader) verified(err error) {
	if v.s != nil {
		v.s.observe(OpVerify, v.r.Size(), v.start, err)
	}
}

func (v *verifyingReader) Seek(offset int64, whence int) (int64, error) {
	p, err := v.r.Seek(offset, whence)
	if err == nil {
		v.pos = p
	}
	return p, err
}

func (v *verifyingReader) ReadAt(p []byte, off int64) (int, error) { return v.r.ReadAt(p, off) }
func (v *verifyingReader) Size() int64                             { return v.r.Size() }
func (v *verifyingReader) Close() error                            { return v.r.Close() }
