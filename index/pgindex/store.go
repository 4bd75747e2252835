package pgindex

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/backoff"
)

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns.
const DefaultMaxConns = 16

// Timeouts, so that a PostgreSQL that stops answering fails requests with
// index.ErrUnavailable instead of hanging them.
const (
	// DefaultConnectTimeout bounds opening a connection (dial and startup)
	// when the URL sets no connect_timeout.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultOpTimeout bounds each wait for PostgreSQL (a batch, a
	// transaction, the first and each next row of a stream) when the URL
	// sets no statement_timeout. With one, the bound is statement_timeout
	// plus OpTimeoutMargin, so that the server's own cancellation comes
	// first; statement_timeout=0 lifts the bound.
	DefaultOpTimeout = time.Minute
	OpTimeoutMargin  = 5 * time.Second
)

// errNoAnswer is the cause of an operation that outlived its bound.
var errNoAnswer = errors.New("no answer from PostgreSQL")

// Store is the PostgreSQL index engine. It is safe for concurrent use; the
// caller must Close it.
type Store struct {
	reader // the reads, over the pool

	pool      *pgxpool.Pool
	clock     func() time.Time
	password  string        // to redact from errors
	opTimeout time.Duration // 0: unbounded

	closed atomic.Bool
	mu     sync.Mutex
	locks  map[*gcLock]struct{} // GC locks held, released by Close
	feed   feed                 // the change feed (changes.go)
	// testNoNotify, set by a test before the first commit, keeps the
	// notifier from sending (a notification lost with a killed replica).
	testNoNotify bool
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
	s := &Store{
		pool:      pool,
		clock:     opt.Clock(),
		password:  cfg.ConnConfig.Password,
		opTimeout: opTimeout(cfg),
		locks:     make(map[*gcLock]struct{}),
	}
	s.feed.stop = make(chan struct{})
	s.reader = reader{q: s, now: s.now}
	return s, nil
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
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
		// Every statement here is a short OLTP one, but the planner's
		// estimates for the feed's read (sqlChanges: a one-row table it has
		// no statistics for, joined with a page) pass jit_above_cost once
		// the feed holds some 10,000 changes, and JIT compilation then
		// took 333 ms of CPU for a read that executes in 0.4 ms. A URL
		// that sets jit keeps its own.
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	return cfg, nil
}

// opTimeout is the bound of each wait for PostgreSQL: see DefaultOpTimeout.
func opTimeout(cfg *pgxpool.Config) time.Duration {
	v, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]
	if !ok {
		return DefaultOpTimeout
	}
	d, ok := pgDuration(v)
	switch {
	case !ok:
		return DefaultOpTimeout // the server refuses it at connect anyway
	case d == 0:
		return 0
	}
	return d + OpTimeoutMargin
}

// pgDuration parses a PostgreSQL time setting: an integer with an optional
// unit (us, ms, s, min, h, d); milliseconds without one.
func pgDuration(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	units := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := units[strings.TrimSpace(v[i:])]
	return time.Duration(n) * u, ok
}

// bounded returns ctx bounded by the operation timeout, and its cancel.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, s.opTimeout, errNoAnswer)
}

// timedOut turns the error of an operation that outlived its bound into
// index.ErrUnavailable saying so; other errors pass unchanged.
func (s *Store) timedOut(ctx context.Context, err error) error {
	if err == nil || !errors.Is(context.Cause(ctx), errNoAnswer) {
		return err
	}
	return &dbError{sentinel: index.ErrUnavailable, err: fmt.Errorf("%w within %s: %w", errNoAnswer, s.opTimeout, err)}
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
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	return s.closedOr(s.timedOut(ctx, translate(s.pool.SendBatch(ctx, b).Close())))
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
// Each wait for a row is bounded by the operation timeout; the time fn
// takes is not counted, so a long stream is never cut while it moves.
func (s *Store) query(ctx context.Context, fn func(pgx.Rows) error, sql string, args ...any) error {
	if s.closed.Load() {
		return index.ErrClosed
	}
	binaryValues(args)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var timer *time.Timer
	if s.opTimeout > 0 {
		timer = time.AfterFunc(s.opTimeout, func() { cancel(errNoAnswer) })
		defer timer.Stop()
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return s.closedOr(s.timedOut(ctx, translate(err)))
	}
	defer rows.Close()
	for rows.Next() {
		if timer != nil {
			timer.Stop()
		}
		if err := fn(rows); err != nil {
			return err
		}
		if timer != nil {
			timer.Reset(s.opTimeout)
		}
	}
	return s.timedOut(ctx, translate(rows.Err()))
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
	s.stopListener()
	s.pool.Close()
	return nil
}

// Update runs fn in a READ COMMITTED transaction on one connection and
// commits it when fn returns nil. A serialization failure or a deadlock
// runs fn again, at most maxAttempts times in all.
func (s *Store) Update(ctx context.Context, fn func(tx index.Tx) error) error {
	return s.update(ctx, func(t *tx) error { return fn(index.RecordChanges(t.ctx, t, t)) })
}

const maxAttempts = 8

// conflictBackoff spaces the attempts of a transaction that met a
// serialization failure or a deadlock: 1 ms doubling to 50 ms, about 0.1 s
// over all maxAttempts.
var conflictBackoff = backoff.Policy{First: time.Millisecond, Max: 50 * time.Millisecond}

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
		if backoff.Sleep(ctx, conflictBackoff.Delay(attempt)) != nil {
			return err
		}
	}
}

func (s *Store) updateOnce(ctx context.Context, fn func(t *tx) error) (err error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	defer func() { err = s.timedOut(ctx, err) }()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.closedOr(s.wrap("begin transaction", err))
	}
	t := &tx{s: s, ctx: ctx, conn: conn}
	t.reader = reader{q: t, now: s.now}
	defer t.end()
	if err := fn(t); err != nil {
		return err
	}
	if t.broken != nil {
		return t.broken
	}
	return s.committed(t, t.commit())
}

// errTxDone is returned by a Tx used after its Update returned.
var errTxDone = errors.New("pgindex: transaction already ended")
