package pgindex

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// expiredWhere is the retention rule, on a version v of entity e, with the
// cutoff (now - retention) as $1: the entity's current flag (that of the
// most recently written of its latest version and its draft) is set; v is
// published and older than the latest; the next version came before the
// cutoff; no stored unit version pins v.
const expiredWhere = `e.gc AND v.version < e.latest AND v.superseded_at < $1
	AND NOT EXISTS (
		SELECT 1 FROM link_set_members m
		WHERE m.target = v.entity AND m.pin = v.version
			AND EXISTS (SELECT 1 FROM versions u WHERE u.link_set = m.set_id))`

// ExpiredVersions streams the published versions that retention may delete
// at now.
func (s *Store) ExpiredVersions(ctx context.Context, now time.Time, retention time.Duration, fn func(index.VersionKey) error) error {
	err := s.query(ctx, func(rows pgx.Rows) error {
		var (
			k    index.VersionKey
			kind int16
		)
		if err := rows.Scan(&kind, bin(&k.ID), &k.Version); err != nil {
			return err
		}
		k.Kind = index.Kind(kind)
		return fn(k)
	}, `SELECT e.kind, v.entity, v.version FROM versions v JOIN entities e ON e.id = v.entity WHERE `+expiredWhere,
		now.Add(-retention))
	return s.wrapStream("expired versions", err)
}

// DeleteVersions deletes those of vs that still expire at now. It locks
// their entities FOR UPDATE first, which waits for transactions that are
// linking them (and may be pinning a version), then rechecks with a fresh
// snapshot. The assets that deleted unit versions linked are unlinked now,
// and their link sets dropped when no version uses them any more.
func (s *Store) DeleteVersions(ctx context.Context, now time.Time, retention time.Duration, vs []index.VersionKey) ([]index.VersionKey, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(vs))
	vers := make([]int64, len(vs))
	kinds := make([]int16, len(vs))
	for i, v := range vs {
		ids[i], vers[i], kinds[i] = v.ID, v.Version, int16(v.Kind)
	}
	locks := slices.Clone(ids)
	slices.SortFunc(locks, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	locks = slices.Compact(locks)
	var (
		out  []index.VersionKey
		sets [][]byte
	)
	err := s.update(ctx, func(t *tx) error {
		out, sets = out[:0], sets[:0]
		t.now = s.now()
		b := &pgx.Batch{}
		b.Queue(`SELECT id FROM entities WHERE id = ANY($1) ORDER BY id FOR UPDATE`, locks)
		b.Queue(`DELETE FROM versions v USING entities e, unnest($2::uuid[], $3::bigint[], $4::smallint[]) AS k(id, ver, kind)
WHERE v.entity = k.id AND v.version = k.ver AND e.id = v.entity AND e.kind = k.kind AND `+expiredWhere+`
RETURNING e.kind, v.entity, v.version, v.link_set`, now.Add(-retention), ids, vers, kinds).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					k    index.VersionKey
					kind int16
					set  []byte
				)
				if err := rows.Scan(&kind, bin(&k.ID), &k.Version, &set); err != nil {
					return err
				}
				k.Kind = index.Kind(kind)
				out = append(out, k)
				if set != nil && !slices.ContainsFunc(sets, func(s []byte) bool { return string(s) == string(set) }) {
					sets = append(sets, set)
				}
			}
			return rows.Err()
		})
		if err := t.run(ctx, b); err != nil {
			return err
		}
		if len(sets) > 0 {
			t.write(sqlUnlinkSets, sets, t.now)
			t.dropLinkSets(sets)
		}
		t.recordSweptVersions(out)
		return nil
	})
	if err != nil {
		return nil, s.wrap("delete versions", err)
	}
	return out, nil
}

// orphanWhere is the orphan rule on an asset e, with the cutoff as $1.
const orphanWhere = `e.kind = 3 AND e.ever_linked AND e.last_unlinked_at < $1
	AND COALESCE(
		(SELECT v.garbage_collect FROM versions v WHERE v.entity = e.id AND v.version = e.latest),
		(SELECT v.garbage_collect FROM versions v WHERE v.entity = e.id AND v.version IS NULL),
		false)
	AND NOT EXISTS (
		SELECT 1 FROM link_set_members m JOIN versions u ON u.link_set = m.set_id
		WHERE m.target = e.id)`

