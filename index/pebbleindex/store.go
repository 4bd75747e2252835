package pebbleindex

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/blockstore/blockstore/index"
)

// Pebble's memory: memtables and cache blocks are allocated outside the Go
// heap when cgo is enabled (the default build), inside it otherwise. Smaller
// sizes make commits slower once a few tens of thousands of versions have
// been written (BenchmarkIndexNoSync at 60,000 commits: 4 MiB and 8 MiB, the
// Pebble defaults, give a quarter of the rate of these).
//
// Pebble counts every memtable against the block cache (Cache.Reserve): an
// active memtable and one being flushed take 2 × memTableSize of it. The
// cache is sized so that blockCacheSize is left for blocks; with a cache of
// only 2 × memTableSize the index kept no block at all once memtables were
// full-sized, and every point read went to the file (TestBlockCacheKeepsBlocks).
const (
	memTableSize   = 32 << 20
	blockCacheSize = 64 << 20
	cacheSize      = blockCacheSize + 2*memTableSize
)

// Options configure Open.
type Options struct {
	index.Options
	// InMemory keeps the whole database in memory (vfs.NewMem): for tests.
	InMemory bool
	// NoSync commits without waiting for the WAL to reach the disk. Only for
	// setting up benchmarks: a crash loses acknowledged writes.
	NoSync bool

	// fs replaces the file system (tests count WAL syncs with it).
	fs vfs.FS
}

// Store is the Pebble index engine. It is safe for concurrent use; the
// caller must Close it.
type Store struct {
	db     *pebble.DB
	clock  func() time.Time
	noSync bool

	// writer is the one-writer-at-a-time turn (a channel so that waiting
	// for it honours the context); registry is the turn of blob-row writes.
	writer, registry chan struct{}
	// group syncs the WAL for the batches writers apply.
	group groupSync

	gate   gate
	gcLock sync.Mutex
	feed   changeLog // the change feed (changes.go)
	// ents caches entity records for the writer's transactions.
	ents *entityCache
}

var (
	_ index.Store     = (*Store)(nil)
	_ index.SyncStats = (*Store)(nil)
)

// Open opens (or creates) the index in dir. The caller holds the data
// directory's lock: Open takes none beyond Pebble's own. With opt.InMemory,
// dir only names the in-memory database.
func Open(dir string, opt Options) (*Store, error) {
	po := &pebble.Options{
		Logger:             &quietLogger{},
		FormatMajorVersion: pebble.FormatNewest,
		// Every commit rewrites a few hot keys (entity records, link-set
		// counts) and reads keys written long ago (link targets, blob
		// rows), so every flushed table overlaps every read: bloom filters
		// let a point read skip the tables without its key, and larger
		// memtables and cache keep the tables few and their blocks warm.
		MemTableSize: memTableSize,
		CacheSize:    cacheSize,
	}
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10) // later levels inherit it
	if opt.fs != nil {
		po.FS = opt.fs
	}
	if opt.InMemory {
		po.FS = vfs.NewMem()
		if dir == "" {
			dir = "index"
		}
	}
	if !opt.InMemory && opt.fs == nil {
		if err := checkRoomToOpen(dir); err != nil {
			return nil, err
		}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("index: open pebble in %s: %w", dir, err)
	}
	s := &Store{
		db:       db,
		clock:    opt.Clock(),
		noSync:   opt.NoSync,
		writer:   make(chan struct{}, 1),
		registry: make(chan struct{}, 1),
		ents:     newEntityCache(),
	}
	s.gate.init()
	s.group.init()
	if err := s.checkLayout(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkLayout stamps a new database with the key layout's name and refuses a
// database written with another layout.
func (s *Store) checkLayout() error {
	v, ok, err := getValue(s.db, []byte(layoutKey))
	if err != nil {
		return fmt.Errorf("index: read layout: %w", err)
	}
	if ok {
		if string(v) != layoutFormat {
			return fmt.Errorf("index: pebble database has layout %q, want %q", v, layoutFormat)
		}
		return nil
	}
	if err := s.db.Set([]byte(layoutKey), []byte(layoutFormat), pebble.Sync); err != nil {
		return fmt.Errorf("index: write layout: %w", dbErr(err))
	}
	return nil
}

// Close waits for the calls under way, then closes the database. Later calls
// (a second Close included) return ErrClosed, except Close, which returns nil.
func (s *Store) Close() error {
	if !s.gate.close() {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("index: close pebble: %w", err)
	}
	return nil
}

// Ping says whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: ping: %w", err)
	}
	if _, _, err := getValue(s.db, []byte(layoutKey)); err != nil {
		return fmt.Errorf("index: ping: %w", err)
	}
	return nil
}

// Update runs fn in a write transaction: one writer at a time, on an indexed
// batch whose reads see its own writes over the committed state. The batch
// is applied inside the writer's turn (so the next writer sees it) and
// synced after it, one WAL sync for every writer it finds applied (see
// groupSync); Update returns once its batch is durable.
func (s *Store) Update(ctx context.Context, fn func(tx index.Tx) error) error {
	return s.write(ctx, func(t *tx) error { return fn(index.RecordChanges(ctx, t, t)) })
}

// write runs fn as Update does, with the engine's own tx type.
func (s *Store) write(ctx context.Context, fn func(t *tx) error) error {
	return s.commit(ctx, fn, s.writer)
}

