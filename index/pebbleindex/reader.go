package pebbleindex

import (
	"context"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// The Store's reads: each runs on its own snapshot, so the several keys one
// answer needs are read from one state.

// Kind returns the kind of the entity id.
func (s *Store) Kind(ctx context.Context, id uuid.UUID) (k index.Kind, err error) {
	err = s.read(ctx, "kind", func(v *view) error { k, err = v.Kind(ctx, id); return err })
	return k, err
}

// Collection returns version ver of a collection (0: the latest).
func (s *Store) Collection(ctx context.Context, id uuid.UUID, ver int64) (c index.Collection, err error) {
	err = s.read(ctx, "collection", func(v *view) error { c, err = v.Collection(ctx, id, ver); return err })
	return c, err
}

// Unit returns the unit version ref names.
func (s *Store) Unit(ctx context.Context, ref index.Ref) (u index.Unit, err error) {
	err = s.read(ctx, "unit", func(v *view) error { u, err = v.Unit(ctx, ref); return err })
	return u, err
}

// Asset returns the asset version ref names.
func (s *Store) Asset(ctx context.Context, ref index.Ref) (a index.Asset, err error) {
	err = s.read(ctx, "asset", func(v *view) error { a, err = v.Asset(ctx, ref); return err })
	return a, err
}

// Lookup resolves refs of any kind.
func (s *Store) Lookup(ctx context.Context, refs []index.Ref) (out []index.Entity, err error) {
	err = s.read(ctx, "lookup", func(v *view) error { out, err = v.Lookup(ctx, refs); return err })
	return out, err
}

// Collections lists the collections.
func (s *Store) Collections(ctx context.Context, opt index.ListOptions) (p index.Page[index.Collection], err error) {
	err = s.read(ctx, "collections", func(v *view) error { p, err = v.Collections(ctx, opt); return err })
	return p, err
}

// CollectionVersions lists the versions of a collection, newest first.
func (s *Store) CollectionVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (p index.Page[index.Collection], err error) {
	err = s.read(ctx, "collection versions", func(v *view) error { p, err = v.CollectionVersions(ctx, id, opt); return err })
	return p, err
}

// Units lists the units of a collection.
func (s *Store) Units(ctx context.Context, coll uuid.UUID, opt index.ListOptions) (p index.Page[index.Unit], err error) {
	err = s.read(ctx, "units", func(v *view) error { p, err = v.Units(ctx, coll, opt); return err })
	return p, err
}

// Assets lists the assets of a collection.
func (s *Store) Assets(ctx context.Context, coll uuid.UUID, opt index.ListOptions) (p index.Page[index.Asset], err error) {
	err = s.read(ctx, "assets", func(v *view) error { p, err = v.Assets(ctx, coll, opt); return err })
	return p, err
}

// UnitVersions lists the published versions of a unit, newest first.
func (s *Store) UnitVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (p index.Page[index.Unit], err error) {
	err = s.read(ctx, "unit versions", func(v *view) error { p, err = v.UnitVersions(ctx, id, opt); return err })
	return p, err
}

// AssetVersions lists the published versions of an asset, newest first.
func (s *Store) AssetVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (p index.Page[index.Asset], err error) {
	err = s.read(ctx, "asset versions", func(v *view) error { p, err = v.AssetVersions(ctx, id, opt); return err })
	return p, err
}

// LinkedBy lists the units whose latest published version links target.
func (s *Store) LinkedBy(ctx context.Context, target uuid.UUID, opt index.ListOptions) (p index.Page[index.LinkingUnit], err error) {
	err = s.read(ctx, "linked-by", func(v *view) error { p, err = v.LinkedBy(ctx, target, opt); return err })
	return p, err
}

// Blob returns the registry row of h.
func (s *Store) Blob(ctx context.Context, h cas.Hash) (b index.Blob, err error) {
	err = s.read(ctx, "blob", func(v *view) error { b, err = v.Blob(ctx, h); return err })
	return b, err
}

// Idempotency returns the live record under key.
func (s *Store) Idempotency(ctx context.Context, key string) (r index.IdempotencyRecord, err error) {
	err = s.read(ctx, "idempotency", func(v *view) error { r, err = v.Idempotency(ctx, key); return err })
	return r, err
}

// LinkRowCount returns the number of stored link rows: one per link of each
// distinct stored link set (indextest.LinkRowCounter).
func (s *Store) LinkRowCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.read(ctx, "link rows", func(v *view) error {
		p := []byte{pReverse}
		return v.scan(p, prefixEnd(p), func([]byte, []byte) (bool, error) {
			n++
			return true, nil
		})
	})
	return n, err
}