// OrphanedAssets streams the assets that orphan collection may delete.
func (s *Store) OrphanedAssets(ctx context.Context, cutoff time.Time, fn func(uuid.UUID) error) error {
	err := s.query(ctx, func(rows pgx.Rows) error {
		var id uuid.UUID
		if err := rows.Scan(bin(&id)); err != nil {
			return err
		}
		return fn(id)
	}, `SELECT e.id FROM entities e WHERE `+orphanWhere, cutoff)
	return s.wrapStream("orphaned assets", err)
}

// DeleteOrphans deletes those of ids that are still orphans: locked FOR
// UPDATE first (waiting for transactions linking them), then rechecked.
func (s *Store) DeleteOrphans(ctx context.Context, cutoff time.Time, ids []uuid.UUID) ([]uuid.UUID, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	locks := slices.Clone(ids)
	slices.SortFunc(locks, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	locks = slices.Compact(locks)
	var out []uuid.UUID
	err := s.update(ctx, func(t *tx) error {
		out = out[:0]
		b := &pgx.Batch{}
		b.Queue(`SELECT id FROM entities WHERE id = ANY($1) ORDER BY id FOR UPDATE`, locks)
		colls := make(map[uuid.UUID]uuid.UUID)
		queueCollectionsOf(b, locks, colls) // for the change feed
		b.Queue(`DELETE FROM entities e WHERE e.id = ANY($2) AND `+orphanWhere+` RETURNING e.id`, cutoff, locks).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				if err := rows.Scan(bin(&id)); err != nil {
					return err
				}
				out = append(out, id)
			}
			return rows.Err()
		})
		if err := t.run(ctx, b); err != nil {
			return err
		}
		t.recordSweptAssets(out, colls)
		return nil
	})
	if err != nil {
		return nil, s.wrap("delete orphans", err)
	}
	return out, nil
}

// gcLock is a held TryLockGC lock: a session-level advisory lock on a
// connection taken out of the pool until unlock.
type gcLock struct {
	s    *Store
	conn *pgxpool.Conn
	once sync.Once
	mu   sync.Mutex // one user of conn at a time: CheckGCLock, unlock
}

// CheckGCLock returns nil while this store holds the sweep lock and the
// session that holds it still answers. A session-level advisory lock lives
// as long as its session: a lost session (a network cut, a terminated
// backend, a failover) has released it, and another replica may be
// sweeping. The gc package checks before every claim and every deletion of
// bytes, and stops when the lock is gone (gc.LockChecker).
func (s *Store) CheckGCLock(ctx context.Context) error {
	s.mu.Lock()
	locks := make([]*gcLock, 0, len(s.locks))
	for l := range s.locks {
		locks = append(locks, l)
	}
	s.mu.Unlock()
	if len(locks) == 0 {
		return fmt.Errorf("pgindex: the sweep lock is not held: %w", index.ErrConflict)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgindex: check gc lock: %w", err)
	}
	for _, l := range locks {
		// Not under the caller's context: pgx closes a connection whose
		// query is cancelled mid-flight, and the lock would then outlive
		// the sweep until its backend noticed (the next sweep, started
		// right after, found "a sweep is running").
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockCheckTimeout)
		l.mu.Lock()
		_, err := l.conn.Exec(qctx, `SELECT 1`)
		l.mu.Unlock()
		cancel()
		if err != nil {
			return fmt.Errorf("pgindex: the session holding the sweep lock is gone: %w", s.wrap("check gc lock", err))
		}
	}
	return nil
}

func (l *gcLock) unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, gcLockKey); err != nil {
			// Closing the session releases the lock too, once its backend
			// has noticed: wait for that, so that the lock is free when
			// unlock returns.
			pid := l.conn.Conn().PgConn().PID()
			_ = l.conn.Conn().Close(ctx)
			l.s.awaitBackendGone(ctx, pid)
		}
		l.conn.Release()
		l.s.mu.Lock()
		delete(l.s.locks, l)
		l.s.mu.Unlock()
	})
}

// lockCheckTimeout bounds CheckGCLock's round trip to the lock's session.
const lockCheckTimeout = 10 * time.Second

