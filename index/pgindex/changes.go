package pgindex

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/blockstore/blockstore/index"
)

// The change feed on PostgreSQL (index.ChangeFeed).
//
// # Order without gaps
//
// Each change is a row of changes written by the transaction that makes the
// write (so it exists exactly when the write is committed), stamped with
// that transaction's id, xid = pg_current_xact_id() (xid8, which never
// wraps). Transactions take sequence numbers in one order and commit in
// another, so serving rows "after the last seq seen" would skip a row whose
// transaction took a low number and committed late. Instead the feed is
// ordered by (xid, seq) and a read serves only rows whose xid is below a
// bound taken from its own snapshot (in the same statement): the snapshot's
// xmin, refined (sqlBound) to skip the in-progress transactions that
// pg_stat_activity shows running in another database of the cluster, since
// those cannot write this table. Every transaction of this database with a
// smaller xid has ended, so every row such a transaction will ever have is
// visible to the read, and no row can later appear at or before a position
// the read handed out. A cursor is the position (xid, seq) of the last
// change served (or, after a page that was not full, just below the bound).
// A transaction that begins after another one was acknowledged takes a
// larger xid (xids are assigned in time order), so its change is listed
// after the other one: the order is consistent with acknowledgements.
//
// The price is latency, never order: a row is served once every
// transaction of this database that took an xid before it has ended. Our
// own transactions are short (each statement is bounded); a long one that
// wrote in this database (a bulk load by hand, a session left idle in a
// transaction), a prepared transaction, or a role that may not see other
// sessions' xids in pg_stat_activity (then every in-progress xid counts,
// cluster-wide) holds the feed back until it ends. Read-only transactions
// take no xid and hold nothing. ChangePage.Held says so, and waiting
// followers then look again every few hundred milliseconds; the lag metric
// shows it (idle_in_transaction_session_timeout bounds it).
//
// An appending lock would give the same order by serializing every writer
// through one row until commit; the xid order keeps writers concurrent.
//
// # Waking followers across replicas
//
// After a transaction that wrote changes has committed, the Store sends
// pg_notify(changesChannel, '') in a statement of its own (the notifier),
// which PostgreSQL delivers to every session that LISTENs in the database.
// Not inside the writing transaction: PostgreSQL serializes the commits of
// the transactions that notify, under one lock held through their WAL
// flush, which capped unit commits at about 300 a second with 8 writers
// (pg_stat_activity showed them waiting on "Lock: object" at COMMIT). A
// notify of its own writes no WAL, so it holds that lock briefly, and the
// notifier coalesces: commits that end while one is in flight share the
// next. Each Store keeps one listening connection (opened by the first
// WatchChanges, reopened after a failure, when it also wakes everyone
// since notifications may have been lost), and fans each notification out
// to its waiting followers through one index.Broadcast; its own commits
// wake them without the round trip. A notification can still be lost (a
// replica killed between its commit and its notify), so the listener also
// wakes its followers every second (lookInterval): a long-poll on one
// replica sees a commit through another within a second in any case.
//
// # Retention
//
// PruneChanges deletes a prefix of the feed (in (xid, seq) order, below
// the bound) made before the cutoff and records its last position in
// changes_pruned; a cursor before that position is index.ErrGone.

// changesChannel is the LISTEN/NOTIFY channel of the feed.
const changesChannel = "blockstore_changes"

// testAfterChange, when set by a test, runs once a transaction has sent
// its change row, before it goes on: a test holds transactions open with it
// to make them commit out of order.
var testAfterChange func(ctx context.Context)

// lookInterval is how often waiting followers look at the feed when no
// notification came.
const lookInterval = time.Second

// feed is the Store's change-feed state.
type feed struct {
	written atomic.Uint64
	wake    index.Broadcast

	// notify holds a pending notification for other replicas (one is
	// enough: the notifier sends it after every commit that set it).
	notify       chan struct{}
	notifierOnce sync.Once
	notifierDone chan struct{} // closed when the notifier has stopped
	stop         chan struct{} // closed by Close

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{} // closed when the listener has stopped
}

