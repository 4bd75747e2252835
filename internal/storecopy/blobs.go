package storecopy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// wanted is a blob some history names, with the size its versions give.
type wanted struct {
	hash cas.Hash
	size int64
}

// copyBlobs makes every blob hs name present and live at the destination,
// Jobs at a time.
func (c *copier) copyBlobs(ctx context.Context, hs []index.History) error {
	var todo []wanted
	seen := make(map[cas.Hash]bool)
	c.mu.Lock()
	for _, h := range hs {
		for _, v := range h.Versions {
			if h.Kind == index.KindCollection || seen[v.Hash] || c.live[v.Hash] {
				continue
			}
			seen[v.Hash] = true
			todo = append(todo, wanted{v.Hash, v.Size})
		}
	}
	c.mu.Unlock()
	return parallel(ctx, c.opt.Jobs, len(todo), func(i int) error {
		if err := c.copyBlob(ctx, todo[i]); err != nil {
			return fmt.Errorf("copy blob %s: %w", todo[i].hash, err)
		}
		c.mu.Lock()
		c.live[todo[i].hash] = true
		c.mu.Unlock()
		return nil
	})
}

// copyBlob makes w present and live at the destination: skipped when the
// registry has it live; registered when the bytes are there (an earlier
// run stopped between storing and registering them); else streamed from
// the source through the destination's refs.Service, whose cas.Store
// verifies the hash before anything is visible.
func (c *copier) copyBlob(ctx context.Context, w wanted) error {
	b, err := c.dst.Index.Blob(ctx, w.hash)
	switch {
	case err == nil && b.State == index.BlobLive:
		c.skipped(w.size)
		return nil
	case err != nil && !errors.Is(err, index.ErrNotFound):
		return fmt.Errorf("read the destination's registry: %w", err)
	}
	info, err := c.dst.Blobs.Stat(ctx, w.hash)
	switch {
	case err == nil:
		registered, err := c.register(ctx, w.hash, info.Size)
		if err != nil {
			return err
		}
		if registered {
			c.skipped(info.Size)
			return nil
		}
	case !errors.Is(err, cas.ErrNotFound):
		return fmt.Errorf("stat at the destination: %w", err)
	}
	// Through the source's service: its small OLX may be inline, in its
	// index rather than its blob store.
	r, err := c.src.Refs.OpenBlob(ctx, w.hash)
	if err != nil {
		return fmt.Errorf("open at the source: %w", err)
	}
	defer r.Close()
	info, created, err := c.dst.Refs.PutBlob(ctx, w.hash, r, r.Size())
	if err != nil {
		return err
	}
	if created {
		c.t.blobs.Add(1)
		c.t.sent.Add(info.Size)
	} else {
		c.skipped(info.Size)
	}
	return nil
}

func (c *copier) skipped(size int64) {
	c.t.blobsSkipped.Add(1)
	c.t.skipped.Add(size)
}

// register makes bytes already stored at the destination live in its
// registry (BeginBlob, FinishBlob). It reports false when a sweep deleted
// them meanwhile, or is deleting them: the caller then sends them again.
func (c *copier) register(ctx context.Context, h cas.Hash, size int64) (bool, error) {
	for attempt := 0; ; attempt++ {
		state, ticket, err := c.dst.Index.BeginBlob(ctx, h)
		if errors.Is(err, index.ErrBlobBusy) && attempt < 20 {
			// A sweep of the destination is deleting them: wait for it to
			// forget the row, then send the bytes again.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("register at the destination: %w", err)
		}
		if state == index.BlobLive {
			return true, nil
		}
		// Pending under our ticket: the bytes must still be there.
		if _, err := c.dst.Blobs.Stat(ctx, h); errors.Is(err, cas.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("stat at the destination: %w", err)
		}
		err = c.dst.Index.FinishBlob(ctx, h, size, ticket)
		if errors.Is(err, index.ErrBlobMissing) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("register at the destination: %w", err)
		}
		return true, nil
	}
}