// awaitBackendGone waits until the server has no session of backend pid
// (a connection this process closed), or ctx ends.
func (s *Store) awaitBackendGone(ctx context.Context, pid uint32) {
	for {
		var alive bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, int64(pid)).Scan(&alive)
		if err != nil || !alive {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TryLockGC takes the sweep lock, a session-level pg_try_advisory_lock
// held on a connection of its own until unlock (or until the session ends,
// so a replica that dies frees it), or returns ErrConflict.
func (s *Store) TryLockGC(ctx context.Context) (func(), error) {
	if s.closed.Load() {
		return nil, index.ErrClosed
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, s.wrap("lock gc", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, gcLockKey).Scan(&ok); err != nil {
		conn.Release()
		return nil, s.wrap("lock gc", err)
	}
	if !ok {
		conn.Release()
		return nil, &index.ConflictError{Reason: "a sweep is running"}
	}
	l := &gcLock{s: s, conn: conn}
	s.mu.Lock()
	s.locks[l] = struct{}{}
	s.mu.Unlock()
	return l.unlock, nil
}

// PutGCRun inserts or replaces the report of a run.
func (s *Store) PutGCRun(ctx context.Context, run index.GCRun) error {
	report := run.Report
	if report == nil {
		report = []byte{}
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO gc_runs (id, started_at, report) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET started_at = EXCLUDED.started_at, report = EXCLUDED.report`,
		run.ID, run.StartedAt, report)
	return s.wrap("put gc run", s.run(ctx, b))
}

// GCRuns returns up to limit reports, newest first, after the run named
// after (limit 0: DefaultLimit; at most MaxLimit).
func (s *Store) GCRuns(ctx context.Context, limit int, after string) ([]index.GCRun, error) {
	if limit <= 0 {
		limit = index.DefaultLimit
	}
	limit = min(limit, index.MaxLimit)
	if after != "" {
		if _, err := s.GCRun(ctx, after); err != nil {
			return nil, err
		}
	}
	var out []index.GCRun
	b := &pgx.Batch{}
	b.Queue(`SELECT id, started_at, report FROM gc_runs
WHERE $2 = '' OR (started_at, id) < (SELECT started_at, id FROM gc_runs WHERE id = $2)
ORDER BY started_at DESC, id DESC LIMIT $1`, limit, after).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r index.GCRun
			if err := rows.Scan(&r.ID, &r.StartedAt, &r.Report); err != nil {
				return err
			}
			r.StartedAt = r.StartedAt.UTC()
			out = append(out, r)
		}
		return rows.Err()
	})
	if err := s.run(ctx, b); err != nil {
		return nil, s.wrap("gc runs", err)
	}
	return out, nil
}

// GCRun returns one report, or ErrNotFound.
func (s *Store) GCRun(ctx context.Context, id string) (index.GCRun, error) {
	var r index.GCRun
	found := false
	b := &pgx.Batch{}
	b.Queue(`SELECT id, started_at, report FROM gc_runs WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&r.ID, &r.StartedAt, &r.Report)
		if err == pgx.ErrNoRows {
			return nil
		}
		found = err == nil
		return err
	})
	if err := s.run(ctx, b); err != nil {
		return index.GCRun{}, s.wrap("gc run "+id, err)
	}
	if !found {
		return index.GCRun{}, fmt.Errorf("pgindex: gc run %s: %w", id, index.ErrNotFound)
	}
	r.StartedAt = r.StartedAt.UTC()
	return r, nil
}

// DeleteExpiredIdempotency removes the records that expired at or before now.
func (s *Store) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int, error) {
	var n int64
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM idempotency WHERE expires_at <= $1`, now).Exec(func(ct pgconn.CommandTag) error {
		n = ct.RowsAffected()
		return nil
	})
	if err := s.run(ctx, b); err != nil {
		return 0, s.wrap("delete expired idempotency records", err)
	}
	return int(n), nil
}

// LinkRowCount returns the number of stored link rows (indextest.LinkRowCounter).
func (s *Store) LinkRowCount(ctx context.Context) (int64, error) {
	var n int64
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM link_set_members`).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	if err := s.run(ctx, b); err != nil {
		return 0, s.wrap("count link rows", err)
	}
	return n, nil
}

// claimCols are blobCols and the claim of a deleting row.
const claimCols = blobCols + `, claimed_by, claimed_at`

func scanClaim(row pgx.Row) (index.Blob, error) {
	var (
		b     index.Blob
		hash  []byte
		state int16
		at    *time.Time
	)
	if err := row.Scan(&hash, &b.Size, &state, &b.CreatedAt, &b.LeasedAt, &b.Inline, &b.ClaimedBy, &at); err != nil {
		return index.Blob{}, err
	}
	copy(b.Hash[:], hash)
	b.State = index.BlobState(state)
	b.CreatedAt, b.LeasedAt = b.CreatedAt.UTC(), b.LeasedAt.UTC()
	if at != nil {
		b.ClaimedAt = at.UTC()
	}
	return b, nil
}