const (
	sqlInsertChange = `INSERT INTO changes (kind, entity, collection, version, event, at) VALUES ($1, $2, $3, $4, $5, $6)`
	sqlNotify       = `SELECT pg_notify('` + changesChannel + `', '')`
	// sqlSweptVersions records a sweep's deleted versions ($1 ids, $2
	// versions, $3 kinds): the entities are still there to name the
	// collection.
	sqlSweptVersions = `INSERT INTO changes (kind, entity, collection, version, event, at)
SELECT k.kind, k.id, COALESCE(e.collection, e.id), k.ver, 6, $4
FROM unnest($1::uuid[], $2::bigint[], $3::smallint[]) WITH ORDINALITY AS k(id, ver, kind, n)
JOIN entities e ON e.id = k.id ORDER BY k.n`
	sqlSweptAssets = `INSERT INTO changes (kind, entity, collection, version, event, at)
SELECT 3, k.id, k.coll, 0, 6, $3 FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS k(id, coll, n) ORDER BY k.n`
)

// AppendChange queues the change row (and, once per transaction, the
// notification) to go out with the transaction's next statements.
func (t *tx) AppendChange(c index.FeedChange) error {
	if err := t.op(); err != nil {
		return err
	}
	if t.now.IsZero() {
		t.stamp()
	}
	t.write(sqlInsertChange, int16(c.Kind), c.ID, c.Collection, c.Version, int16(c.Event), t.now)
	t.noteChanges(1)
	if testAfterChange != nil {
		if err := t.run(t.ctx, nil); err != nil {
			return err
		}
		testAfterChange(t.ctx)
	}
	return nil
}

// noteChanges counts n change rows queued: a commit with changes notifies
// the other replicas once it is done (Store.committed).
func (t *tx) noteChanges(n int) { t.changes += n }

// recordSweptVersions records a sweep's deletion of vs (before the
// transaction commits; the entities are still there).
func (t *tx) recordSweptVersions(vs []index.VersionKey) {
	if len(vs) == 0 {
		return
	}
	ids, vers, kinds := make([]uuid.UUID, len(vs)), make([]int64, len(vs)), make([]int16, len(vs))
	for i, v := range vs {
		ids[i], vers[i], kinds[i] = v.ID, v.Version, int16(v.Kind)
	}
	if t.now.IsZero() {
		t.stamp()
	}
	t.write(sqlSweptVersions, ids, vers, kinds, t.now)
	t.noteChanges(len(vs))
}

// queueCollectionsOf reads the collections of ids into colls (before a
// deletion takes them away).
func queueCollectionsOf(b *pgx.Batch, ids []uuid.UUID, colls map[uuid.UUID]uuid.UUID) {
	b.Queue(`SELECT id, collection FROM entities WHERE id = ANY($1) AND collection IS NOT NULL`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, coll uuid.UUID
			if err := rows.Scan(bin(&id), bin(&coll)); err != nil {
				return err
			}
			colls[id] = coll
		}
		return rows.Err()
	})
}

// recordSweptAssets records a sweep's deletion of the orphaned assets ids,
// whose collections queueCollectionsOf read.
func (t *tx) recordSweptAssets(ids []uuid.UUID, colls map[uuid.UUID]uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	cs := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		cs[i] = colls[id]
	}
	if t.now.IsZero() {
		t.stamp()
	}
	t.write(sqlSweptAssets, ids, cs, t.now)
	t.noteChanges(len(ids))
}

// committed is called with the outcome of t's commit: it counts t's
// changes and wakes this process's followers at once.
func (s *Store) committed(t *tx, err error) error {
	if err == nil && t.changes > 0 {
		s.feed.written.Add(uint64(t.changes))
		s.feed.wake.Notify()
		s.notifyReplicas()
	}
	return err
}

// notifyReplicas asks the notifier to send a notification, without waiting.
func (s *Store) notifyReplicas() {
	s.feed.notifierOnce.Do(s.startNotifier)
	select {
	case s.feed.notify <- struct{}{}:
	default: // one is pending already, and will cover this commit
	}
}

// notifyTimeout bounds one notification's round trip.
const notifyTimeout = 5 * time.Second

// startNotifier starts the goroutine that sends the notifications, one at
// a time, each covering every commit that asked before it was sent.
func (s *Store) startNotifier() {
	s.feed.notify = make(chan struct{}, 1)
	s.feed.notifierDone = make(chan struct{})
	go func() {
		defer close(s.feed.notifierDone)
		for {
			select {
			case <-s.feed.stop:
				return
			case <-s.feed.notify:
			}
			if s.testNoNotify {
				continue
			}
			// A failure is not retried: the listeners look every
			// lookInterval anyway.
			ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
			_, _ = s.pool.Exec(ctx, sqlNotify)
			cancel()
		}
	}()
}

