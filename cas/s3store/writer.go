package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
)

// maxOverlapParts bounds, process-wide, the part buffers uploads use to
// send one part while they fill the next. Each upload always has the one
// it fills; past this budget an upload sends its parts one at a time.
const maxOverlapParts = 8

// overlapParts is the budget of maxOverlapParts.
var overlapParts = make(chan struct{}, maxOverlapParts)

// Holding: an upload whose hash is not known yet keeps its parts in memory,
// up to maxHeldBytes of them and within a process-wide budget of
// maxHeldBudget part buffers, and at Commit, its hash known, sends them
// straight to the final key. A temporary key would cost the bucket a
// server-side copy of every byte (in MinIO, a second write). An upload that
// outgrows its share, or finds the budget spent, starts a multipart upload
// to a temporary key with what it holds and goes on streaming.
const (
	maxHeldBytes  = 32 << 20
	maxHeldBudget = 8
)

// heldParts is the budget of maxHeldBudget.
var heldParts = make(chan struct{}, maxHeldBudget)

func takeHeld() bool {
	select {
	case heldParts <- struct{}{}:
		return true
	default:
		return false
	}
}

// Create implements cas.Backend: see the package documentation for the
// ways an upload goes. Nothing is sent until the bytes outgrow SmallBlobSize.
func (s *Store) Create(ctx context.Context, opt cas.CreateOptions) (cas.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &writer{s: s, ctx: ctx, known: opt.Known != nil, max: int64(s.partSize) * maxParts, announced: max(opt.Size, 0)}
	if opt.Known != nil {
		w.key = s.Key(*opt.Known)
	} else {
		w.key = s.tmpKey()
	}
	if opt.Size >= 0 && opt.Size <= SmallBlobSize {
		// Announced small: one allocation instead of a growing slice.
		w.buf = make([]byte, 0, opt.Size)
	}
	s.live.add(w.key)
	return w, nil
}

// writer is one upload: bytes held in memory while the blob is small (or,
// hash unknown, up to maxHeldBytes), then a multipart upload whose parts are
// sent as they fill, one on its way to the bucket while the next one fills.
// A streaming upload holds at most two part buffers, whatever the blob's
// size; a held one at most maxHeldBytes of them. Both give them back when
// the upload ends.
type writer struct {
	s     *Store
	ctx   context.Context // Create's: it bounds the whole upload
	key   string          // the final key (known hash) or a temp key
	known bool
	max   int64 // partSize × maxParts
	// announced is the size the caller announced (CreateOptions.Size),
	// 0 when unknown.
	announced int64
	n         int64
	buf       []byte // the bytes not sent yet: the small blob, then the part filling
	ended     bool   // committed or cancelled

	// Set when the multipart upload begins (begin).
	uploadID string
	upCtx    context.Context // cancelled by Cancel and by a failed part
	cancel   context.CancelCauseFunc
	part     int           // number of the last part sent
	inFlight chan struct{} // closed when the part on its way has arrived; nil when none is
	flying   []byte        // the buffer of the part on its way
	spare    []byte        // the second buffer, when no part is on its way
	second   bool          // the upload holds a second buffer (of maxOverlapParts)

	// Set while an upload of unknown hash holds its parts (see maxHeldBytes).
	held   int      // part buffers taken from heldParts: parked and buf
	parked [][]byte // full parts held

	// Set while an upload of unknown hash spools (see spool.go).
	spool    *os.File // unlinked already
	spooled  int64    // bytes in spool
	reserved int64    // bytes of the spool budget taken

	mu    sync.Mutex
	parts []minio.CompletePart
	err   error // the first part that failed
}

func (w *writer) multipart() bool { return w.uploadID != "" }

