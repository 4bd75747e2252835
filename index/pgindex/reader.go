package pgindex

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// The Reader methods of Store (outside a transaction) and of tx (inside
// one, seeing its own writes) share the functions of read.go and lists.go.

func (s *Store) Kind(ctx context.Context, id uuid.UUID) (index.Kind, error) {
	return readKind(ctx, s, id)
}

func (s *Store) Collection(ctx context.Context, id uuid.UUID, version int64) (index.Collection, error) {
	return readCollection(ctx, s, id, version)
}

func (s *Store) Unit(ctx context.Context, ref index.Ref) (index.Unit, error) {
	return readUnit(ctx, s, ref)
}

func (s *Store) Asset(ctx context.Context, ref index.Ref) (index.Asset, error) {
	return readAsset(ctx, s, ref)
}

func (s *Store) Lookup(ctx context.Context, refs []index.Ref) ([]index.Entity, error) {
	return readLookup(ctx, s, refs)
}

func (s *Store) Collections(ctx context.Context, opt index.ListOptions) (index.Page[index.Collection], error) {
	return listCollections(ctx, s, opt)
}

func (s *Store) CollectionVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Collection], error) {
	return listCollectionVersions(ctx, s, id, opt)
}

func (s *Store) Units(ctx context.Context, collection uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	return listUnits(ctx, s, collection, opt)
}

func (s *Store) Assets(ctx context.Context, collection uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	return listAssets(ctx, s, collection, opt)
}

func (s *Store) UnitVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	return listUnitVersions(ctx, s, id, opt)
}

func (s *Store) AssetVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	return listAssetVersions(ctx, s, id, opt)
}

func (s *Store) LinkedBy(ctx context.Context, target uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
	return listLinkedBy(ctx, s, target, opt)
}

func (s *Store) Blob(ctx context.Context, h cas.Hash) (index.Blob, error) {
	return readBlob(ctx, s, h)
}

func (s *Store) Idempotency(ctx context.Context, key string) (index.IdempotencyRecord, error) {
	return readIdempotency(ctx, s, key, s.now())
}

func (t *tx) Kind(ctx context.Context, id uuid.UUID) (index.Kind, error) {
	return readKind(ctx, t, id)
}

func (t *tx) Collection(ctx context.Context, id uuid.UUID, version int64) (index.Collection, error) {
	return readCollection(ctx, t, id, version)
}

func (t *tx) Unit(ctx context.Context, ref index.Ref) (index.Unit, error) {
	return readUnit(ctx, t, ref)
}

func (t *tx) Asset(ctx context.Context, ref index.Ref) (index.Asset, error) {
	return readAsset(ctx, t, ref)
}

func (t *tx) Lookup(ctx context.Context, refs []index.Ref) ([]index.Entity, error) {
	return readLookup(ctx, t, refs)
}

func (t *tx) Collections(ctx context.Context, opt index.ListOptions) (index.Page[index.Collection], error) {
	return listCollections(ctx, t, opt)
}

func (t *tx) CollectionVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Collection], error) {
	return listCollectionVersions(ctx, t, id, opt)
}

func (t *tx) Units(ctx context.Context, collection uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	return listUnits(ctx, t, collection, opt)
}

func (t *tx) Assets(ctx context.Context, collection uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	return listAssets(ctx, t, collection, opt)
}

func (t *tx) UnitVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	return listUnitVersions(ctx, t, id, opt)
}

func (t *tx) AssetVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	return listAssetVersions(ctx, t, id, opt)
}

func (t *tx) LinkedBy(ctx context.Context, target uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
	return listLinkedBy(ctx, t, target, opt)
}

func (t *tx) Blob(ctx context.Context, h cas.Hash) (index.Blob, error) {
	return readBlob(ctx, t, h)
}

func (t *tx) Idempotency(ctx context.Context, key string) (index.IdempotencyRecord, error) {
	return readIdempotency(ctx, t, key, t.s.now())
}

const blobCols = `hash, size, state, created_at, leased_at`

func scanBlob(row pgx.Row) (index.Blob, error) {
	var (
		b     index.Blob
		hash  []byte
		state int16
	)
	if err := row.Scan(&hash, &b.Size, &state, &b.CreatedAt, &b.LeasedAt); err != nil {
		return index.Blob{}, err
	}
	copy(b.Hash[:], hash)
	b.State = index.BlobState(state)
	b.CreatedAt, b.LeasedAt = b.CreatedAt.UTC(), b.LeasedAt.UTC()
	return b, nil
}

func readBlob(ctx context.Context, q runner, h cas.Hash) (index.Blob, error) {
	var blob index.Blob
	found := false
	b := &pgx.Batch{}
	b.Queue(`SELECT `+blobCols+` FROM blobs WHERE hash = $1`, h[:]).QueryRow(func(row pgx.Row) error {
		var err error
		blob, err = scanBlob(row)
		if err == pgx.ErrNoRows {
			return nil
		}
		found = err == nil
		return err
	})
	if err := q.run(ctx, b); err != nil {
		return index.Blob{}, fmt.Errorf("pgindex: blob %s: %w", h, err)
	}
	if !found {
		return index.Blob{}, fmt.Errorf("pgindex: blob %s: %w", h, index.ErrNotFound)
	}
	return blob, nil
}

func readIdempotency(ctx context.Context, q runner, key string, now time.Time) (index.IdempotencyRecord, error) {
	var (
		rec   index.IdempotencyRecord
		k, fp []byte
		found bool
	)
	b := &pgx.Batch{}
	b.Queue(`SELECT key, fingerprint, status, body, expires_at FROM idempotency WHERE key = $1 AND expires_at > $2`,
		[]byte(key), now).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&k, &fp, &rec.Status, &rec.Body, &rec.ExpiresAt)
		if err == pgx.ErrNoRows {
			return nil
		}
		found = err == nil
		return err
	})
	if err := q.run(ctx, b); err != nil {
		return index.IdempotencyRecord{}, fmt.Errorf("pgindex: idempotency record: %w", err)
	}
	if !found {
		return index.IdempotencyRecord{}, fmt.Errorf("pgindex: idempotency record: %w", index.ErrNotFound)
	}
	rec.Key = string(k)
	copy(rec.Fingerprint[:], fp)
	rec.ExpiresAt = rec.ExpiresAt.UTC()
	return rec, nil
}