func collectClaims(out *[]index.Blob) func(rows pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			blob, err := scanClaim(rows)
			if err != nil {
				return err
			}
			*out = append(*out, blob)
		}
		return rows.Err()
	}
}

// ClaimBlobs moves to deleting the blobs of hs that no stored version names
// and whose lease was renewed before leaseCutoff, and inserts hashes with no
// row as deleting, under sweep's claim stamped with the database's
// clock_timestamp(). One transaction, sent in one round trip with its COMMIT:
//
//  1. SELECT … FOR UPDATE locks the rows, waiting for every transaction that
//     holds one FOR SHARE (a commit naming the blob) to end;
//  2. the UPDATE, a new statement under READ COMMITTED, takes a fresh
//     snapshot that sees those commits, and claims only unreferenced rows;
//  3. INSERT … ON CONFLICT DO NOTHING claims hashes without a row.
//
// A commit that comes after step 1 waits for this transaction and then
// reads the row as deleting (ErrBlobMissing).
func (s *Store) ClaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, leaseCutoff time.Time) ([]index.Blob, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	arr := hashArray(hs)
	var out []index.Blob
	err := s.update(ctx, func(t *tx) error {
		out = out[:0]
		now := s.now()
		t.write(`SELECT hash FROM blobs WHERE hash = ANY($1) ORDER BY hash FOR UPDATE`, arr)
		t.write(`UPDATE blobs b SET state = 3, claimed_by = $3, claimed_at = clock_timestamp()
WHERE b.hash = ANY($1) AND b.state IN (1, 2) AND b.leased_at < $2
	AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.hash = b.hash)
RETURNING `+claimCols, arr, leaseCutoff, sweep).Query(collectClaims(&out))
		// Bytes without a registry row: claimed unless a version names them
		// (which the rules exclude, but old or hand-edited data might not),
		// as on Pebble.
		t.write(`INSERT INTO blobs (hash, size, state, created_at, leased_at, claimed_by, claimed_at)
SELECT h, -1, 3, $2, $2, $3, clock_timestamp() FROM unnest($1::bytea[]) AS h
WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.hash = h)
ON CONFLICT (hash) DO NOTHING
RETURNING `+claimCols, arr, now, sweep).Query(collectClaims(&out))
		return nil
	})
	if err != nil {
		return nil, s.wrap("claim blobs", err)
	}
	return out, nil
}

// ReclaimBlobs hands to sweep the deleting rows of hs that another sweep
// claimed more than olderThan ago, measured on the database's clock (the
// clock that stamped the claim, so the replicas' clocks do not matter).
func (s *Store) ReclaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, olderThan time.Duration) ([]index.Blob, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	arr := hashArray(hs)
	var out []index.Blob
	err := s.retry(ctx, func() error {
		out = out[:0]
		b := &pgx.Batch{}
		b.Queue(`UPDATE blobs SET claimed_by = $2, claimed_at = clock_timestamp()
WHERE hash = ANY($1) AND state = 3 AND claimed_by <> $2
	AND (claimed_at IS NULL OR claimed_at < clock_timestamp() - make_interval(secs => $3))
RETURNING `+claimCols, arr, sweep, olderThan.Seconds()).Query(collectClaims(&out))
		return s.run(ctx, b)
	})
	if err != nil {
		return nil, s.wrap("reclaim blobs", err)
	}
	return out, nil
}

// DeletingBlobs streams the rows in BlobDeleting, in hash order, with
// their claims.
func (s *Store) DeletingBlobs(ctx context.Context, fn func(index.Blob) error) error {
	err := s.query(ctx, func(rows pgx.Rows) error {
		blob, err := scanClaim(rows)
		if err != nil {
			return err
		}
		return fn(blob)
	}, `SELECT `+claimCols+` FROM blobs WHERE state = 3 ORDER BY hash`)
	return s.wrapStream("deleting blobs", err)
}

// ForgetBlobs deletes the rows of hs that are deleting under sweep's claim.
func (s *Store) ForgetBlobs(ctx context.Context, sweep string, hs []cas.Hash) error {
	if len(hs) == 0 {
		return nil
	}
	arr := hashArray(hs)
	err := s.retry(ctx, func() error {
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM blobs WHERE hash = ANY($1) AND state = 3 AND claimed_by = $2`, arr, sweep)
		return s.run(ctx, b)
	})
	if err != nil {
		return s.wrap("forget blobs", err)
	}
	return nil
}
