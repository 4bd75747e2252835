package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// A batch of blobs is deleted by up to deleteWorkers concurrent DeleteMany
// calls of at least minDeleteChunk blobs each.
const (
	deleteWorkers  = 4
	minDeleteChunk = 64
)

// candidate is a blob of a plan: its hash and its bytes (0 when unknown).
type candidate struct {
	hash cas.Hash
	size int64
}

func decodeCandidateRec(b []byte) candidate {
	h, size := decodeCandidate(b)
	return candidate{h, size}
}

// Phase 3: resume. Rows in BlobDeleting were claimed by a sweep that did
// not finish (or, on PostgreSQL, by one that lost its lock and may still be
// running): nothing can reference them any more (commits naming them
// fail). Each is taken over (ReclaimBlobs) once its claim is older than the
// delete bound — so that no delete of the old claimant is still in flight —
// then its bytes are deleted and the row forgotten. Claims younger than the
// bound are waited for, once, up to the bound.

func (s *sweep) runResume(ctx context.Context) (int64, int64, error) {
	sp, err := s.spoolOf(ctx, candidateRecSize, func(emit func([]byte) error) error {
		rec := make([]byte, candidateRecSize)
		return s.c.idx.DeletingBlobs(ctx, func(b index.Blob) error {
			encodeCandidate(rec, b.Hash, max(b.Size, 0))
			return emit(rec)
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list blobs being deleted: %w", err)
	}
	defer sp.close()
	if sp.n == 0 {
		return 0, 0, nil
	}
	if s.dry {
		var items, bytes int64
		err := eachBatch(s, sp, decodeCandidateRec, func(cs []candidate) error {
			for _, c := range cs {
				items++
				bytes += c.size
			}
			return nil
		})
		s.report.BlobsDeleted += items
		s.report.BytesFreed += bytes
		return items, bytes, err
	}
	s.c.log.Info("gc: finishing the deletions of a sweep that stopped", "blobs", sp.n)
	var items, bytes int64
	// pass takes over what it can of from and deletes it; it returns the
	// claims too young to take over, in a spool the caller closes.
	pass := func(from *spool) (*spool, error) {
		young, err := newSpool(s.c.opt.TempDir, candidateRecSize)
		if err != nil {
			return nil, err
		}
		rec := make([]byte, candidateRecSize)
		err = eachBatch(s, from, decodeCandidateRec, func(cs []candidate) error {
			hs := make([]cas.Hash, len(cs))
			for i, c := range cs {
				hs[i] = c.hash
			}
			start := time.Now()
			rows, err := s.c.idx.ReclaimBlobs(ctx, s.report.ID, hs, s.c.opt.DeleteBound)
			if err != nil {
				return fmt.Errorf("take over %d claims: %w", len(hs), err)
			}
			taken := make(map[cas.Hash]bool, len(rows))
			for _, r := range rows {
				taken[r.Hash] = true
			}
			for _, c := range cs {
				if !taken[c.hash] {
					encodeCandidate(rec, c.hash, c.size)
					if err := young.append(rec); err != nil {
						return err
					}
				}
			}
			n, b, err := s.deleteClaimed(ctx, start, rows, cs)
			items += n
			bytes += b
			s.progress(ctx, items)
			return err
		})
		if err != nil {
			young.close()
			return nil, err
		}
		return young, nil
	}
	young, err := pass(sp)
	if err == nil && young.n > 0 {
		// Claims too young to take over: another sweep may be deleting them
		// now. Wait out the bound once and try again; what is still refused
		// then was finished by its sweep, or is held by a sweep that is alive.
		t := time.NewTimer(s.c.opt.DeleteBound)
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
			var left *spool
			if left, err = pass(young); err == nil {
				if left.n > 0 {
					s.note("%d blobs being deleted by another sweep were left to it", left.n)
				}
				left.close()
			}
		}
	}
	if young != nil {
		young.close()
	}
	s.report.BlobsDeleted += items
	s.report.BytesFreed += bytes
	return items, bytes, err
}

// Phase 5: sweep. Each batch of candidates is claimed (the index re-checks
// references and leases atomically against commits and moves the rows to
// BlobDeleting under this sweep's claim), the claimed bytes are deleted,
// then their rows forgotten. Candidates the index refuses to claim (a
// commit or a lease came after the plan) are kept.

func (s *sweep) runSweep(ctx context.Context) (int64, int64, error) {
	if s.dry {
		s.report.BlobsDeleted += s.plan.Candidates
		s.report.BytesFreed += s.plan.CandidateBytes
		return s.plan.Candidates, s.plan.CandidateBytes, nil
	}
	var items, bytes, kept int64
	err := eachBatch(s, s.candidates, decodeCandidateRec, func(cs []candidate) error {
		if err := s.checkLock(ctx); err != nil {
			return err
		}
		hs := make([]cas.Hash, len(cs))
		for i, c := range cs {
			hs[i] = c.hash
		}
		start := time.Now()
		rows, err := s.c.idx.ClaimBlobs(ctx, s.report.ID, hs, s.c.now().Add(-s.grace))
		if err != nil {
			return fmt.Errorf("claim %d blobs: %w", len(hs), err)
		}
		kept += int64(len(hs) - len(rows))
		n, b, err := s.deleteClaimed(ctx, start, rows, cs)
		items += n
		bytes += b
		s.progress(ctx, items)
		return err
	})
	s.report.BlobsDeleted += items
	s.report.BytesFreed += bytes
	s.report.BlobsKept += kept
	return items, bytes, err
}

// checkLock stops the sweep when its lock is gone (LockChecker).
func (s *sweep) checkLock(ctx context.Context) error {
	if lc, ok := s.c.idx.(LockChecker); ok {
		if err := lc.CheckGCLock(ctx); err != nil {
			return fmt.Errorf("stopped: the sweep lock was lost: %w", err)
		}
	}
	return nil
}

// deleteClaimed deletes the bytes of rows, which this sweep claimed (or
// took over) in a call that began at claimedBy, then forgets the rows; it
// returns their count and bytes (from the row, else from the plan's cs).
//
// The fence: every delete runs under a context that ends at claimedBy plus
// the delete bound, and is not started after it. The index stamped the
// claim after claimedBy, and another sweep takes the rows over only once
// the claim is older than the bound, so by then this sweep's deletes of
// them are over: a row that changed hands is never deleted by two sweeps at
// once, and bytes uploaded again after the new holder forgot the row are
// never deleted by the old one. Rows are forgotten only under this sweep's
// own claim, after their bytes are gone.
func (s *sweep) deleteClaimed(ctx context.Context, claimedBy time.Time, rows []index.Blob, cs []candidate) (int64, int64, error) {
	if len(rows) == 0 {
		return 0, 0, nil
	}
	sizes := make(map[cas.Hash]int64, len(cs))
	for _, c := range cs {
		sizes[c.hash] = c.size
	}
	hs := make([]cas.Hash, len(rows))
	var bytes int64
	for i, r := range rows {
		hs[i] = r.Hash
		if r.Size >= 0 {
			bytes += r.Size
		} else {
			bytes += sizes[r.Hash]
		}
	}
	if err := s.checkLock(ctx); err != nil {
		return 0, 0, err
	}
	dctx, cancel := context.WithDeadline(ctx, claimedBy.Add(s.c.opt.DeleteBound))
	defer cancel()
	if s.c.beforeDelete != nil {
		s.c.beforeDelete(dctx, hs)
	}
	// Deletions are independent: a few calls at once hide the latency of
	// each (a file system's unlink, an S3 round trip).
	chunk := max(minDeleteChunk, (len(hs)+deleteWorkers-1)/deleteWorkers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for from := 0; from < len(hs); from += chunk {
		part := hs[from:min(from+chunk, len(hs))]
		wg.Go(func() {
			err := dctx.Err() // never start a delete past the fence
			if err == nil {
				err = s.c.blobs.DeleteMany(dctx, part)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("the delete bound of %s since the claim ran out (the next sweep finishes them): %w", s.c.opt.DeleteBound, err)
		}
		return 0, 0, fmt.Errorf("delete %d blobs from the blob store: %w", len(hs), err)
	}
	if err := s.c.idx.ForgetBlobs(ctx, s.report.ID, hs); err != nil {
		return 0, 0, fmt.Errorf("forget %d blobs: %w", len(hs), err)
	}
	return int64(len(rows)), bytes, nil
}
