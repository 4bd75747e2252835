package refs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/backoff"
)

// BlobInfo returns the registry row of a live blob and renews its lease
// (HEAD /blobs/{hash}); index.ErrNotFound when h is not live.
func (s *Service) BlobInfo(ctx context.Context, h cas.Hash) (index.Blob, error) {
	live, err := s.idx.RenewBlobs(ctx, []cas.Hash{h})
	if err != nil {
		return index.Blob{}, fmt.Errorf("refs: renew lease of blob %s: %w", h, err)
	}
	b, ok := live[h]
	if !ok {
		return index.Blob{}, fmt.Errorf("refs: blob %s: %w", h, index.ErrNotFound)
	}
	return b, nil
}

// MissingBlobs renews the lease of every live blob among hs and returns the
// others, once each, in the order asked.
func (s *Service) MissingBlobs(ctx context.Context, hs []cas.Hash) ([]cas.Hash, error) {
	live, err := s.idx.RenewBlobs(ctx, hs)
	if err != nil {
		return nil, fmt.Errorf("refs: renew leases of %d blobs: %w", len(hs), err)
	}
	missing := make([]cas.Hash, 0)
	seen := make(map[cas.Hash]bool)
	for _, h := range hs {
		if _, ok := live[h]; ok || seen[h] {
			continue
		}
		seen[h] = true
		missing = append(missing, h)
	}
	return missing, nil
}

// OpenBlob opens the bytes stored under h (GET /blobs/{hash});
// cas.ErrNotFound when there are none. The registry decides, as for
// BlobInfo (HEAD): a blob that is pending, being deleted by a sweep or gone
// from the registry is not found, even while its bytes remain in the blob
// store or in the cache. Asking the registry, rather than having sweeps
// evict the cache, holds across replicas: a sweep on one server cannot
// reach the cache of another. Small blobs in the cache (OLX) then cost no
// storage round trip, inline ones no blob store round trip. The caller
// must Close the reader.
//
// With Options.OpenBeside the blob store's open starts beside the index
// lookup; when the registry says no (or that the blob is inline or cached),
// what it opened is closed unread.
func (s *Service) OpenBlob(ctx context.Context, h cas.Hash) (cas.Reader, error) {
	var early *earlyOpen
	if s.opt.OpenBeside && !s.cache.has(h) {
		early = &earlyOpen{done: make(chan struct{})}
		go func() {
			defer close(early.done)
			early.r, early.err = s.blobs.Open(ctx, h)
		}()
	}
	r, err := s.openBlob(ctx, h, early)
	if early != nil && !early.taken {
		go func() {
			<-early.done
			if early.r != nil {
				early.r.Close()
			}
		}()
	}
	return r, err
}

// earlyOpen is a blob store's open started beside the index lookup.
type earlyOpen struct {
	done  chan struct{} // closed when r and err are set
	r     cas.Reader
	err   error
	taken bool // openBlob answered with it: the caller closes r
}

