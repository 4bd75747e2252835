package pgindex

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Inline blobs (index.InlineWriter, index.InlineReader): the bytes of a
// small blob are a blob_content row beside its registry row (blobs.inline
// set), written in the transaction of the version that names them and
// deleted with the registry row when a sweep forgets it (ON DELETE CASCADE).

var (
	_ index.InlineWriter = (*tx)(nil)
	_ index.InlineReader = (*Store)(nil)
)

// sqlPutInline makes the row live and inline when it is absent or pending,
// and stores the bytes of the rows it changed. A live row is left alone and
// unlocked (commits of the same bytes into many units do not queue on it);
// a deleting one too: the version's share-locked read of the row that
// follows in the same transaction then says ErrBlobMissing. A row inserted
// meanwhile by another transaction is left to that read as well (the
// statement's snapshot does not see it; the caller retries). The content's
// foreign key is checked at the end of the statement, when the row the CTE
// inserted is visible.
const sqlPutInline = `WITH ins AS (
	INSERT INTO blobs (hash, size, state, created_at, leased_at, inline) VALUES ($1, $2, 2, $3, $3, true)
	ON CONFLICT (hash) DO NOTHING
	RETURNING hash
), upd AS (
	UPDATE blobs SET state = 2, size = $2, leased_at = $3, inline = true
	WHERE hash = $1 AND state = 1 AND NOT EXISTS (SELECT 1 FROM ins)
	RETURNING hash
)
INSERT INTO blob_content (hash, content)
SELECT hash, $4::bytea FROM ins UNION ALL SELECT hash, $4::bytea FROM upd
ON CONFLICT (hash) DO NOTHING`

// PutInlineBlob queues the write of b as a live inline blob: it goes out
// with the transaction's next round trip (the locking reads of the version
// that names it), so a unit commit keeps its two round trips.
func (t *tx) PutInlineBlob(h cas.Hash, b []byte) error {
	if err := t.op(); err != nil {
		return err
	}
	t.write(sqlPutInline, h[:], int64(len(b)), t.s.now(), b)
	return nil
}

// InlineBlobs returns the bytes of those of hs kept in the index, in one
// statement.
func (s *Store) InlineBlobs(ctx context.Context, hs []cas.Hash) (map[cas.Hash][]byte, error) {
	out := make(map[cas.Hash][]byte)
	if len(hs) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT hash, content FROM blob_content WHERE hash = ANY($1)`, hashArray(hs)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				raw, content []byte
				h            cas.Hash
			)
			if err := rows.Scan(&raw, &content); err != nil {
				return err
			}
			if len(raw) != cas.HashSize {
				return fmt.Errorf("stored hash of %d bytes", len(raw))
			}
			copy(h[:], raw)
			out[h] = content
		}
		return rows.Err()
	})
	if err := s.run(ctx, b); err != nil {
		return nil, s.wrap(fmt.Sprintf("inline blobs (%d)", len(hs)), err)
	}
	return out, nil
}

// sqlLookupInline is sqlLookup with the inline bytes of each version as a
// leading column (NULL when they are in the blob store).
var sqlLookupInline = strings.Replace(sqlLookup, "SELECT r.i, ", "SELECT bc.content, r.i, ", 1) +
	"\nLEFT JOIN blob_content bc ON bc.hash = v.hash"

// UnitInline reads the unit that ref names and its inline bytes in one
// statement: an OLX read is one round trip to the database and none to the
// blob store.
func (s *Store) UnitInline(ctx context.Context, ref index.Ref) (index.Unit, []byte, error) {
	var (
		row     *verRow
		content []byte
	)
	if ref.Version >= 0 {
		b := &pgx.Batch{}
		b.Queue(sqlLookupInline, []uuid.UUID{ref.ID}, []int64{ref.Version}, []bool{ref.Draft}).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var i int64
				r, err := scanVersion(rows, &content, &i)
				if err != nil {
					return err
				}
				row = r
			}
			return rows.Err()
		})
		if err := s.run(ctx, b); err != nil {
			return index.Unit{}, nil, s.wrap(fmt.Sprintf("unit %s", ref), err)
		}
	}
	if row == nil || row.kind != index.KindUnit {
		return index.Unit{}, nil, fmt.Errorf("pgindex: unit %s: %w", ref, index.ErrNotFound)
	}
	return row.unit(), content, nil
}
