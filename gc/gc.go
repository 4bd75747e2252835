package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Defaults of Options (DESIGN.md, "Garbage collection").
const (
	DefaultRetention = 720 * time.Hour
	DefaultGrace     = 24 * time.Hour
	DefaultBatchSize = 1000
)

// minTempAge is the youngest temporary data CleanTemp may remove, whatever
// the grace: an upload writing right now has temporary data younger than
// this, and removing it would only make that upload fail.
const minTempAge = time.Minute

// Sentinel errors.
var (
	// ErrRunning: another sweep holds the lock (in this process or on another
	// replica). The API answers 409.
	ErrRunning = errors.New("gc: a sweep is running")
	// ErrNotFound: no report has this id. It also matches index.ErrNotFound.
	ErrNotFound = errors.New("gc: run not found")
	// ErrInvalid: the request is wrong (a negative retention or grace). The
	// API answers 400.
	ErrInvalid = errors.New("gc: invalid request")
	// ErrClosed: the collector was closed.
	ErrClosed = errors.New("gc: closed")
	// ErrMassDelete: the plan would delete more than Options.MaxDeleteShare
	// of the stored blobs or bytes, and the request did not say Force. The
	// sweep stopped before deleting any blob; its report says why.
	ErrMassDelete = errors.New("gc: the sweep would delete too much")
)

// Defaults of the delete fence and the mass-delete guard.
const (
	// DefaultDeleteBound is the longest one blob-store delete call may take
	// when Options.DeleteBound is zero: enough for a local directory.
	DefaultDeleteBound = time.Minute
	// DefaultMaxDeleteShare is the share of the stored blobs, or of their
	// bytes, above which a sweep refuses to delete without Force.
	DefaultMaxDeleteShare = 0.5
)

// Index is what a sweep needs from the index; index.Store satisfies it.
// Streams deliver hashes in ascending order (see index.Store).
type Index interface {
	ExpiredVersions(ctx context.Context, now time.Time, retention time.Duration, fn func(index.VersionKey) error) error
	DeleteVersions(ctx context.Context, now time.Time, retention time.Duration, vs []index.VersionKey) ([]index.VersionKey, error)
	OrphanedAssets(ctx context.Context, cutoff time.Time, fn func(uuid.UUID) error) error
	DeleteOrphans(ctx context.Context, cutoff time.Time, ids []uuid.UUID) ([]uuid.UUID, error)

	Blobs(ctx context.Context, fn func(index.Blob) error) error
	ReferencedHashes(ctx context.Context, fn func(cas.Hash) error) error
	ClaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, leaseCutoff time.Time) ([]index.Blob, error)
	ReclaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, olderThan time.Duration) ([]index.Blob, error)
	DeletingBlobs(ctx context.Context, fn func(index.Blob) error) error
	ForgetBlobs(ctx context.Context, sweep string, hs []cas.Hash) error

	TryLockGC(ctx context.Context) (unlock func(), err error)
	PutGCRun(ctx context.Context, run index.GCRun) error
	GCRuns(ctx context.Context, limit int, after string) ([]index.GCRun, error)
	GCRun(ctx context.Context, id string) (index.GCRun, error)
	DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int, error)
}

// Blobs is what a sweep needs from the blob store; *cas.Store satisfies it.
type Blobs interface {
	// Walk calls fn for every stored blob, in no promised order.
	Walk(ctx context.Context, fn func(cas.Info) error) error
	// DeleteMany deletes the blobs; absent ones are not an error.
	DeleteMany(ctx context.Context, hs []cas.Hash) error
	// CleanTemp removes temporary data older than olderThan.
	CleanTemp(ctx context.Context, olderThan time.Duration) (items int, bytes int64, err error)
}

// The index engines and the portable blob store are what a Collector runs on.
var (
	_ Index = index.Store(nil)
	_ Blobs = (*cas.Store)(nil)
)

// LockChecker is implemented by indexes whose sweep lock can be lost while
// it is held: PostgreSQL's lives in one database session. A sweep checks it
// before every claim and every deletion of bytes and stops when it is gone,
// because another replica may then be sweeping. Safety does not rest on the
// check (a lock may be lost right after it): the delete fence does (see
// "Fenced deletes" in the package documentation); the check only stops a
// sweep that has no business going on.
type LockChecker interface {
	CheckGCLock(ctx context.Context) error
}