// writeRegistry runs fn, which reads and writes only blob rows, in the
// registry's turn: uploads register blobs without waiting for the writer
// (and may do so inside an Update's closure), while ClaimBlobs, which takes
// both turns, stays ordered with every commit and every registration.
func (s *Store) writeRegistry(ctx context.Context, fn func(t *tx) error) error {
	return s.commit(ctx, fn, s.registry)
}

// commit runs fn on a new indexed batch while holding the turns given (in
// that order), applies the batch before giving them back and waits for its
// WAL sync after.
func (s *Store) commit(ctx context.Context, fn func(t *tx) error, turns ...chan struct{}) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: update: %w", err)
	}
	s.group.start()
	held := 0
	var t *tx
	release := func() {
		if t != nil && t.registryHeld {
			<-s.registry // taken by the transaction (PutInlineBlob)
			t.registryHeld = false
		}
		for i := held - 1; i >= 0; i-- {
			<-turns[i]
		}
		held = 0
	}
	for _, turn := range turns {
		select {
		case turn <- struct{}{}:
			held++
		case <-ctx.Done():
			release()
			s.group.stop(false)
			return fmt.Errorf("index: update: %w", ctx.Err())
		}
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	t = newTx(b, s.clock())
	if len(turns) == 1 && turns[0] == s.writer {
		t.registry, t.ctx = s.registry, ctx
	}
	t.ents = &entityReads{cache: s.ents, read: slices.Contains(turns, s.writer)}
	err := fn(t)
	if err == nil {
		err = t.finish()
	}
	var lastChange uint64
	if err == nil {
		lastChange, err = s.stageChanges(t)
	}
	if err != nil {
		release()
		s.group.stop(false)
		return err
	}
	if b.Empty() {
		// Nothing to write, but fn may have read (and answered from) a
		// commit whose sync is under way: wait for it.
		release()
		return s.durable(s.group.stop(false))
	}
	// Applied without a sync, the batch is in the WAL and visible to the
	// next writer; the sync that covers it comes after the turn.
	err = s.db.Apply(b, pebble.NoSync)
	if err == nil {
		t.ents.applied()
	}
	seq := s.group.stop(err == nil)
	release()
	if err != nil {
		return fmt.Errorf("index: commit: %w", dbErr(err))
	}
	if t.volatile && len(t.changes) == 0 {
		return nil // applied (visible); a later sync makes it durable
	}
	return s.changesDurable(lastChange, len(t.changes), s.durable(seq))
}

// SyncCounts returns the WAL syncs that made commits durable and the
// commits they covered: their ratio is how many commits share a sync.
func (s *Store) SyncCounts() (syncs, commits uint64) { return s.group.counts() }

// durable waits until the batches numbered up to seq are in the synced WAL.
func (s *Store) durable(seq uint64) error {
	if s.noSync {
		return nil
	}
	err := s.group.wait(seq, func() error {
		// A record with Sync syncs the WAL up to it: every batch applied
		// before it.
		return s.db.LogData(nil, pebble.Sync)
	})
	if err != nil {
		return fmt.Errorf("index: commit: sync the WAL: %w", dbErr(err))
	}
	return nil
}

// read runs fn on a snapshot so that a read of several keys is consistent.
func (s *Store) read(ctx context.Context, what string, fn func(v *view) error) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: %s: %w", what, err)
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return fn(&view{r: snap, now: s.clock})
}

// TryLockGC takes the store's one-sweep-at-a-time lock, or returns
// ErrConflict while a sweep holds it. The embedded engine has one process
// per data directory, so a lock in the process is the whole protocol.
func (s *Store) TryLockGC(ctx context.Context) (func(), error) {
	if err := s.gate.enter(); err != nil {
		return nil, err
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("index: lock gc: %w", err)
	}
	if !s.gcLock.TryLock() {
		return nil, &index.ConflictError{Reason: "a sweep is running"}
	}
	var once sync.Once
	return func() { once.Do(s.gcLock.Unlock) }, nil
}

// dbErr translates Pebble's errors into the index's sentinels: the one place
// that knows them. Not-found is handled where it is expected (getValue).
func dbErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pebble.ErrClosed):
		return fmt.Errorf("%w: %v", index.ErrClosed, err)
	case errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("%w: %v", index.ErrNotFound, err)
	}
	return fmt.Errorf("index: pebble: %w", err)
}

// gate counts the calls under way so that Close waits for them, and refuses
// calls after Close without blocking (a stream's callback may call the
// store while Close waits).
type gate struct {
	mu      sync.Mutex
	n       int
	closed  bool
	drained chan struct{}
}

func (g *gate) init() { g.drained = make(chan struct{}) }

func (g *gate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return index.ErrClosed
	}
	g.n++
	return nil
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.drained)
	}
}

// close marks the gate closed and waits for the calls under way; it reports
// false when the gate was already closed.
func (g *gate) close() bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.closed = true
	if g.n == 0 {
		close(g.drained)
	}
	g.mu.Unlock()
	<-g.drained
	return true
}

// quietLogger drops Pebble's informational messages (flushes, compactions)
// and passes on its errors, at most one a second: on a full disk Pebble
// retries a failing flush thousands of times a second, and each retry
// would otherwise be a line of the log.
type quietLogger struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (*quietLogger) Infof(string, ...any) {}

func (l *quietLogger) Errorf(format string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if n > 0 {
		log.Printf("pebbleindex: (%d more errors in the last second)", n)
	}
	log.Printf("pebbleindex: "+format, args...)
}

func (*quietLogger) Fatalf(format string, args ...any) {
	log.Fatalf("pebbleindex: "+format, args...)
}
