package pgindex

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/blockstore/blockstore/index"
)

// tx is a write transaction on one connection. It pipelines: BEGIN goes out
// with the first statements, and writes whose results decide nothing are
// queued (pending) and sent in front of the next statements, or with COMMIT.
// Committing a unit version thus costs two round trips: the locking reads,
// then the writes and COMMIT.
type tx struct {
	reader // the reads, inside the transaction

	s    *Store
	ctx  context.Context
	conn *pgxpool.Conn

	begun   bool
	pending []*pgx.QueuedQuery
	broken  error // an error that aborted the PostgreSQL transaction
	done    bool

	now       time.Time          // the clock reading of the current operation
	graphLock bool               // graphLockKey taken
	changes   int                // change rows queued (changes.go)
	linked    map[uuid.UUID]bool // assets a locking read saw marked ever linked (links.go)
}

var _ index.Tx = (*tx)(nil)

// run sends the pending writes and b in one round trip (with BEGIN first
// when the transaction has not begun). Reads in b see the pending writes.
func (t *tx) run(ctx context.Context, b *pgx.Batch) error {
	if t.done {
		return errTxDone
	}
	if t.broken != nil {
		return fmt.Errorf("pgindex: transaction aborted by an earlier error: %w", t.broken)
	}
	nb := &pgx.Batch{}
	if !t.begun {
		nb.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	}
	nb.QueuedQueries = append(nb.QueuedQueries, t.pending...)
	if b != nil {
		nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
	}
	t.pending = nil
	if len(nb.QueuedQueries) == 0 {
		return nil
	}
	t.begun = true
	binaryArgs(nb.QueuedQueries)
	err := t.conn.SendBatch(ctx, nb).Close()
	if err != nil {
		err = translate(err)
		pc := t.conn.Conn().PgConn()
		if pc.IsClosed() || pc.TxStatus() != 'T' {
			t.broken = err
		}
	}
	return err
}

// write queues a statement whose result only matters if it fails; it is
// sent with the next round trip. It returns the queued query so that a
// caller can attach a callback.
func (t *tx) write(sql string, args ...any) *pgx.QueuedQuery {
	q := &pgx.QueuedQuery{SQL: sql, Arguments: args}
	t.pending = append(t.pending, q)
	return q
}

// commit sends the pending writes with COMMIT.
func (t *tx) commit() error {
	if !t.begun && len(t.pending) == 0 {
		return nil
	}
	var tag pgconn.CommandTag
	b := &pgx.Batch{}
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	if err := t.run(t.ctx, b); err != nil {
		return t.s.wrap("commit", err)
	}
	if tag.String() != "COMMIT" {
		// PostgreSQL answers ROLLBACK to a COMMIT of a failed transaction.
		return fmt.Errorf("pgindex: commit: %w", &dbError{sentinel: index.ErrUnavailable, err: fmt.Errorf("transaction rolled back (%s)", tag)})
	}
	return nil
}

// end rolls back what is not committed and returns the connection; a
// connection that cannot be brought back to idle is closed instead.
func (t *tx) end() {
	t.done = true
	pc := t.conn.Conn().PgConn()
	if !pc.IsClosed() && pc.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 10*time.Second)
		if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
			_ = t.conn.Conn().Close(ctx)
		}
		cancel()
	}
	t.conn.Release()
}

// op starts an operation: it checks that the transaction can be used.
func (t *tx) op() error {
	if t.done {
		return errTxDone
	}
	if t.broken != nil {
		return fmt.Errorf("pgindex: transaction aborted by an earlier error: %w", t.broken)
	}
	return nil
}

// stamp reads the clock once for the operation: every time it stores is
// this reading. Operations on an existing entity read it once they hold the
// entity's lock, so that created_at grows with the version number even
// when writers queue for the lock.
func (t *tx) stamp() {
	t.now = t.s.now()
}
