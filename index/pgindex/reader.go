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

// reader answers every index.Reader method over a runner: the Store (pool
// connections) or a tx (inside one transaction, seeing its own writes). Both
// embed one, so the read and list functions of read.go and lists.go are
// written once.
type reader struct {
	q   runner
	now func() time.Time
}

func (r reader) Kind(ctx context.Context, id uuid.UUID) (index.Kind, error) {
	return readKind(ctx, r.q, id)
}

func (r reader) Collection(ctx context.Context, id uuid.UUID, version int64) (index.Collection, error) {
	return readCollection(ctx, r.q, id, version)
}

func (r reader) Unit(ctx context.Context, ref index.Ref) (index.Unit, error) {
	return readUnit(ctx, r.q, ref)
}

func (r reader) Asset(ctx context.Context, ref index.Ref) (index.Asset, error) {
	return readAsset(ctx, r.q, ref)
}

func (r reader) Lookup(ctx context.Context, refs []index.Ref) ([]index.Entity, error) {
	return readLookup(ctx, r.q, refs)
}

func (r reader) Collections(ctx context.Context, opt index.ListOptions) (index.Page[index.Collection], error) {
	return listCollections(ctx, r.q, opt)
}

func (r reader) CollectionVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Collection], error) {
	return listCollectionVersions(ctx, r.q, id, opt)
}

func (r reader) Units(ctx context.Context, collection uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	return listUnits(ctx, r.q, collection, opt)
}

func (r reader) Assets(ctx context.Context, collection uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	return listAssets(ctx, r.q, collection, opt)
}

func (r reader) UnitVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	return listUnitVersions(ctx, r.q, id, opt)
}

func (r reader) AssetVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	return listAssetVersions(ctx, r.q, id, opt)
}

func (r reader) LinkedBy(ctx context.Context, target uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
	return listLinkedBy(ctx, r.q, target, opt)
}

func (r reader) Blob(ctx context.Context, h cas.Hash) (index.Blob, error) {
	return readBlob(ctx, r.q, h)
}

func (r reader) Idempotency(ctx context.Context, key string) (index.IdempotencyRecord, error) {
	return readIdempotency(ctx, r.q, key, r.now())
}

const blobCols = `hash, size, state, created_at, leased_at, inline`

func scanBlob(row pgx.Row) (index.Blob, error) {
	var (
		b     index.Blob
		hash  []byte
		state int16
	)
	if err := row.Scan(&hash, &b.Size, &state, &b.CreatedAt, &b.LeasedAt, &b.Inline); err != nil {
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
