package refs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/backoff"
)

// Inline blobs: OLX up to Options.InlineMaxBytes is stored in the index
// (index.InlineWriter) in the transaction of the version that names it,
// instead of the blob store before it. Reads look in the index first
// (index.InlineReader) and in the blob store next, whatever the threshold
// is now: blobs stored when it was another, or before inline blobs
// existed, stay readable where they are.

// DefaultInlineMaxBytes is the default of Options.InlineMaxBytes.
const DefaultInlineMaxBytes = 64 << 10

// inlines reports whether OLX of n bytes is stored in the index.
func (s *Service) inlines(n int) bool {
	return s.inline != nil && int64(n) <= s.opt.InlineMaxBytes
}

// putInline writes b (hash h) as an inline blob in tx, when the engine
// keeps inline blobs. The version written after it in tx names it.
func putInline(tx index.Tx, h cas.Hash, b []byte) error {
	w, ok := tx.(index.InlineWriter)
	if !ok {
		return fmt.Errorf("refs: the index keeps no inline blobs: %w", index.ErrUnavailable)
	}
	if err := w.PutInlineBlob(h, b); err != nil {
		return fmt.Errorf("refs: store inline blob %s: %w", h, err)
	}
	return nil
}

// awaitForgotten is the restore of an inline commit that found its blob
// deleting (ErrBlobMissing): it waits, a bounded time, for the sweep to
// forget the row, after which the commit writes it again.
func (s *Service) awaitForgotten(ctx context.Context, h cas.Hash) error {
	deadline := time.Now().Add(s.opt.BusyWait)
	for attempt := 1; ; attempt++ {
		b, err := s.idx.Blob(ctx, h)
		if errors.Is(err, index.ErrNotFound) || (err == nil && b.State != index.BlobDeleting) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("refs: read blob %s: %w", h, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w: blob %s is being deleted by a sweep", ErrRetry, h)
		}
		if err := backoff.Sleep(ctx, min(busyBackoff.Delay(attempt), left)); err != nil {
			return fmt.Errorf("refs: wait for the sweep of blob %s: %w", h, err)
		}
	}
}

// inlineBytes returns the bytes of h when the index keeps them.
func (s *Service) inlineBytes(ctx context.Context, h cas.Hash) ([]byte, bool, error) {
	if s.inline == nil {
		return nil, false, nil
	}
	m, err := s.inline.InlineBlobs(ctx, []cas.Hash{h})
	if err != nil {
		return nil, false, fmt.Errorf("refs: read inline blob %s: %w", h, err)
	}
	b, ok := m[h]
	return b, ok, nil
}

// open opens the bytes of h wherever they are: the cache, the index, the
// blob store. The caller must Close the reader.
func (s *Service) open(ctx context.Context, h cas.Hash) (cas.Reader, error) {
	if b, ok := s.cache.get(h); ok {
		return memReader{bytes.NewReader(b)}, nil
	}
	b, ok, err := s.inlineBytes(ctx, h)
	if err != nil {
		return nil, err
	}
	if ok {
		return memReader{bytes.NewReader(b)}, nil
	}
	return s.blobs.Open(ctx, h)
}
