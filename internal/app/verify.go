package app

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Sample is the fraction of stored blobs re-hashed, in (0, 1]; 0 means 1.
	// Which blobs are sampled depends on their hash, so repeated runs with
	// the same fraction check the same blobs. References are always checked.
	Sample float64
	// Jobs is how many blobs are read at once; 0 means 4.
	Jobs int
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	BlobsStored  int64 `json:"blobs_stored"`
	BlobsChecked int64 `json:"blobs_checked"`
	BytesChecked int64 `json:"bytes_checked"`
	// References counts the distinct hashes that versions point at.
	References int64 `json:"references"`
	// Corrupt blobs: their bytes no longer hash to their name.
	Corrupt []string `json:"corrupt"`
	// Missing blobs: a version or a live registry row names them, the
	// blob store does not have them.
	Missing []string `json:"missing"`
}

// OK reports whether nothing corrupt or missing was found.
func (r VerifyReport) OK() bool { return len(r.Corrupt) == 0 && len(r.Missing) == 0 }

// Verify re-hashes the stored blobs (all, or a sample) and checks that every
// hash a version references, and every live blob of the registry, is in the
// blob store (invariants 1 and 3 of DESIGN.md, checked at rest).
func (a *App) Verify(ctx context.Context, opt VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if opt.Sample <= 0 || opt.Sample > 1 {
		opt.Sample = 1
	}
	if opt.Jobs <= 0 {
		opt.Jobs = 4
	}
	var mu sync.Mutex
	corrupt := func(h cas.Hash) {
		mu.Lock()
		rep.Corrupt = append(rep.Corrupt, h.String())
		mu.Unlock()
	}
	missing := func(h cas.Hash) {
		mu.Lock()
		rep.Missing = append(rep.Missing, h.String())
		mu.Unlock()
	}

	// 1. Re-hash the sampled blobs.
	var stored, checked, bytes atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan cas.Info)
	for range opt.Jobs {
		g.Go(func() error {
			for info := range work {
				ok, err := a.rehash(gctx, info.Hash)
				if err != nil {
					return err
				}
				checked.Add(1)
				bytes.Add(info.Size)
				if !ok {
					corrupt(info.Hash)
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		return a.Blobs.Walk(gctx, func(info cas.Info) error {
			stored.Add(1)
			if !sampled(info.Hash, opt.Sample) {
				return nil
			}
			select {
			case work <- info:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	if err := g.Wait(); err != nil {
		return rep, fmt.Errorf("verify: blobs: %w", err)
	}
	if err := a.verifyInline(ctx, opt.Sample, &stored, &checked, &bytes, corrupt, missing); err != nil {
		return rep, fmt.Errorf("verify: inline blobs: %w", err)
	}
	rep.BlobsStored, rep.BlobsChecked, rep.BytesChecked = stored.Load(), checked.Load(), bytes.Load()

	// 2. Every referenced hash and every live registry row has its bytes.
	seen := make(chan cas.Hash, 256)
	g, gctx = errgroup.WithContext(ctx)
	for range opt.Jobs {
		g.Go(func() error {
			for h := range seen {
				_, err := a.Blobs.Stat(gctx, h)
				if errors.Is(err, cas.ErrNotFound) {
					// Not in the blob store: its bytes may be inline.
					var in bool
					if in, err = a.inlined(gctx, h); err == nil && !in {
						missing(h)
					}
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(seen)
		send := func(h cas.Hash) error {
			select {
			case seen <- h:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		// A hash both referenced and live is checked twice: the second
		// Stat is cheap, and Missing is deduplicated.
		var refs int64
		err := a.Index.ReferencedHashes(gctx, func(h cas.Hash) error {
			refs++
			return send(h)
		})
		if err != nil {
			return err
		}
		rep.References = refs
		err = a.Index.Blobs(gctx, func(b index.Blob) error {
			if b.State != index.BlobLive || b.Inline {
				return nil // inline bytes were checked with the stored ones
			}
			return send(b.Hash)
		})
		return err
	})
	if err := g.Wait(); err != nil {
		return rep, fmt.Errorf("verify: references: %w", err)
	}
	rep.Missing = dedupe(rep.Missing)
	return rep, nil
}

// rehash reads the blob through the verifying store; false when its bytes
// do not hash to its name.
func (a *App) rehash(ctx context.Context, h cas.Hash) (bool, error) {
	r, err := a.Blobs.Open(ctx, h)
	if errors.Is(err, cas.ErrHashMismatch) {
		return false, nil
	}
	if errors.Is(err, cas.ErrNotFound) {
		return true, nil // deleted since the walk saw it
	}
	if err != nil {
		return false, err
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	if errors.Is(err, cas.ErrHashMismatch) {
		return false, nil
	}
	return err == nil, err
}

// sampled picks a stable fraction of hashes.
func sampled(h cas.Hash, fraction float64) bool {
	if fraction >= 1 {
		return true
	}
	return float64(binary.BigEndian.Uint64(h[:8])) < fraction*float64(^uint64(0))
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// inlineBatch is how many inline blobs verify reads per index read.
const inlineBatch = 256

// verifyInline re-hashes the sampled live inline blobs (bytes kept in the
// index), counting them with the stored ones; a row marked inline whose
// bytes are gone is missing.
func (a *App) verifyInline(ctx context.Context, sample float64, stored, checked, bytes *atomic.Int64,
	corrupt, missing func(cas.Hash)) error {
	ir, ok := a.Index.(index.InlineReader)
	if !ok {
		return nil
	}
	var batch []cas.Hash
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		got, err := ir.InlineBlobs(ctx, batch)
		if err != nil {
			return err
		}
		for _, h := range batch {
			b, ok := got[h]
			switch {
			case !ok:
				missing(h)
			case cas.Sum(b) != h:
				corrupt(h)
			}
			checked.Add(1)
			bytes.Add(int64(len(b)))
		}
		batch = batch[:0]
		return nil
	}
	err := a.Index.Blobs(ctx, func(b index.Blob) error {
		if !b.Inline || b.State != index.BlobLive {
			return nil
		}
		stored.Add(1)
		if !sampled(b.Hash, sample) {
			return nil
		}
		if batch = append(batch, b.Hash); len(batch) == inlineBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// inlined reports whether the index keeps the bytes of h.
func (a *App) inlined(ctx context.Context, h cas.Hash) (bool, error) {
	ir, ok := a.Index.(index.InlineReader)
	if !ok {
		return false, nil
	}
	got, err := ir.InlineBlobs(ctx, []cas.Hash{h})
	if err != nil {
		return false, err
	}
	_, in := got[h]
	return in, nil
}
