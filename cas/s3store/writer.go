package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
)

// Create implements cas.Backend: see the package documentation for the
// ways an upload goes. Nothing is sent until the bytes outgrow SmallBlobSize.
func (s *Store) Create(ctx context.Context, opt cas.CreateOptions) (cas.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	known := opt.Known
	w := &writer{s: s, ctx: ctx, known: known != nil, max: int64(s.partSize) * maxParts}
	if known != nil {
		w.key = s.Key(*known)
	} else {
		w.key = s.tmpKey()
	}
	s.live.add(w.key)
	return w, nil
}

// writer is one upload: bytes held in memory while the blob is small, then a
// PutObject fed through a pipe.
type writer struct {
	s     *Store
	ctx   context.Context // Create's: it bounds the whole upload
	key   string          // the final key (known hash) or a temp key
	known bool
	max   int64 // partSize × maxParts
	n     int64
	small []byte // the bytes so far, until the upload streams
	ended bool   // committed or cancelled

	// Set when the upload streams (startStream).
	pw     *io.PipeWriter
	putCtx context.Context
	cancel context.CancelFunc
	cut    func()        // cancel, saying the bucket did not answer in time
	done   chan struct{} // closed when PutObject has returned

	mu     sync.Mutex
	commit bool // Commit closed the pipe: PutObject may complete

	// Set by the PutObject goroutine before done is closed.
	info minio.UploadInfo
	err  error
}

func (w *writer) streaming() bool { return w.pw != nil }

func (w *writer) committing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.commit
}

// startStream starts the multipart PutObject and feeds it what was held.
func (w *writer) startStream() error {
	putCtx, cancel := context.WithCancelCause(w.ctx)
	pr, pw := io.Pipe()
	w.pw, w.putCtx, w.done = pw, putCtx, make(chan struct{})
	w.cancel = func() { cancel(nil) }
	w.cut = func() { cancel(errNoAnswer) }
	// minio-go blocks reading the pipe, not watching ctx: end the read too.
	stop := context.AfterFunc(putCtx, func() { pr.CloseWithError(putCtx.Err()) })
	go func() {
		defer close(w.done)
		defer stop()
		info, err := w.s.client.PutObject(putCtx, w.s.bucket, w.key, pr, -1, minio.PutObjectOptions{
			PartSize:    w.s.partSize,
			ContentType: contentType,
		})
		if err == nil && !w.committing() {
			// Unreachable while minio-go needs the pipe's EOF to complete;
			// refuse rather than keep a blob that was not committed.
			err = errors.New("upload completed before Commit")
			w.s.removeDetached(w.key)
		}
		// Unblock a writer still in pw.Write.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.Close()
		}
		w.info, w.err = info, err
	}()
	held := w.small
	w.small = nil
	if len(held) == 0 {
		return nil
	}
	var err error
	guard(w.s.timeout, w.cut, func() { _, err = pw.Write(held) })
	if err != nil {
		return fmt.Errorf("s3store: upload %s: %w", w.key, w.s.late(putCtx, translate(err)))
	}
	return nil
}

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
	if !w.streaming() {
		if w.n+int64(len(p)) <= SmallBlobSize {
			w.small = append(w.small, p...)
			w.n += int64(len(p))
			return len(p), nil
		}
		if err := w.startStream(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	guard(w.s.timeout, w.cut, func() { n, err = w.pw.Write(p) })
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("s3store: upload %s: %w", w.key, w.s.late(w.putCtx, translate(err)))
	}
	return n, nil
}

// Commit sends a small blob in one PUT to its final key; for a streamed one
// it completes the multipart upload (the pipe's EOF) and, for a temp key,
// copies it to the final key and deletes it.
func (w *writer) Commit(ctx context.Context, h cas.Hash, size int64) error {
	if w.ended {
		return errors.New("s3store: commit after the upload ended")
	}
	w.ended = true
	// The key stays live until the temporary object is copied and removed.
	defer w.s.live.drop(w.key)
	final := w.s.Key(h)
	if !w.streaming() {
		held := w.small
		w.small = nil
		if err := w.ctx.Err(); err != nil {
			return err
		}
		pctx, cancel := w.s.bounded(ctx, 0)
		defer cancel()
		_, err := w.s.client.PutObject(pctx, w.s.bucket, final, bytes.NewReader(held), int64(len(held)),
			minio.PutObjectOptions{ContentType: contentType})
		if err != nil {
			return fmt.Errorf("s3store: put %s: %w", final, w.s.late(pctx, translate(err)))
		}
		return nil
	}
	// Cancelling the commit's context stops the upload too.
	stop := context.AfterFunc(ctx, w.cancel)
	defer stop()
	defer w.cancel()

	w.mu.Lock()
	w.commit = true
	w.mu.Unlock()
	_ = w.pw.Close()
	guard(w.s.timeout, w.cut, func() { <-w.done })
	if w.err != nil {
		return fmt.Errorf("s3store: upload %s: %w", w.key, w.s.late(w.putCtx, translate(w.err)))
	}
	if w.info.Size != size {
		// Not reachable when minio-go works; never leave wrong bytes behind.
		w.s.removeDetached(w.key)
		return fmt.Errorf("s3store: upload %s: stored %d bytes, want %d", w.key, w.info.Size, size)
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

// Cancel drops the held bytes, or aborts the multipart upload (minio-go
// does when its read of the pipe fails) and waits until it has.
func (w *writer) Cancel() error {
	if w.ended {
		return nil
	}
	w.ended = true
	defer w.s.live.drop(w.key)
	w.small = nil
	if w.streaming() {
		w.pw.CloseWithError(errors.New("s3store: upload cancelled"))
		w.cancel()
		<-w.done
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