// parseXid8 reads an xid8 sent as text.
func parseXid8(s string) (uint64, error) {
	x, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pgindex: xid8 %q: %w", s, err)
	}
	return x, nil
}

func pos(xid string, seq int64) (index.ChangePos, error) {
	x, err := parseXid8(xid)
	return index.ChangePos{Major: x, Minor: uint64(seq)}, err
}

func maxPos(a, b index.ChangePos) index.ChangePos {
	if a.Less(b) {
		return b
	}
	return a
}

// sqlBound is the CTE "s" of the feed's reads: bound, the position below
// which every transaction that can write this database's changes has
// ended, as of the statement's snapshot; and held, whether committed
// changes wait at or above it. It is the snapshot's xmin refined: the
// in-progress xids of the snapshot that pg_stat_activity shows running in
// another database cannot write here and do not count; an xid it does not
// show (ended since, a prepared transaction, or hidden from this role)
// counts, which only delays. Without in-progress xids of this database the
// bound is the snapshot's xmax. Every part reads the one snapshot of the
// statement (a function would take its own). The activity of the other
// sessions is read (pg_stat_get_activity, the function under the view,
// without the view's joins) only when the snapshot has in-progress xids:
// a read of an idle database, as the latest-version cache makes many of,
// skips it. held compares the largest xid with the bound: one probe of the
// primary key's end, where an EXISTS over xid >= bound was planned as a
// scan of the whole table (a millisecond at 10,000 changes, for every read
// of the feed).
const sqlBound = `snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
elsewhere AS MATERIALIZED (
	SELECT coalesce(array_agg(a.backend_xid), '{}') AS xs FROM pg_stat_get_activity(NULL) a
	WHERE EXISTS (SELECT 1 FROM snap, pg_snapshot_xip(snap.s))
		AND a.backend_xid IS NOT NULL
		AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
), s AS MATERIALIZED (
	SELECT b.bound, coalesce((SELECT max(h.xid) FROM changes h) >= b.bound, false) AS held
	FROM (SELECT coalesce(
		(SELECT min(x) FROM snap, elsewhere e, pg_snapshot_xip(snap.s) AS x WHERE NOT (x::xid = ANY (e.xs))),
		(SELECT pg_snapshot_xmax(snap.s) FROM snap)) AS bound) b
)`

// sqlChanges reads a page in one statement, so that the bound, the pruned
// mark and the rows agree: $1, $2 the cursor, $3 the limit.
const sqlChanges = `WITH ` + sqlBound + `, page AS (
	SELECT c.* FROM changes c, s
	WHERE (c.xid, c.seq) > ($1::text::xid8, $2::bigint) AND c.xid < s.bound %s
	ORDER BY c.xid, c.seq LIMIT $3
)
SELECT s.bound::text, s.held, (SELECT snap.s::text FROM snap), p.xid::text, p.seq,
	c.xid::text, c.seq, c.kind, c.entity, c.collection, c.version, c.event, c.at
FROM s CROSS JOIN changes_pruned p LEFT JOIN page c ON true
ORDER BY c.xid, c.seq`