// openBlob is OpenBlob; early, when not nil, is the open started beside
// the lookup, taken when the row says the bytes are in the blob store.
func (s *Service) openBlob(ctx context.Context, h cas.Hash, early *earlyOpen) (cas.Reader, error) {
	row, err := s.idx.Blob(ctx, h)
	switch {
	case errors.Is(err, index.ErrNotFound):
		s.cache.remove(h)
		return nil, fmt.Errorf("refs: blob %s: %w", h, cas.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("refs: look up blob %s: %w", h, err)
	case row.State != index.BlobLive:
		s.cache.remove(h)
		return nil, fmt.Errorf("refs: blob %s is %s: %w", h, row.State, cas.ErrNotFound)
	}
	// The row says where the bytes are: a blob in the blob store costs no
	// index round trip for inline bytes it does not have.
	var r cas.Reader
	switch b, cached := s.cache.get(h); {
	case cached:
		r = memReader{bytes.NewReader(b)}
	case row.Inline:
		r, err = s.open(ctx, h)
	case early != nil:
		<-early.done
		r, err, early.taken = early.r, early.err, true
		if errors.Is(err, cas.ErrNotFound) {
			// Asked before an upload committed that the row, read
			// after, shows live: ask again.
			r, err = s.blobs.Open(ctx, h)
		}
	default:
		r, err = s.blobs.Open(ctx, h)
	}
	if err != nil {
		return nil, fmt.Errorf("refs: open blob %s: %w", h, err)
	}
	return r, nil
}

// PutBlob stores the bytes of r under h, a hash the client computed. size
// is the count of bytes the client announced (its Content-Length), or 0
// when unknown: the blob store sizes its buffers by it, and any other count
// fails and stores nothing. It reports created false when h was already
// stored: r is then read and verified but nothing is written. Bytes that
// hash otherwise are a *cas.MismatchError and store nothing.
func (s *Service) PutBlob(ctx context.Context, h cas.Hash, r io.Reader, size int64) (info cas.Info, created bool, err error) {
	state, ticket, err := s.beginBlob(ctx, h)
	if err != nil {
		return cas.Info{}, false, err
	}
	if state == index.BlobLive {
		n, err := verify(r, h, size)
		if err != nil {
			return cas.Info{}, false, fmt.Errorf("refs: put blob %s: %w", h, err)
		}
		return cas.Info{Hash: h, Size: n}, false, nil
	}
	info, err = s.blobs.Put(ctx, r, cas.PutOptions{Expected: &h, Size: max(size, 0)})
	if err != nil {
		return cas.Info{}, false, fmt.Errorf("refs: put blob %s: %w", h, err)
	}
	if err := s.finishBlob(ctx, h, info.Size, ticket); err != nil {
		return cas.Info{}, false, err
	}
	return info, true, nil
}

// AddBlob stores the bytes of r under the hash they have (POST /blobs) and
// answers with Render(info, created); created is false when the bytes were
// stored already. size is as for PutBlob. An Idempotency-Key reused with
// other bytes is ErrKeyReused and stores nothing.
func (s *Service) AddBlob(ctx context.Context, r io.Reader, size int64, req Request[cas.Info]) (Answer, error) {
	st, err := s.stage(ctx, r, size)
	if err != nil {
		return Answer{}, err
	}
	defer st.discard()
	op := &writeOp[cas.Info]{req: req, body: st.hash, noTx: true}
	if req.Body != nil {
		op.body = *req.Body
	}
	if ans, ok, err := replayed(ctx, s.idx, op); ok || err != nil {
		return ans, err
	}
	if err := s.settle(ctx, st); err != nil {
		return Answer{}, err
	}
	op.apply = func(index.Tx) (cas.Info, bool, error) {
		return cas.Info{Hash: st.hash, Size: st.size}, st.committed, nil
	}
	return commit(ctx, s, op)
}

// memReader is a cas.Reader over cached bytes.
type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

// verify reads r to its end and checks that its bytes hash to h, and that
// they are size bytes when size > 0.
func verify(r io.Reader, h cas.Hash, size int64) (int64, error) {
	hr := cas.NewHasher()
	n, err := io.Copy(hr, r)
	if err != nil {
		return n, fmt.Errorf("read body: %w", err)
	}
	if size > 0 && n != size {
		return n, fmt.Errorf("read body: %d bytes announced, %d received: %w", size, n, io.ErrUnexpectedEOF)
	}
	if got := hr.Sum(); got != h {
		return n, &cas.MismatchError{Want: h, Got: got}
	}
	return n, nil
}

// beginBlob registers an upload of h (BeginBlob), waiting a bounded time
// while a sweep is deleting the same blob.
func (s *Service) beginBlob(ctx context.Context, h cas.Hash) (index.BlobState, index.Ticket, error) {
	deadline := time.Now().Add(s.opt.BusyWait)
	for attempt := 1; ; attempt++ {
		state, ticket, err := s.idx.BeginBlob(ctx, h)
		if err == nil {
			return state, ticket, nil
		}
		if !errors.Is(err, index.ErrBlobBusy) {
			return 0, 0, fmt.Errorf("refs: begin upload of blob %s: %w", h, err)
		}
		if s.onBusy != nil {
			s.onBusy(h)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, 0, fmt.Errorf("%w: blob %s is being deleted by a sweep: %w", ErrRetry, h, err)
		}
		if err := backoff.Sleep(ctx, min(busyBackoff.Delay(attempt), left)); err != nil {
			return 0, 0, fmt.Errorf("refs: begin upload of blob %s: %w", h, err)
		}
	}
}

// finishBlob marks h live after its bytes were committed. When a sweep took
// the registry row in between, the upload is registered again: the bytes are
// the same whoever stored them, so when they are still there they become
// live; when the sweep deleted them the client must send them again.
func (s *Service) finishBlob(ctx context.Context, h cas.Hash, size int64, ticket index.Ticket) error {
	for attempt := 1; ; attempt++ {
		err := s.idx.FinishBlob(ctx, h, size, ticket)
		if err == nil {
			return nil
		}
		if !errors.Is(err, index.ErrBlobMissing) || attempt == storeAttempts {
			return fmt.Errorf("refs: finish upload of blob %s: %w", h, err)
		}
		s.log.Warn("a sweep took a blob while it was being stored; registering it again", "hash", h.String())
		state, again, err := s.beginBlob(ctx, h)
		if err != nil {
			return err
		}
		if state == index.BlobLive {
			return nil
		}
		ticket = again
		if _, err := s.blobs.Stat(ctx, h); err != nil {
			if errors.Is(err, cas.ErrNotFound) {
				return fmt.Errorf("%w: a sweep deleted blob %s while it was being stored; send it again", ErrRetry, h)
			}
			return fmt.Errorf("refs: stat blob %s: %w", h, err)
		}
	}
}

// storeBytes stores b, whose hash is h, held in memory (OLX): nothing is
// written when h is live already.
func (s *Service) storeBytes(ctx context.Context, h cas.Hash, b []byte) error {
	state, ticket, err := s.beginBlob(ctx, h)
	if err != nil {
		return err
	}
	if state != index.BlobLive {
		if _, err := s.blobs.Put(ctx, bytes.NewReader(b), cas.PutOptions{Expected: &h}); err != nil {
			return fmt.Errorf("refs: store blob %s: %w", h, err)
		}
		if err := s.finishBlob(ctx, h, int64(len(b)), ticket); err != nil {
			return err
		}
	}
	s.cache.add(h, b)
	return nil
}

// staged is an upload whose hash is known but which may not be visible yet.
type staged struct {
	up        *cas.Upload
	hash      cas.Hash
	size      int64
	committed bool // Commit succeeded: the upload no longer holds the bytes
}

// stage writes r, of size bytes announced (0: unknown), to a new upload
// and computes its hash. The caller must call discard.
func (s *Service) stage(ctx context.Context, r io.Reader, size int64) (*staged, error) {
	up, err := s.blobs.Begin(ctx, cas.PutOptions{Size: max(size, 0)})
	if err != nil {
		return nil, fmt.Errorf("refs: begin upload: %w", err)
	}
	if _, err := up.ReadFrom(r); err != nil {
		up.Cancel()
		return nil, fmt.Errorf("refs: receive upload: %w", err)
	}
	h, size, err := up.Sum()
	if err != nil {
		up.Cancel()
		return nil, fmt.Errorf("refs: hash upload: %w", err)
	}
	return &staged{up: up, hash: h, size: size}, nil
}

// discard cancels the upload unless it was committed.
func (st *staged) discard() {
	if st != nil && !st.committed {
		st.up.Cancel()
	}
}

// settle makes the staged bytes live: BeginBlob (pending) before Commit
// makes them visible, so that a sweep never deletes bytes it did not claim,
// then FinishBlob. When the blob is live already nothing is committed and
// the staged bytes stay available to a later settle (a commit that a sweep
// overtook). When they were committed before and a sweep deleted them since,
// it is ErrRetry: the body is consumed, the client must send it again.
func (s *Service) settle(ctx context.Context, st *staged) error {
	state, ticket, err := s.beginBlob(ctx, st.hash)
	if err != nil {
		return err
	}
	if state == index.BlobLive {
		return nil
	}
	if !st.committed {
		if _, err := st.up.Commit(ctx); err != nil {
			return fmt.Errorf("refs: commit blob %s: %w", st.hash, err)
		}
		st.committed = true
		return s.finishBlob(ctx, st.hash, st.size, ticket)
	}
	if _, err := s.blobs.Stat(ctx, st.hash); err != nil {
		if errors.Is(err, cas.ErrNotFound) {
			return fmt.Errorf("%w: a sweep deleted blob %s while it was being stored; send it again", ErrRetry, st.hash)
		}
		return fmt.Errorf("refs: stat blob %s: %w", st.hash, err)
	}
	return s.finishBlob(ctx, st.hash, st.size, ticket)
}

// blobBytes returns the bytes of a small blob, from the cache when it can,
// else from the index when inline, else from the blob store.
// size is the blob's size from the registry: more bytes than that is an
// error.
func (s *Service) blobBytes(ctx context.Context, h cas.Hash, size int64) ([]byte, error) {
	if b, ok := s.cache.get(h); ok {
		return b, nil
	}
	if b, ok, err := s.inlineBytes(ctx, h); err != nil || ok {
		if ok {
			s.cache.add(h, b)
		}
		return b, err
	}
	return s.storedBytes(ctx, h, size)
}

// storedBytes is blobBytes for a blob known not to be inline: the cache,
// then the blob store.
func (s *Service) storedBytes(ctx context.Context, h cas.Hash, size int64) ([]byte, error) {
	if b, ok := s.cache.get(h); ok {
		return b, nil
	}
	b, err := s.blobs.ReadAll(ctx, h, size)
	if err != nil {
		return nil, fmt.Errorf("refs: read blob %s: %w", h, err)
	}
	s.cache.add(h, b)
	return b, nil
}
