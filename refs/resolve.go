package refs

import (
	"context"
	"fmt"
	"sync"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Resolution answers one ref of Resolve.
type Resolution struct {
	// Entity is the version found; Kind 0 when there is none.
	index.Entity
	// OLX holds a unit's OLX when it was asked for.
	OLX []byte
}

// Found reports whether the ref named a version.
func (r Resolution) Found() bool { return r.Kind != 0 }

// Resolve answers many refs of any kind at once, in the order given; with
// includeOLX, units carry their OLX (from the cache when it can, else read
// from the blob store a bounded number at a time).
func (s *Service) Resolve(ctx context.Context, refs []index.Ref, includeOLX bool) ([]Resolution, error) {
	if len(refs) == 0 {
		return []Resolution{}, nil
	}
	ents, err := s.idx.Lookup(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("refs: resolve %d refs: %w", len(refs), err)
	}
	if len(ents) != len(refs) {
		return nil, fmt.Errorf("refs: resolve %d refs: the index answered %d", len(refs), len(ents))
	}
	out := make([]Resolution, len(refs))
	for i, e := range ents {
		out[i].Entity = e
	}
	if !includeOLX {
		return out, nil
	}
	// Read each distinct missing blob once, a few at a time.
	type blobRef struct {
		hash cas.Hash
		size int64
	}
	var todo []blobRef
	olx := make(map[cas.Hash][]byte)
	for _, r := range out {
		if r.Kind != index.KindUnit || r.Unit == nil {
			continue
		}
		h := r.Unit.Hash
		if _, seen := olx[h]; seen {
			continue
		}
		if b, ok := s.cache.get(h); ok {
			olx[h] = b
			continue
		}
		olx[h] = nil
		todo = append(todo, blobRef{h, r.Unit.Size})
	}
	if len(todo) > 0 && s.inline != nil {
		// The inline ones in one index read; the rest from the blob store.
		hs := make([]cas.Hash, len(todo))
		for i, br := range todo {
			hs[i] = br.hash
		}
		in, err := s.inline.InlineBlobs(ctx, hs)
		if err != nil {
			return nil, fmt.Errorf("refs: resolve OLX: %w", err)
		}
		rest := todo[:0]
		for _, br := range todo {
			if b, ok := in[br.hash]; ok {
				olx[br.hash] = b
			} else {
				rest = append(rest, br)
			}
		}
		todo = rest
	}
	if len(todo) > 0 {
		var (
			mu       sync.Mutex
			firstErr error
			wg       sync.WaitGroup
			next     = make(chan blobRef)
		)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for range min(olxFetchers, len(todo)) {
			wg.Go(func() {
				for br := range next {
					b, err := s.storedBytes(ctx, br.hash, br.size)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
						cancel()
					}
					olx[br.hash] = b
					mu.Unlock()
				}
			})
		}
	feed:
		for _, br := range todo {
			select {
			case next <- br:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		if firstErr != nil {
			return nil, fmt.Errorf("refs: resolve OLX: %w", firstErr)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("refs: resolve OLX: %w", err)
		}
	}
	for i := range out {
		if out[i].Kind == index.KindUnit && out[i].Unit != nil {
			b := olx[out[i].Unit.Hash]
			if b == nil {
				b = []byte{}
			}
			out[i].OLX = b
		}
	}
	return out, nil
}