// Changes returns a page of the feed.
func (s *Store) Changes(ctx context.Context, q index.ChangeQuery) (index.ChangePage, error) {
	limit, err := index.ChangeLimit(q.Limit)
	if err != nil {
		return index.ChangePage{}, err
	}
	after, err := index.ParseChangeCursor(q.After)
	if err != nil {
		return index.ChangePage{}, err
	}
	if after.Major > math.MaxInt64 || after.Minor > math.MaxInt64 {
		return index.ChangePage{}, fmt.Errorf("%w: change cursor %q is out of range", index.ErrInvalid, q.After)
	}
	sql, args := fmt.Sprintf(sqlChanges, ""), []any{strconv.FormatUint(after.Major, 10), int64(after.Minor), limit}
	if q.Collection != uuid.Nil {
		sql, args = fmt.Sprintf(sqlChanges, "AND c.collection = $4"), append(args, q.Collection)
	}
	var (
		page                 index.ChangePage
		boundText, prunedXid string
		prunedSeq            int64
		last                 index.ChangePos
	)
	b := &pgx.Batch{}
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				xid          *string
				seq, version *int64
				kind, event  *int16
				id, coll     pgtype.UUID
				at           *time.Time
			)
			if err := rows.Scan(&boundText, &page.Held, &page.Clock, &prunedXid, &prunedSeq,
				&xid, &seq, &kind, &id, &coll, &version, &event, &at); err != nil {
				return err
			}
			if xid == nil {
				continue // the one row of an empty page
			}
			p, err := pos(*xid, *seq)
			if err != nil {
				return err
			}
			last = p
			page.Items = append(page.Items, index.FeedChange{
				Cursor: p.String(), Kind: index.Kind(*kind), ID: id.Bytes, Collection: coll.Bytes,
				Version: *version, Event: index.ChangeEvent(*event), At: at.UTC(),
			})
		}
		return rows.Err()
	})
	if err := s.run(ctx, b); err != nil {
		return index.ChangePage{}, s.wrap("changes", err)
	}
	bound, err := parseXid8(boundText)
	if err != nil {
		return index.ChangePage{}, err
	}
	pruned, err := pos(prunedXid, prunedSeq)
	if err != nil {
		return index.ChangePage{}, err
	}
	from := after
	if q.After == "" {
		from = pruned
	} else if after.Less(pruned) {
		return index.ChangePage{}, fmt.Errorf("pgindex: changes: %w: cursor %s is before the oldest change kept", index.ErrGone, q.After)
	}
	next := maxPos(from, last)
	if len(page.Items) < limit && bound > 0 {
		// Every row below the bound was looked at: move past them all, so
		// that a filtered follower's cursor keeps up with the pruning.
		next = maxPos(next, index.ChangePos{Major: bound - 1, Minor: math.MaxInt64})
	}
	page.NextCursor = next.String()
	return page, nil
}

