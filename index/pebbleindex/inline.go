package pebbleindex

import (
	"context"
	"fmt"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Inline blobs (index.InlineWriter, index.InlineReader): the bytes of a
// small blob live under y|hash beside its registry row b|hash, whose state
// byte carries blobInlineFlag. The unit commit that stores them is one
// batch with the version that names them, so it costs one WAL write, synced
// together with the other writers' batches by groupSync, and no blob file.
//
// PutInlineBlob writes a registry row, so it takes the registry's turn too
// (after the writer's, the order ClaimBlobs takes them in) and holds it
// until the batch is applied: a registration that read the row before
// could otherwise write it back over the inline one (a pending row under a
// version, or a live row that forgets its bytes are inline). Only the rare
// transaction that writes a new inline blob waits for registrations; one
// whose blob is live already takes nothing.

// pInline is the key space of inline bytes: y|hash → the blob's bytes
// (keys.go lists every key space).
const pInline byte = 'y'

// blobInlineFlag marks, in the state byte of a registry row, a blob whose
// bytes are under y|hash. Rows written before inline blobs never have it.
const blobInlineFlag byte = 0x80

func inlineKey(h cas.Hash) []byte {
	return append(key(pInline, 1+cas.HashSize), h[:]...)
}

var (
	_ index.InlineWriter = (*tx)(nil)
	_ index.InlineReader = (*Store)(nil)
)

// PutInlineBlob makes b a live inline blob in this transaction; a live or
// deleting row stays as it is.
func (t *tx) PutInlineBlob(h cas.Hash, b []byte) error {
	row, ok, err := t.blob(h)
	if err != nil {
		return err
	}
	if !ok || row.State == index.BlobPending {
		if err := t.takeRegistry(); err != nil {
			return err
		}
		// Read again in the registry's turn: a registration may have
		// changed the row since.
		if row, ok, err = t.blob(h); err != nil {
			return err
		}
	}
	now := fromNS(t.at)
	switch {
	case !ok:
		row = index.Blob{Hash: h, CreatedAt: now}
	case row.State != index.BlobPending:
		// Live: the version this transaction writes protects it from now
		// on. Deleting: that version's check says ErrBlobMissing.
		return nil
	}
	row.State, row.Size, row.LeasedAt, row.Inline = index.BlobLive, int64(len(b)), now, true
	t.set(inlineKey(h), b)
	t.set(blobKey(h), encodeBlob(row, 0))
	return t.err
}

// InlineBlobs returns the bytes of those of hs kept in the index, read on
// one snapshot.
func (s *Store) InlineBlobs(ctx context.Context, hs []cas.Hash) (map[cas.Hash][]byte, error) {
	out := make(map[cas.Hash][]byte)
	err := s.read(ctx, "inline blobs", func(v *view) error {
		for _, h := range hs {
			if _, done := out[h]; done {
				continue
			}
			b, ok, err := getValue(v.r, inlineKey(h))
			if err != nil {
				return fmt.Errorf("index: inline blob %s: %w", h, err)
			}
			if ok {
				out[h] = b
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UnitInline reads the unit that ref names and, when they are inline, its
// bytes, on one snapshot.
func (s *Store) UnitInline(ctx context.Context, ref index.Ref) (u index.Unit, b []byte, err error) {
	err = s.read(ctx, "unit", func(v *view) error {
		if u, err = v.Unit(ctx, ref); err != nil {
			return err
		}
		b, _, err = getValue(v.r, inlineKey(u.Hash))
		if err != nil {
			return fmt.Errorf("index: inline blob %s: %w", u.Hash, err)
		}
		return nil
	})
	return u, b, err
}

// takeRegistry takes the registry's turn for the rest of the transaction
// (see PutInlineBlob); a transaction that holds it already, or that runs in
// it (ClaimBlobs, registrations), takes nothing. The closure must not call
// a registration (BeginBlob…) after it: that would wait for this turn.
func (t *tx) takeRegistry() error {
	if t.registry == nil || t.registryHeld {
		return nil
	}
	select {
	case t.registry <- struct{}{}:
		t.registryHeld = true
		return nil
	case <-t.ctx.Done():
		return fmt.Errorf("index: put inline blob: %w", t.ctx.Err())
	}
}
