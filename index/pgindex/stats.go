package pgindex

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/index"
)

var _ index.Stats = (*Store)(nil)

// totalsSQL counts the whole index in one statement, so one snapshot. Each
// part is a sequential scan of its table (count and sum have no index to
// use): linear in the index's size, a second or so for a million versions,
// meant for an operator's page, not for the request path.
const totalsSQL = `SELECT
	(SELECT count(*) FROM entities WHERE kind = 1),
	(SELECT count(*) FROM entities WHERE kind = 2 AND latest > 0),
	(SELECT count(*) FROM entities WHERE kind = 3 AND latest > 0),
	(SELECT count(*) FROM versions WHERE hash IS NOT NULL),
	(SELECT coalesce(sum(size), 0)::bigint FROM versions WHERE hash IS NOT NULL),
	(SELECT count(*) FROM blobs WHERE state = 2),
	(SELECT coalesce(sum(size), 0)::bigint FROM blobs WHERE state = 2)`

// Totals returns the figures of the whole index.
func (s *Store) Totals(ctx context.Context) (index.Totals, error) {
	var t index.Totals
	b := &pgx.Batch{}
	b.Queue(totalsSQL).QueryRow(func(row pgx.Row) error {
		return row.Scan(&t.Collections, &t.Units, &t.Assets, &t.Versions, &t.ReferencedBytes, &t.Blobs, &t.StoredBytes)
	})
	if err := s.run(ctx, b); err != nil {
		return index.Totals{}, s.wrap("totals", err)
	}
	return t, nil
}

// collectionTotalsSQL reads the collection's members through entities_list
// and the latest version of each by its primary key; the first column says
// whether the collection exists.
const collectionTotalsSQL = `SELECT
	EXISTS (SELECT 1 FROM entities WHERE id = $1 AND kind = 1),
	count(*) FILTER (WHERE e.kind = 2),
	count(*) FILTER (WHERE e.kind = 3),
	coalesce(sum(v.size), 0)::bigint
FROM entities e
JOIN versions v ON v.entity = e.id AND v.version = e.latest
WHERE e.collection = $1 AND e.latest > 0`

// CollectionTotals returns the figures of one collection.
func (s *Store) CollectionTotals(ctx context.Context, id uuid.UUID) (index.CollectionTotals, error) {
	var (
		t      index.CollectionTotals
		exists bool
	)
	b := &pgx.Batch{}
	b.Queue(collectionTotalsSQL, id).QueryRow(func(row pgx.Row) error {
		return row.Scan(&exists, &t.Units, &t.Assets, &t.Bytes)
	})
	if err := s.run(ctx, b); err != nil {
		return index.CollectionTotals{}, s.wrap("collection totals", err)
	}
	if !exists {
		return index.CollectionTotals{}, fmt.Errorf("pgindex: collection totals: %w: collection %s", index.ErrNotFound, id)
	}
	return t, nil
}
