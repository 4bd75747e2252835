// Package app opens the stores a configuration names and wires the services
// over them: the one place that knows every backend package. The serve, gc,
// verify and migrate commands and the end-to-end tests use it, so that a
// test runs exactly what an operator runs.
//
// Two deployments, chosen by Config:
//   - embedded (the default): a Pebble index and a blob directory under
//     DataDir, guarded by a lock on DataDir (one process at a time);
//   - production: the index in PostgreSQL (DatabaseURL) and blobs in an S3
//     bucket (S3.Endpoint); the process then keeps no state of its own and
//     any number of replicas may run over the same database and bucket.
//
// PostgreSQL with a blob directory is a single-host setup and allowed;
// Pebble with S3 only with Config.AllowEmbeddedIndexWithS3. DataDir is
// locked whenever something lives under it. Whatever the pair, Open checks
// that its index and blob store belong to each other (identity.go).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/httpapi/console"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/backup"
	"github.com/blockstore/blockstore/internal/datadir"
	"github.com/blockstore/blockstore/refs"
)

// Config says where the index and the blobs live and how the service runs.
type Config struct {
	// DataDir holds the embedded index (DataDir/index) and blob directory
	// (DataDir/blobs) when those are in use.
	DataDir string
	// DatabaseURL, when set, puts the index in PostgreSQL.
	DatabaseURL string
	// S3, when S3.Endpoint is set, puts the blobs in a bucket.
	S3 s3store.Config
	// AllowEmbeddedIndexWithS3 accepts a Pebble index (no DatabaseURL) over
	// a bucket. Without it Open refuses: that configuration is nearly always
	// a forgotten database URL, and its sweeps would treat every blob of the
	// real deployment as garbage (the store identity check refuses that too,
	// but this says what is wrong).
	AllowEmbeddedIndexWithS3 bool

	// MaxUploadBytes bounds blob and asset bodies (0: unlimited).
	MaxUploadBytes int64
	// CacheBytes bounds the in-memory cache of small blobs (0: the default).
	CacheBytes int64
	// InlineMaxBytes is the largest OLX kept in the index instead of the
	// blob store (0: refs.DefaultInlineMaxBytes, 64 KiB; negative: none).
	InlineMaxBytes int64
	// NoLatestCache turns off, on PostgreSQL, the cache of the latest
	// version of units read by uuid (refs.Options.FollowLatest), so that
	// every OLX read asks the database.
	NoLatestCache bool
	// GCRetention and GCGrace are the sweep defaults (0: 720h and 24h).
	GCRetention, GCGrace time.Duration
	// GCMaxDeleteShare is the share of the stored blobs or bytes above which
	// a sweep refuses to delete unless forced (0: gc.DefaultMaxDeleteShare).
	GCMaxDeleteShare float64
	// ChangeRetention is how long sweeps keep the change feed's history
	// (0: index.DefaultChangeRetention, 7 days).
	ChangeRetention time.Duration

	// Tokens, when set, are required on every route but /healthz, /readyz
	// and /metrics.
	Tokens Tokens

	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the metrics; nil keeps them in a private registry.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil serves the private registry.
	Gatherer prometheus.Gatherer
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Embedded reports whether anything lives under DataDir.
func (c Config) Embedded() bool { return c.DatabaseURL == "" || c.S3.Endpoint == "" }

// Describe names the deployment without secrets, for a log line.
func (c Config) Describe() string {
	idx := "pebble:" + filepath.Join(c.DataDir, "index")
	if c.DatabaseURL != "" {
		idx = "postgres:" + pgindex.RedactURL(c.DatabaseURL)
	}
	blobs := "dir:" + filepath.Join(c.DataDir, "blobs")
	if c.S3.Endpoint != "" {
		blobs = "s3:" + c.S3.Endpoint + "/" + c.S3.Bucket + "/" + c.S3.Prefix
	}
	return "index " + idx + ", blobs " + blobs
}

// ErrEmbeddedIndexWithS3: the configuration puts the blobs in a bucket and
// the index in a local Pebble directory, which is almost always a forgotten
// --database-url, without Config.AllowEmbeddedIndexWithS3.
var ErrEmbeddedIndexWithS3 = errors.New("app: embedded index over S3")

// validate refuses the configurations that are mistakes more often than not.
func (c Config) validate() error {
	if c.DatabaseURL == "" && c.S3.Endpoint != "" && !c.AllowEmbeddedIndexWithS3 {
		return fmt.Errorf("%w: the blobs are in s3:%s/%s/%s but no database URL is set, so the index would be the embedded one in %s. "+
			"You probably forgot --database-url (BLOCKSTORE_DATABASE_URL). "+
			"If an embedded index over a bucket is what you want, pass --allow-embedded-index-with-s3 (BLOCKSTORE_ALLOW_EMBEDDED_INDEX_WITH_S3=true)",
			ErrEmbeddedIndexWithS3, c.S3.Endpoint, c.S3.Bucket, c.S3.Prefix, filepath.Join(c.DataDir, "index"))
	}
	if c.Embedded() && c.DataDir == "" {
		return errors.New("app: no data directory")
	}
	return nil
}

// acquire validates c and takes the data directory's lock when something of
// the deployment lives there (nil lock otherwise).
func (c Config) acquire() (*datadir.Lock, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if !c.Embedded() {
		return nil, nil
	}
	return datadir.Acquire(c.DataDir)
}

// indexFresh reports, creating nothing, whether cfg's index does not exist
// yet.
func indexFresh(ctx context.Context, cfg Config) (bool, error) {
	var fresh bool
	var err error
	if cfg.DatabaseURL != "" {
		fresh, err = pgindex.Fresh(ctx, cfg.DatabaseURL)
	} else {
		fresh, err = pebbleindex.Fresh(filepath.Join(cfg.DataDir, "index"))
	}
	if err != nil {
		return false, fmt.Errorf("app: open index: %w", err)
	}
	return fresh, nil
}

// openIndex opens (creating or migrating) cfg's index engine.
func openIndex(ctx context.Context, cfg Config) (index.Store, error) {
	iopt := index.Options{Now: cfg.Now}
	// Return the concrete stores only on success: a nil *pgindex.Store in
	// the interface would not be a nil interface, and Close would call it.
	if cfg.DatabaseURL != "" {
		pg, err := pgindex.Open(ctx, cfg.DatabaseURL, iopt)
		if err != nil {
			return nil, fmt.Errorf("app: open index: %w", err)
		}
		return pg, nil
	}
	pb, err := pebbleindex.Open(filepath.Join(cfg.DataDir, "index"), pebbleindex.Options{Options: iopt})
	if err != nil {
		return nil, fmt.Errorf("app: open index: %w", err)
	}
	return pb, nil
}

// openBlobBackend opens cfg's blob store backend.
func openBlobBackend(ctx context.Context, cfg Config) (cas.Backend, error) {
	if cfg.S3.Endpoint != "" {
		s3, err := s3store.Open(ctx, cfg.S3)
		if err != nil {
			return nil, fmt.Errorf("app: open blob store: %w", err)
		}
		return s3, nil
	}
	blobDir := filepath.Join(cfg.DataDir, "blobs")
	dir, err := dirstore.Open(blobDir, dirstore.Options{KeepFree: keepFreeForIndex(cfg, blobDir)})
	if err != nil {
		return nil, fmt.Errorf("app: open blob store: %w", err)
	}
	return dir, nil
}

// App is an opened deployment.
type App struct {
	Config  Config
	Index   index.Store
	Blobs   *cas.Store
	Refs    *refs.Service
	GC      *gc.Collector
	Backup  *backup.Service
	Metrics *Metrics
	Logger  *slog.Logger

	lock    *datadir.Lock
	changes *changeService // nil when the index keeps no change feed
}

// Open opens the stores of cfg and the services over them. The caller must
// Close the App. With an embedded half, Open fails with an error wrapping
// datadir.ErrLocked while another process holds DataDir. A Pebble index over
// S3 without AllowEmbeddedIndexWithS3 is an error wrapping
// ErrEmbeddedIndexWithS3. Before it creates or migrates the index, Open
// checks that the index and the blob store belong to each other (identity.go)
// and fails with an error wrapping ErrStoreIdentity when they may not.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	a := &App{Config: cfg, Logger: cfg.Logger}
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.lock, err = cfg.acquire(); err != nil {
		return nil, err
	}
	reg := cfg.Registerer
	gather := cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gather = r, r
	}
	if a.Metrics, err = NewMetrics(reg, gather); err != nil {
		return nil, err
	}

	// The blob store first: the store identity check reads it before the
	// index is created or migrated.
	backend, err := openBlobBackend(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Blobs = cas.New(backend, cas.Options{Observer: a.Metrics.casObserver()})

	fresh, err := indexFresh(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if fresh {
		b, err := newBinding(cfg, nil, a.Blobs)
		if err != nil {
			return nil, err
		}
		if err := b.checkFresh(ctx); err != nil {
			return nil, err
		}
	}
	idx, err := openIndex(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Index = a.Metrics.wrapIndex(idx)
	if err := registerSyncs(reg, idx); err != nil {
		return nil, err
	}
	if a.changes, err = newChangeService(reg, idx, cfg.Now); err != nil {
		return nil, err
	}
	b, err := newBinding(cfg, idx, a.Blobs)
	if err != nil {
		return nil, err
	}
	if id, err := b.check(ctx); err != nil {
		return nil, err
	} else if id != "" {
		a.Logger.Info("bound the index and the blob store to each other", "store_id", id, "stores", cfg.Describe())
	}

	if cfg.S3.Endpoint == "" {
		// We hold the data directory: partial files are leftovers of a
		// process that died, never of a live writer.
		if n, _, err := a.Blobs.CleanTemp(ctx, 0); err != nil {
			return nil, fmt.Errorf("app: clean temporary files: %w", err)
		} else if n > 0 {
			a.Logger.Info("removed leftover temporary files", "count", n)
		}
	}

	a.Refs = refs.New(a.Index, a.Blobs, refs.Options{
		CacheBytes: cfg.CacheBytes, InlineMaxBytes: cfg.InlineMaxBytes, Now: cfg.Now, Logger: a.Logger,
		LatestFeed: latestFeed(cfg, idx),
		// A bucket's open is a round trip: it overlaps the index's.
		OpenBeside: cfg.S3.Endpoint != "",
	})
	gm, err := gc.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	a.GC = gc.New(a.Index, a.Blobs, gc.Options{
		Retention: cfg.GCRetention, Grace: cfg.GCGrace, Now: cfg.Now, Logger: a.Logger, Metrics: gm,
		DeleteBound: cfg.gcDeleteBound(), MaxDeleteShare: cfg.GCMaxDeleteShare,
		ChangeRetention: cfg.ChangeRetention,
	})
	a.Backup = a.backupService()
	return a, nil
}

// latestFeed is the change feed the latest-version cache follows: on
// PostgreSQL, unless turned off. (Reads of the embedded index cost no
// round trip: a cache would save nothing.)
func latestFeed(cfg Config, idx index.Store) index.ChangeFeed {
	feed, ok := idx.(index.ChangeFeed)
	if !ok || cfg.DatabaseURL == "" || cfg.NoLatestCache {
		return nil
	}
	return feed
}

// dirDeleteBound is the longest a batch of unlinks in the blob directory
// may take before the sweep gives up on it.
const dirDeleteBound = 10 * time.Second

// gcDeleteBound is the longest one blob-store delete call of a sweep may
// take (gc.Options.DeleteBound): the bucket's request timeout, within which
// the S3 store finishes or abandons every delete, or a fixed bound for the
// directory.
func (c Config) gcDeleteBound() time.Duration {
	if c.S3.Endpoint == "" {
		return dirDeleteBound
	}
	if c.S3.Timeout > 0 {
		return c.S3.Timeout
	}
	return 30 * time.Second
}

// Handler returns the HTTP API with /metrics, the OpenAPI document and
// request logging.
func (a *App) Handler() http.Handler {
	return requireTokens(a.apiHandler(), a.Config.Tokens)
}

func (a *App) apiHandler() http.Handler {
	return httpapi.New(a.Refs, httpapi.Options{
		MaxUploadBytes: a.Config.MaxUploadBytes,
		Logger:         a.Logger,
		GC:             a.GC,
		Changes:        a.changesOption(),
		Backup:         a.Backup,
		Stats:          a.stats(),
		Extra:          a.extraRoutes(),
		Wrap:           a.Metrics.wrapRoute(a.Logger),
	})
}

// extraRoutes are the routes served beside the API's own: operations and
// the operators' console.
func (a *App) extraRoutes() []httpapi.Route {
	return append([]httpapi.Route{
		{Method: http.MethodGet, Pattern: "/metrics", Handler: a.Metrics.Handler()},
		{Method: http.MethodGet, Pattern: "/api/v1/openapi.json", Handler: http.HandlerFunc(serveOpenAPI)},
	}, console.Routes()...)
}

// Endpoints lists every method and path pattern the handler serves (HEAD
// beside every GET), the API's and the extra routes.
func (a *App) Endpoints() []httpapi.Endpoint {
	out := httpapi.Endpoints()
	for _, rt := range a.extraRoutes() {
		out = append(out, httpapi.Endpoint{Method: rt.Method, Pattern: rt.Pattern})
		if rt.Method == http.MethodGet {
			out = append(out, httpapi.Endpoint{Method: http.MethodHead, Pattern: rt.Pattern})
		}
	}
	return out
}

// Close stops background sweeps and closes the stores, then releases the
// data directory.
func (a *App) Close() error {
	var errs []error
	if a.GC != nil {
		errs = append(errs, a.GC.Close())
	}
	if a.Blobs != nil {
		errs = append(errs, a.Blobs.Close())
	}
	if a.Index != nil {
		errs = append(errs, a.Index.Close())
	}
	if a.lock != nil {
		errs = append(errs, a.lock.Release())
	}
	return errors.Join(errs...)
}

// keepFreeForIndex is what the blob directory leaves free when the Pebble
// index lives on the same filesystem: Pebble stops the process when its log
// cannot be written, so blobs must never take the index's last bytes.
func keepFreeForIndex(cfg Config, blobDir string) int64 {
	if cfg.DatabaseURL != "" {
		return 0
	}
	if os.MkdirAll(blobDir, 0o755) != nil {
		return 0
	}
	var idx, blobs unix.Stat_t
	if unix.Stat(filepath.Join(cfg.DataDir, "index"), &idx) != nil || unix.Stat(blobDir, &blobs) != nil || idx.Dev != blobs.Dev {
		return 0
	}
	var fs unix.Statfs_t
	if unix.Statfs(blobDir, &fs) != nil {
		return 0
	}
	return dirstore.DefaultKeepFree(int64(fs.Blocks) * int64(fs.Bsize))
}