func (w *writer) Write(p []byte) (int, error) {
	if w.ended {
		return 0, errors.New("s3store: write after the upload ended")
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.n+int64(len(p)) > w.max {
		return 0, fmt.Errorf("s3store: a blob has at most %d parts of %d bytes (raise the part size): %w",
			maxParts, w.s.partSize, cas.ErrTooLarge)
	}
	if w.spool != nil {
		return w.spoolWrite(p)
	}
	if !w.multipart() && w.n+int64(len(p)) <= SmallBlobSize {
		w.buf = append(w.buf, p...)
		w.n += int64(len(p))
		return len(p), nil
	}
	if !w.multipart() && !w.holding() {
		small := w.buf
		// Announced too large to hold, or no budget to hold it: spooled
		// from here on.
		if !w.known && (w.announced > maxHeldBytes || !takeHeld()) {
			if w.startSpool(small) {
				w.buf = nil
				return w.spoolWrite(p)
			}
			if err := w.begin(); err != nil {
				return 0, err
			}
		} else if !w.known {
			w.held = 1
		} else if err := w.begin(); err != nil {
			return 0, err
		}
		w.buf = append(w.s.partBuffer(), small...)
	}
	var n int
	for len(p) > 0 {
		// A full part is dealt with when more bytes come: the last one
		// waits for Commit, which knows it is the last.
		if len(w.buf) == cap(w.buf) {
			if err := w.full(); err != nil {
				return n, err
			}
			if w.spool != nil {
				m, err := w.spoolWrite(p)
				return n + m, err
			}
		}
		c := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+c]
		p = p[c:]
		n += c
		w.n += int64(c)
	}
	return n, nil
}

func (w *writer) holding() bool { return w.held > 0 }

// full deals with a full part buffer: held while the upload may hold one
// more, else sent (after what was held, when the upload spills).
func (w *writer) full() error {
	if !w.holding() {
		return w.send()
	}
	if int64(w.held+1)*int64(w.s.partSize) <= maxHeldBytes && takeHeld() {
		w.held++
		w.parked = append(w.parked, w.buf)
		w.buf = w.s.partBuffer()
		return nil
	}
	if w.startSpool(append(w.parked, w.buf)...) {
		w.dropHeld()
		return nil
	}
	// Spill: a multipart upload to the temporary key, starting with the
	// parts held, one at a time.
	if err := w.begin(); err != nil {
		return err
	}
	for len(w.parked) > 0 {
		b := w.parked[0]
		w.parked = w.parked[1:]
		w.part++
		w.putPart(w.part, bytes.NewReader(b), int64(len(b)))
		w.s.putPartBuffer(b)
		w.held--
		<-heldParts
		if err := w.failed(); err != nil {
			return err
		}
	}
	w.held--
	<-heldParts
	return w.send()
}

// dropHeld gives back what a holding upload holds.
func (w *writer) dropHeld() {
	for _, b := range w.parked {
		w.s.putPartBuffer(b)
	}
	w.parked = nil
	if w.holding() && w.buf != nil {
		w.s.putPartBuffer(w.buf)
	}
	w.buf = nil
	for ; w.held > 0; w.held-- {
		<-heldParts
	}
}

// begin starts the multipart upload.
func (w *writer) begin() error {
	ctx, cancel := w.s.bounded(w.ctx, 0)
	id, err := w.s.core.NewMultipartUpload(ctx, w.s.bucket, w.key, minio.PutObjectOptions{ContentType: contentType})
	err = w.s.late(ctx, err)
	cancel()
	if err != nil {
		return fmt.Errorf("s3store: upload %s: %w", w.key, translate(err))
	}
	w.uploadID = id
	w.upCtx, w.cancel = context.WithCancelCause(w.ctx)
	return nil
}

// partBufs holds, per part size, a sync.Pool of empty part buffers: a
// fresh 16 MiB buffer per upload cost page faults on every part.
var partBufs sync.Map // uint64 → *sync.Pool

func (s *Store) partPool() *sync.Pool {
	if p, ok := partBufs.Load(s.partSize); ok {
		return p.(*sync.Pool)
	}
	p, _ := partBufs.LoadOrStore(s.partSize, &sync.Pool{})
	return p.(*sync.Pool)
}

// partBuffer returns an empty buffer of partSize bytes.
func (s *Store) partBuffer() []byte {
	if b, ok := s.partPool().Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, s.partSize)
}

func (s *Store) putPartBuffer(b []byte) {
	b = b[:0]
	s.partPool().Put(&b)
}

// send starts the upload of the part filled: in the background when the
// upload has a second buffer to fill the next part in (from the budget of
// maxOverlapParts), else before it returns. Either way the part before it
// has arrived first: at most one part of an upload is on its way.
func (w *writer) send() error {
	if err := w.wait(); err != nil {
		return err
	}
	w.part++
	part, b := w.part, w.buf
	if w.spare == nil && !w.second {
		select {
		case overlapParts <- struct{}{}:
			w.second = true
			w.spare = w.s.partBuffer()
		default:
		}
	}
	if w.spare == nil {
		w.putPart(part, bytes.NewReader(b), int64(len(b)))
		w.buf = b[:0]
		return w.failed()
	}
	w.buf, w.spare, w.flying = w.spare, nil, b
	done := make(chan struct{})
	w.inFlight = done
	go func() {
		defer close(done)
		w.putPart(part, bytes.NewReader(b), int64(len(b)))
	}()
	return nil
}

