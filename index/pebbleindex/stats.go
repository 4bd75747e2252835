package pebbleindex

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var _ index.Stats = (*Store)(nil)

// Totals counts the whole index on one snapshot by scanning three key
// spaces: entity records (e), version records (v) and the blob registry
// (b). That is a read of the whole index, linear in its size: a few
// hundred milliseconds for a million versions, fine for an operator's page
// that asks now and then, not for the request path. Keeping running
// counters instead would add a write to every commit.
func (s *Store) Totals(ctx context.Context) (t index.Totals, err error) {
	err = s.read(ctx, "totals", func(v *view) error {
		p := []byte{pEntity}
		err := v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
			e, err := decodeEntity(val)
			if err != nil {
				return false, fmt.Errorf("index: totals: entity %s: %w", readUUID(k[1:]), err)
			}
			switch {
			case e.Kind == index.KindCollection:
				t.Collections++
			case e.Kind == index.KindUnit && e.Latest > 0:
				t.Units++
			case e.Kind == index.KindAsset && e.Latest > 0:
				t.Assets++
			}
			return ctx.Err() == nil, ctx.Err()
		})
		if err != nil {
			return err
		}
		p = []byte{pVersion}
		err = v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
			rec, err := decodeVersion(val)
			if err != nil {
				return false, fmt.Errorf("index: totals: version %s@%d: %w", readUUID(k[1:]), versionOfKey(k), err)
			}
			// Collection versions name no blob.
			if !rec.Hash.IsZero() {
				t.Versions++
				t.ReferencedBytes += rec.Size
			}
			return ctx.Err() == nil, ctx.Err()
		})
		if err != nil {
			return err
		}
		p = []byte{pBlob}
		return v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
			b, err := decodeBlob(readHash(k[1:]), val)
			if err != nil {
				return false, fmt.Errorf("index: totals: blob %x: %w", k[1:], err)
			}
			if b.State == index.BlobLive {
				t.Blobs++
				t.StoredBytes += b.Size
			}
			return ctx.Err() == nil, ctx.Err()
		})
	})
	return t, err
}

// CollectionTotals walks the collection's member keys (m) and reads the
// latest version of each published member: linear in the collection's size.
func (s *Store) CollectionTotals(ctx context.Context, id uuid.UUID) (t index.CollectionTotals, err error) {
	err = s.read(ctx, "collection totals", func(v *view) error {
		if _, err := v.entityOf(id, index.KindCollection); err != nil {
			return err
		}
		p := memberPrefix(id)
		return v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
			if len(val) != 1 || val[0] != 1 {
				return true, nil // draft-only
			}
			member := readUUID(k[len(k)-sizeUUID:])
			e, err := v.entityOf(member, index.Kind(k[1+sizeUUID]))
			if err != nil {
				return false, fmt.Errorf("index: collection totals: member %s: %w", member, err)
			}
			rec, err := v.mustVersion(member, e.Latest)
			if err != nil {
				return false, fmt.Errorf("index: collection totals: %w", err)
			}
			if e.Kind == index.KindUnit {
				t.Units++
			} else {
				t.Assets++
			}
			t.Bytes += rec.Size
			return ctx.Err() == nil, ctx.Err()
		})
	})
	return t, err
}
