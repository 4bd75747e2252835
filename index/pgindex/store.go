package pgindex

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/blockstore/blockstore/index"
)

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
const DefaultMaxConns = 16

// Store is the PostgreSQL index engine. It is safe for concurrent use; the
// caller must Close it.
type Store struct {
	pool     *pgxpool.Pool
	clock    func() time.Time
	password string // to redact from errors

	closed atomic.Bool
	mu     sync.Mutex
	locks  map[*gcLock]struct{} // GC locks held, released by Close
}

var _ index.Store = (*Store)(nil)

// Open migrates the database at url (see Migrate) and returns a Store over a
// connection pool. The URL may set pool_max_conns and the other pgxpool
// parameters; errors never quote its password.
func Open(ctx context.Context, url string, opt index.Options) (*Store, error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, url); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("pgindex: open: %w", translate(err)), cfg.ConnConfig.Password)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("pgindex: open: %w", translate(err)), cfg.ConnConfig.Password)
	}
	return &Store{
		pool:     pool,
		clock:    opt.Clock(),
		password: cfg.ConnConfig.Password,
		locks:    make(map[*gcLock]struct{}),
	}, nil
}

// parseConfig parses url into a pool configuration with this package's
// defaults; its errors never quote a password.
func parseConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, redact(fmt.Errorf("pgindex: parse database URL: %w", err), passwordOf(url))
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	return cfg, nil
}

// passwordOf returns the password of a URL that may not parse as a
// configuration, so that it can be redacted.
func passwordOf(url string) string {
	if cfg, err := pgx.ParseConfig(url); err == nil {
		return cfg.Password
	}
	return ""
}

// now reads the clock at PostgreSQL's precision (microseconds), in UTC, so
// that what a write returns equals what a later read returns.
func (s *Store) now() time.Time {
	return s.clock().UTC().Truncate(time.Microsecond)
}

// wrap names what failed and hides the password.
func (s *Store) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return redact(fmt.Errorf("pgindex: %s: %w", what, translate(err)), s.password)
}

// run sends b over a pooled connection as one round trip, outside any
// explicit transaction (every statement sees the latest commits).
func (s *Store) run(ctx context.Context, b *pgx.Batch) error {
	if s.closed.Load() {
		return index.ErrClosed
	}
	binaryArgs(b.QueuedQueries)
	return s.closedOr(translate(s.pool.SendBatch(ctx, b).Close()))
}

// closedOr returns ErrClosed for an error that a Close during the call
// caused (the pool refuses connections once closed), else err.
func (s *Store) closedOr(err error) error {
	if err != nil && s.closed.Load() {
		return fmt.Errorf("%w (%v)", index.ErrClosed, err)
	}
	return err
}

// query streams the rows of one statement to fn, holding one connection
// until the last row (rows are read from the socket as fn consumes them).
func (s *Store) query(ctx context.Context, fn func(pgx.Rows) error, sql string, args ...any) error {
	if s.closed.Load() {
		return index.ErrClosed
	}
	binaryValues(args)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return s.closedOr(translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return translate(rows.Err())
}

// Ping says whether PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return index.ErrClosed
	}
	return s.wrap("ping", s.pool.Ping(ctx))
}

// Close releases the GC locks still held and closes the pool, waiting for
// connections in use to come back. A second Close does nothing.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	held := make([]*gcLock, 0, len(s.locks))
	for l := range s.locks {
		held = append(held, l)
	}
	s.mu.Unlock()
	for _, l := range held {
		l.unlock()
	}
	s.pool.Close()
	return nil
}

// Update runs fn in a READ COMMITTED transaction on one connection and
// commits it when fn returns nil. A serialization failure or a deadlock
// runs fn again, at most maxAttempts times in all.
func (s *Store) Update(ctx context.Context, fn func(tx index.Tx) error) error {
	return s.update(ctx, func(t *tx) error { return fn(t) })
}

const maxAttempts = 8

func (s *Store) update(ctx context.Context, fn func(t *tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if s.closed.Load() {
			return index.ErrClosed
		}
		err = s.updateOnce(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("pgindex: transaction gave up after %d attempts: %w", attempt, err)
		}
		// Back off a little, growing, so that the conflicting writers spread out.
		t := time.NewTimer(time.Duration(attempt*attempt) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (s *Store) updateOnce(ctx context.Context, fn func(t *tx) error) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.closedOr(s.wrap("begin transaction", err))
	}
	t := &tx{s: s, ctx: ctx, conn: conn}
	defer t.end()
	if err := fn(t); err != nil {
		return err
	}
	if t.broken != nil {
		return t.broken
	}
	return t.commit()
}

// errTxDone is returned by a Tx used after its Update returned.
var errTxDone = errors.New("pgindex: transaction already ended")