// ChangesHead returns the cursor of the last change served now (or the
// pruned mark when none is kept).
func (s *Store) ChangesHead(ctx context.Context) (string, error) {
	var (
		xid string
		seq int64
	)
	b := &pgx.Batch{}
	b.Queue(`WITH ` + sqlBound + ` SELECT xid::text, seq FROM (
	(SELECT c.xid, c.seq FROM changes c, s WHERE c.xid < s.bound ORDER BY c.xid DESC, c.seq DESC LIMIT 1)
	UNION ALL SELECT xid, seq FROM changes_pruned
) h ORDER BY xid DESC, seq DESC LIMIT 1`).QueryRow(func(row pgx.Row) error { return row.Scan(&xid, &seq) })
	if err := s.run(ctx, b); err != nil {
		return "", s.wrap("changes head", err)
	}
	p, err := pos(xid, seq)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// CommitClock returns the current snapshot (index.CommitClock). Every
// transaction that ends changes it: one in its in-progress list leaves
// the list, a later one moves its xmax past it. A transaction acknowledged
// to its client has ended, so a snapshot read after the acknowledgement
// differs from one read before the commit. Other databases' transactions
// move it too (xids are the cluster's), which only costs a feed read.
func (s *Store) CommitClock(ctx context.Context) (string, error) {
	var snap string
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_current_snapshot()::text`).QueryRow(func(row pgx.Row) error { return row.Scan(&snap) })
	if err := s.run(ctx, b); err != nil {
		return "", s.wrap("commit clock", err)
	}
	return snap, nil
}

// ChangesWritten counts the changes this process committed.
func (s *Store) ChangesWritten() uint64 { return s.feed.written.Load() }

// WatchChanges returns a channel closed when a commit with changes may have
// happened, here or on another replica; the first call starts the listener.
func (s *Store) WatchChanges() <-chan struct{} {
	s.feed.once.Do(s.startListener)
	return s.feed.wake.Watch()
}

// Listener reconnection pauses (doubling).
const (
	listenRetryFirst = 100 * time.Millisecond
	listenRetryMax   = 5 * time.Second
)

func (s *Store) startListener() {
	if s.closed.Load() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.feed.cancel, s.feed.done = cancel, make(chan struct{})
	look := time.NewTicker(lookInterval)
	go func() {
		defer look.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-look.C:
				s.feed.wake.Notify()
			}
		}
	}()
	go func() {
		defer close(s.feed.done)
		pause := listenRetryFirst
		for ctx.Err() == nil {
			if s.listen(ctx, func() { pause = listenRetryFirst }) {
				continue
			}
			// Wake everyone: notifications sent while no one listened are
			// lost, and followers should look for themselves.
			s.feed.wake.Notify()
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			pause = min(2*pause, listenRetryMax)
		}
	}()
}

// listen holds one LISTEN session and fans its notifications out until it
// fails (false) or ctx ends; connected runs once it listens.
func (s *Store) listen(ctx context.Context, connected func()) bool {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return false
	}
	connected()
	// Changes committed before LISTEN took effect sent no notification to
	// this session: let the followers look.
	s.feed.wake.Notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return ctx.Err() != nil
		}
		s.feed.wake.Notify()
	}
}

// stopListener stops the listener and the notifier (Close).
func (s *Store) stopListener() {
	s.feed.once.Do(func() {})         // no listener may start after this
	s.feed.notifierOnce.Do(func() {}) // nor a notifier
	close(s.feed.stop)
	if s.feed.cancel != nil {
		s.feed.cancel()
		<-s.feed.done
	}
	if s.feed.notifierDone != nil {
		<-s.feed.notifierDone
	}
}

// PruneChanges deletes the changes made before cutoff: the longest prefix
// of the feed (in (xid, seq) order, below the bound of sqlBound) whose
// changes are all older than cutoff. Every statement after the first sees
// the rows below the first one's bound as they were (the transactions that
// can write them have ended), so the prefix is the same in each.
func (s *Store) PruneChanges(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := s.update(ctx, func(t *tx) error {
		n = 0
		var (
			young    *string
			youngSeq *int64
			below    string
			endXid   *string
			endSeq   *int64
		)
		b := &pgx.Batch{}
		b.Queue(`WITH `+sqlBound+`
SELECT s.bound::text, y.xid::text, y.seq FROM s LEFT JOIN LATERAL (
	SELECT c.xid, c.seq FROM changes c WHERE c.xid < s.bound AND c.at >= $1 ORDER BY c.xid, c.seq LIMIT 1
) y ON true`, cutoff).QueryRow(func(row pgx.Row) error { return row.Scan(&below, &young, &youngSeq) })
		if err := t.run(t.ctx, b); err != nil {
			return err
		}
		b = &pgx.Batch{}
		if young != nil {
			b.Queue(`SELECT xid::text, seq FROM changes WHERE (xid, seq) < ($1::text::xid8, $2) ORDER BY xid DESC, seq DESC LIMIT 1`, *young, *youngSeq).
				QueryRow(func(row pgx.Row) error { return scanOptional(row.Scan(&endXid, &endSeq)) })
		} else {
			b.Queue(`SELECT xid::text, seq FROM changes WHERE xid < $1::text::xid8 ORDER BY xid DESC, seq DESC LIMIT 1`, below).
				QueryRow(func(row pgx.Row) error { return scanOptional(row.Scan(&endXid, &endSeq)) })
		}
		if err := t.run(t.ctx, b); err != nil {
			return err
		}
		if endXid == nil {
			return nil
		}
		b = &pgx.Batch{}
		b.Queue(`DELETE FROM changes WHERE (xid, seq) <= ($1::text::xid8, $2)`, *endXid, *endSeq).Exec(func(ct pgconn.CommandTag) error {
			n = ct.RowsAffected()
			return nil
		})
		b.Queue(`UPDATE changes_pruned SET xid = $1::text::xid8, seq = $2 WHERE (xid, seq) < ($1::text::xid8, $2)`, *endXid, *endSeq)
		return t.run(t.ctx, b)
	})
	if err != nil {
		return int(n), s.wrap("prune changes", err)
	}
	return int(n), nil
}

// scanOptional treats no row as nothing found.
func scanOptional(err error) error {
	if err == pgx.ErrNoRows {
		return nil
	}
	return err
}

var (
	_ index.ChangeFeed     = (*Store)(nil)
	_ index.CommitClock    = (*Store)(nil)
	_ index.ChangePruner   = (*Store)(nil)
	_ index.ChangeAppender = (*tx)(nil)
)