// Options configure a Collector. Zero values take the defaults.
type Options struct {
	// Retention is how long a superseded version is kept (default 720h). A
	// zero means the default; a Request may ask for zero.
	Retention time.Duration
	// Grace protects leases, young stray bytes and recently unlinked assets
	// (default 24h). A zero means the default; a Request may ask for zero,
	// and a Collector configured with time.Nanosecond has no grace to speak
	// of (safety never depends on it; see the package documentation).
	Grace time.Duration
	// Now is the clock; nil is time.Now. It should be the index's clock.
	Now func() time.Time
	// Logger receives one line per sweep and per failure; nil discards.
	Logger *slog.Logger
	// Metrics, when set, counts sweeps (see NewMetrics).
	Metrics *Metrics
	// BatchSize is how many versions, assets or blobs one index call or
	// blob-store call handles (default 1000).
	BatchSize int
	// DeleteBound is the longest one DeleteMany call of the blob store may
	// take (default DefaultDeleteBound). Every delete a sweep issues runs
	// under a context that ends that long after the claim it deletes under
	// was taken, and a sweep takes over another sweep's claims only once they
	// are older than this: so no delete of a sweep that lost its lock can
	// still be in flight when its claims change hands. Set it to the blob
	// store's own request timeout (S3) or more.
	DeleteBound time.Duration
	// MaxDeleteShare is the largest share (0 to 1) of the stored blobs, or
	// of their bytes, that one sweep deletes without Request.Force (default
	// DefaultMaxDeleteShare; 1 turns the guard off). A larger plan stops the
	// sweep before it deletes any blob, with ErrMassDelete.
	MaxDeleteShare float64
	// TempDir holds the plan's temporary files (default os.TempDir()). They
	// take about 40 bytes per blob in the blob store at their largest, and are
	// removed when the sweep ends (at once on Unix, where they are unlinked
	// while open).
	TempDir string
	// ChangeRetention is how long the change feed keeps changes (default
	// index.DefaultChangeRetention); see changes.go.
	ChangeRetention time.Duration
}

// Request is one sweep's parameters; nil durations take the Collector's.
type Request struct {
	DryRun    bool
	Retention *time.Duration
	Grace     *time.Duration
	// Force lets the sweep delete more than Options.MaxDeleteShare.
	Force bool
}

// Collector runs sweeps over one index and one blob store. Its methods are
// safe for concurrent use; the index's lock lets one sweep run at a time
// across every process that shares the index.
type Collector struct {
	idx     Index
	blobs   Blobs
	opt     Options
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics
	runLen  int // records sorted in memory at once by the blob-store walk

	mu      sync.Mutex
	closed  bool
	bg      sync.WaitGroup
	running map[string]chan struct{} // sweeps of this process, closed when they end
	// beforeDelete, when set (tests), runs after the lock check and before
	// each delete of claimed bytes.
	beforeDelete func(ctx context.Context, hs []cas.Hash)
	// ticked, when set (tests), receives the outcome of each scheduled tick.
	ticked  func(Report, error)
	stopCtx context.Context
	stop    context.CancelFunc
}

