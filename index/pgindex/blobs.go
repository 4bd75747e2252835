package pgindex

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// BeginBlob registers an upload of h: an absent row becomes pending, a
// pending or live one has its lease renewed; a deleting one is ErrBlobBusy.
func (s *Store) BeginBlob(ctx context.Context, h cas.Hash) (index.BlobState, index.Ticket, error) {
	now := s.now()
	var (
		state  int16
		ticket int64
		found  bool
	)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO blobs (hash, size, state, created_at, leased_at, ticket) VALUES ($1, -1, 1, $2, $2, $3)
ON CONFLICT (hash) DO UPDATE SET leased_at = EXCLUDED.leased_at WHERE blobs.state <> 3
RETURNING state, ticket`, h[:], now, int64(index.NewTicket())).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&state, &ticket)
		if err == pgx.ErrNoRows {
			return nil
		}
		found = err == nil
		return err
	})
	if err := s.run(ctx, b); err != nil {
		return 0, 0, s.wrap("begin blob "+h.String(), err)
	}
	if !found {
		return 0, 0, fmt.Errorf("pgindex: begin blob %s: %w", h, index.ErrBlobBusy)
	}
	return index.BlobState(state), index.Ticket(ticket), nil
}

// FinishBlob makes h live with size and a fresh lease when it is live, or
// pending under ticket.
func (s *Store) FinishBlob(ctx context.Context, h cas.Hash, size int64, ticket index.Ticket) error {
	now := s.now()
	var n int64
	b := &pgx.Batch{}
	b.Queue(`UPDATE blobs SET state = 2, size = $2, leased_at = $3 WHERE hash = $1 AND (state = 2 OR (state = 1 AND ticket = $4))`,
		h[:], size, now, int64(ticket)).Exec(func(ct pgconn.CommandTag) error { n = ct.RowsAffected(); return nil })
	if err := s.run(ctx, b); err != nil {
		return s.wrap("finish blob "+h.String(), err)
	}
	if n == 0 {
		return &index.BlobMissingError{Hash: h}
	}
	return nil
}

// RenewBlobs renews the leases of the live blobs among hs and returns their rows.
func (s *Store) RenewBlobs(ctx context.Context, hs []cas.Hash) (map[cas.Hash]index.Blob, error) {
	out := make(map[cas.Hash]index.Blob, len(hs))
	if len(hs) == 0 {
		return out, nil
	}
	now := s.now()
	arr := hashArray(hs)
	err := s.retry(ctx, func() error {
		clear(out)
		b := &pgx.Batch{}
		b.Queue(`UPDATE blobs SET leased_at = $2 WHERE hash = ANY($1) AND state = 2 RETURNING `+blobCols,
			arr, now).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				blob, err := scanBlob(rows)
				if err != nil {
					return err
				}
				out[blob.Hash] = blob
			}
			return rows.Err()
		})
		return s.run(ctx, b)
	})
	if err != nil {
		return nil, s.wrap("renew blobs", err)
	}
	return out, nil
}

// hashArray returns hs as a bytea[] parameter. (A btree scan for
// = ANY(array) visits the keys in order, so statements that lock many rows
// lock them in hash order.)
func hashArray(hs []cas.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// retry runs fn again on a serialization failure or deadlock (a statement
// that locks many rows may meet another that locks them in another order).
func (s *Store) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err = fn(); err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// Blobs streams every registry row in ascending hash order.
func (s *Store) Blobs(ctx context.Context, fn func(index.Blob) error) error {
	err := s.query(ctx, func(rows pgx.Rows) error {
		blob, err := scanBlob(rows)
		if err != nil {
			return err
		}
		return fn(blob)
	}, `SELECT `+blobCols+` FROM blobs ORDER BY hash`)
	return s.wrapStream("blobs", err)
}

// ReferencedHashes streams, ascending and once each, every hash a stored
// version names: an index-only scan of versions_hash, read row by row
// (duplicates are adjacent and skipped here), so memory stays flat.
func (s *Store) ReferencedHashes(ctx context.Context, fn func(cas.Hash) error) error {
	var prev cas.Hash
	first := true
	err := s.query(ctx, func(rows pgx.Rows) error {
		raw := rows.RawValues()[0]
		if len(raw) != cas.HashSize {
			return fmt.Errorf("stored hash of %d bytes", len(raw))
		}
		var h cas.Hash
		copy(h[:], raw)
		if !first && h == prev {
			return nil
		}
		first, prev = false, h
		return fn(h)
	}, `SELECT hash FROM versions WHERE hash IS NOT NULL ORDER BY hash`)
	return s.wrapStream("referenced hashes", err)
}

// wrapStream wraps a stream's error, leaving the callback's own errors
// as the callback returned them (inside the wrapping).
func (s *Store) wrapStream(what string, err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(what, err)
}

// LoadBlobs registers blobs as live with a fresh lease, many per statement
// (indextest.BlobLoader: benchmark set-up). A deleting row stays deleting.
func (s *Store) LoadBlobs(ctx context.Context, blobs []index.Blob) error {
	const chunk = 20000
	now := s.now()
	for len(blobs) > 0 {
		n := min(chunk, len(blobs))
		hashes := make([][]byte, n)
		sizes := make([]int64, n)
		for i, b := range blobs[:n] {
			hashes[i], sizes[i] = b.Hash[:], b.Size
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO blobs (hash, size, state, created_at, leased_at)
SELECT h, sz, 2, $3, $3 FROM unnest($1::bytea[], $2::bigint[]) AS x(h, sz)
ON CONFLICT (hash) DO UPDATE SET state = 2, size = EXCLUDED.size, leased_at = EXCLUDED.leased_at
WHERE blobs.state <> 3`, hashes, sizes, now)
		if err := s.run(ctx, b); err != nil {
			return s.wrap("load blobs", err)
		}
		blobs = blobs[n:]
	}
	return nil
}