// putPart sends one part, the n bytes of r (a seeker, for minio-go's
// retries), within the timeout plus the time it takes at copyRate, and
// records it; a failure cancels the upload.
func (w *writer) putPart(part int, r io.Reader, n int64) {
	ctx, cancel := w.s.bounded(w.upCtx, time.Duration(n/copyRate)*time.Second)
	defer cancel()
	p, err := w.s.core.PutObjectPart(ctx, w.s.bucket, w.key, w.uploadID, part, r, n,
		minio.PutObjectPartOptions{DisableContentSha256: true})
	err = w.s.late(ctx, err)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = fmt.Errorf("s3store: upload %s: part %d: %w", w.key, part, translate(err))
			w.cancel(w.err)
		}
		return
	}
	w.parts = append(w.parts, minio.CompletePart{PartNumber: part, ETag: p.ETag})
}

// wait waits for the part on its way, whose buffer becomes the spare, and
// returns the upload's error.
func (w *writer) wait() error {
	if w.inFlight != nil {
		<-w.inFlight
		w.inFlight = nil
		w.spare, w.flying = w.flying[:0], nil
	}
	return w.failed()
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Commit sends a small blob in one PUT to its final key; for a multipart
// upload it sends the last part, completes the upload and, for a temp key,
// copies it to the final key and deletes it.
func (w *writer) Commit(ctx context.Context, h cas.Hash, size int64) error {
	if w.ended {
		return errors.New("s3store: commit after the upload ended")
	}
	w.ended = true
	// The key stays live until the temporary object is copied and removed.
	defer w.s.live.drop(w.key)
	final := w.s.Key(h)
	if w.spool != nil {
		defer w.closeSpool()
		return w.putSpooled(ctx, final, size)
	}
	if w.holding() {
		defer w.dropHeld()
		return w.putHeld(ctx, final, size)
	}
	if !w.multipart() {
		held := w.buf
		w.buf = nil
		if err := w.ctx.Err(); err != nil {
			return err
		}
		pctx, cancel := w.s.bounded(ctx, 0)
		defer cancel()
		// No SHA-256 of the payload (as over TLS): the bytes were hashed
		// and are verified on every read.
		_, err := w.s.client.PutObject(pctx, w.s.bucket, final, bytes.NewReader(held), int64(len(held)),
			minio.PutObjectOptions{ContentType: contentType, DisableContentSha256: true})
		if err != nil {
			return fmt.Errorf("s3store: put %s: %w", final, w.s.late(pctx, translate(err)))
		}
		return nil
	}
	if err := w.complete(ctx, size); err != nil {
		w.abort()
		return err
	}
	if w.known {
		return nil
	}
	if w.s.beforeMove != nil {
		w.s.beforeMove()
	}
	err := w.s.moveTemp(ctx, w.key, final, size)
	w.s.removeDetached(w.key)
	return err
}

// complete sends the last part and completes the multipart upload.
func (w *writer) complete(ctx context.Context, size int64) error {
	// Cancelling the commit's context stops the upload too.
	stop := context.AfterFunc(ctx, func() { w.cancel(context.Cause(ctx)) })
	defer stop()
	if len(w.buf) > 0 {
		if err := w.send(); err != nil {
			return err
		}
	}
	if err := w.wait(); err != nil {
		return err
	}
	w.release()
	return w.finish(ctx, size)
}

// finish completes the multipart upload of the parts sent.
func (w *writer) finish(ctx context.Context, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.SortFunc(w.parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	if len(w.parts) != w.part {
		return fmt.Errorf("s3store: upload %s: %d parts sent, %d recorded", w.key, w.part, len(w.parts))
	}
	cctx, cancel := w.s.bounded(w.upCtx, time.Duration(size/copyRate)*time.Second)
	defer cancel()
	_, err := w.s.core.CompleteMultipartUpload(cctx, w.s.bucket, w.key, w.uploadID, w.parts,
		minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("s3store: upload %s: complete: %w", w.key, w.s.late(cctx, translate(err)))
	}
	return nil
}

// release gives the part buffers back, and the second one's place in the
// budget; no part may be on its way.
func (w *writer) release() {
	if w.multipart() {
		for _, b := range [][]byte{w.buf, w.spare} {
			if b != nil {
				w.s.putPartBuffer(b)
			}
		}
	}
	w.buf, w.spare = nil, nil
	if w.second {
		w.second = false
		<-overlapParts
	}
}

// abort stops the part on its way and aborts the multipart upload, even
// when the upload's context has ended.
func (w *writer) abort() {
	w.cancel(errors.New("s3store: upload cancelled"))
	_ = w.wait()
	w.release()
	ctx, cancel := w.s.bounded(context.Background(), 0)
	defer cancel()
	_ = w.s.core.AbortMultipartUpload(ctx, w.s.bucket, w.key, w.uploadID)
}

// Cancel drops the held bytes, or aborts the multipart upload and waits
// until it has.
func (w *writer) Cancel() error {
	if w.ended {
		return nil
	}
	w.ended = true
	defer w.s.live.drop(w.key)
	if w.holding() {
		w.dropHeld()
	}
	w.closeSpool()
	if w.multipart() {
		w.abort()
	}
	w.buf = nil
	return nil
}

// putHeld stores the parts an upload held under the final key, unless the
// key holds the blob already: a multipart upload whose parts go all at
// once.
func (w *writer) putHeld(ctx context.Context, final string, size int64) error {
	parts := append(w.parked, w.buf)
	if len(w.buf) == 0 {
		parts = w.parked
	}
	return w.putFinal(ctx, final, size, func() int {
		var wg sync.WaitGroup
		for i, b := range parts {
			wg.Go(func() { w.putPart(i+1, bytes.NewReader(b), int64(len(b))) })
		}
		wg.Wait()
		return len(parts)
	})
}

// putFinal stores an upload whose hash is known under its final key in a
// multipart upload whose parts send puts (it returns how many), unless the
// key holds the blob already (an earlier put of the same bytes).
func (w *writer) putFinal(ctx context.Context, final string, size int64, send func() int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	sctx, cancel := w.s.bounded(ctx, 0)
	st, err := w.s.client.StatObject(sctx, w.s.bucket, final, minio.StatObjectOptions{})
	err = w.s.late(sctx, err)
	cancel()
	if err == nil && st.Size == size {
		return nil
	}
	if err != nil && !errors.Is(translate(err), cas.ErrNotFound) {
		return fmt.Errorf("s3store: stat %s: %w", final, translate(err))
	}
	// Its multipart upload is this process's: CleanTemp leaves it alone.
	w.s.live.add(final)
	defer w.s.live.drop(final)
	w.key = final
	if err := w.begin(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { w.cancel(context.Cause(ctx)) })
	defer stop()
	parts := send()
	w.part = parts
	if err := w.failed(); err != nil {
		w.abort()
		return err
	}
	if err := w.finish(ctx, size); err != nil {
		w.abort()
		return err
	}
	return nil
}

// moveTemp copies the object tmp to final by a server-side copy, unless
// final already holds the blob.
func (s *Store) moveTemp(ctx context.Context, tmp, final string, size int64) error {
	ctx, cancel := s.bounded(ctx, time.Duration(size/copyRate)*time.Second)
	defer cancel()
	st, err := s.client.StatObject(ctx, s.bucket, final, minio.StatObjectOptions{})
	if err == nil && st.Size == size {
		return nil // stored by an earlier put of the same bytes
	}
	if err != nil && !errors.Is(translate(err), cas.ErrNotFound) {
		return fmt.Errorf("s3store: stat %s: %w", final, s.late(ctx, translate(err)))
	}
	dst := minio.CopyDestOptions{Bucket: s.bucket, Object: final}
	src := minio.CopySrcOptions{Bucket: s.bucket, Object: tmp}
	if size <= s.copyLimit {
		_, err = s.client.CopyObject(ctx, dst, src)
	} else {
		dst.PartSize = s.composePartSize
		dst.NumThreads = 4
		_, err = s.client.ComposeObject(ctx, dst, src)
	}
	if err != nil {
		return fmt.Errorf("s3store: copy %s to %s: %w", tmp, final, s.late(ctx, translate(err)))
	}
	return nil
}

// removeDetached deletes key even when the caller's context has ended,
// within the timeout like every delete.
func (s *Store) removeDetached(key string) {
	ctx, cancel := s.bounded(context.Background(), 0)
	defer cancel()
	_ = s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}