// New returns a Collector. idx and blobs must stay open while it is used;
// Close stops the sweeps that Start began.
func New(idx Index, blobs Blobs, opt Options) *Collector {
	if opt.Retention == 0 {
		opt.Retention = DefaultRetention
	}
	if opt.Grace == 0 {
		opt.Grace = DefaultGrace
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = DefaultBatchSize
	}
	if opt.DeleteBound <= 0 {
		opt.DeleteBound = DefaultDeleteBound
	}
	if opt.MaxDeleteShare <= 0 {
		opt.MaxDeleteShare = DefaultMaxDeleteShare
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Collector{
		idx: idx, blobs: blobs, opt: opt, now: now, log: log, metrics: opt.Metrics,
		runLen:  1 << 17, // 6 MiB of records per sorted run
		stopCtx: ctx, stop: cancel,
	}
}

// resolve returns the retention and grace of req.
func (c *Collector) resolve(req Request) (retention, grace time.Duration, err error) {
	retention, grace = c.opt.Retention, c.opt.Grace
	if req.Retention != nil {
		retention = *req.Retention
	}
	if req.Grace != nil {
		grace = *req.Grace
	}
	if retention < 0 {
		return 0, 0, fmt.Errorf("%w: retention %s is negative", ErrInvalid, retention)
	}
	if grace < 0 {
		return 0, 0, fmt.Errorf("%w: grace %s is negative", ErrInvalid, grace)
	}
	return retention, grace, nil
}

// lock takes the one-sweep lock: ErrRunning when another sweep holds it.
func (c *Collector) lock(ctx context.Context) (func(), error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	unlock, err := c.idx.TryLockGC(ctx)
	if errors.Is(err, index.ErrConflict) {
		return nil, ErrRunning
	}
	if err != nil {
		return nil, fmt.Errorf("gc: take the sweep lock: %w", err)
	}
	return unlock, nil
}

// Sweep runs one sweep and returns its report, which is also stored (see
// Runs). A second sweep while one runs anywhere is ErrRunning. When the
// sweep fails halfway, the report says so (Status "failed") and the error
// is returned; the next sweep completes what it left. ctx's cancellation
// stops the sweep; a caller that must not stop it halfway (an HTTP request
// whose connection may drop) passes context.WithoutCancel. Close stops it
// in any case.
func (c *Collector) Sweep(ctx context.Context, req Request) (Report, error) {
	retention, grace, err := c.resolve(req)
	if err != nil {
		return Report{}, err
	}
	unlock, err := c.lock(ctx)
	if err != nil {
		return Report{}, err
	}
	defer unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Report{}, ErrClosed
	}
	c.bg.Add(1)
	c.mu.Unlock()
	defer c.bg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.stopCtx, cancel)()
	s := c.newSweep(req, retention, grace)
	defer s.close()
	if err := s.begin(ctx); err != nil {
		return s.report, err
	}
	defer c.track(s.report.ID)()
	err = s.run(ctx)
	return s.report, err
}

// track records that the sweep id runs in this process; the returned
// function, called after the sweep released its lock, says it ended.
func (c *Collector) track(id string) func() {
	done := make(chan struct{})
	c.mu.Lock()
	if c.running == nil {
		c.running = map[string]chan struct{}{}
	}
	c.running[id] = done
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.running, id)
		c.mu.Unlock()
		close(done)
	}
}

// Wait waits until the sweep id, if it runs in this process, has ended and
// released its lock (or ctx ends), and returns its stored report. A sweep
// of another process is not waited for.
func (c *Collector) Wait(ctx context.Context, id string) (Report, error) {
	c.mu.Lock()
	done := c.running[id]
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
	}
	return c.Run(ctx, id)
}

// Start begins a sweep in the background and returns its id at once, after
// its first report is stored (so Run finds it). ErrRunning when another
// sweep holds the lock. The sweep outlives ctx's cancellation (ctx only
// bounds the start); Close stops it.
func (c *Collector) Start(ctx context.Context, req Request) (string, error) {
	retention, grace, err := c.resolve(req)
	if err != nil {
		return "", err
	}
	unlock, err := c.lock(ctx)
	if err != nil {
		return "", err
	}
	s := c.newSweep(req, retention, grace)
	if err := s.begin(ctx); err != nil {
		s.close()
		unlock()
		return "", err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.fail(ctx, ErrClosed)
		s.close()
		unlock()
		return "", ErrClosed
	}
	c.bg.Add(1)
	c.mu.Unlock()
	ended := c.track(s.report.ID)
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopOnClose := context.AfterFunc(c.stopCtx, cancel)
	go func() {
		defer c.bg.Done()
		defer ended()
		defer cancel()
		defer stopOnClose()
		defer unlock()
		defer s.close()
		_ = s.run(bgCtx) // the report records the outcome
	}()
	return s.report.ID, nil
}

// Close cancels the running sweeps (those Start began and those Sweep
// runs) and waits for them to record their reports. Sweep and Start fail with ErrClosed afterwards.
func (c *Collector) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.bg.Wait()
	return nil
}

// Schedule runs a sweep every interval (with the Collector's retention and
// grace) until ctx ends. A tick while another replica sweeps is skipped
// quietly; a failed sweep is logged and the schedule goes on. An interval
// of zero or less returns at once (scheduling off).
func (c *Collector) Schedule(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := c.Sweep(ctx, Request{})
		if c.ticked != nil {
			c.ticked(rep, err)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrRunning):
			c.log.Debug("gc: scheduled sweep skipped: another sweep is running")
		case errors.Is(err, ErrClosed), ctx.Err() != nil:
			return
		default:
			c.log.Error("gc: scheduled sweep failed", "err", err)
		}
	}
}
