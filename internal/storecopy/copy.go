package storecopy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/app"
)

// Errors a caller branches on.
var (
	// ErrDestination: the destination holds something other than an
	// earlier copy of this source. Nothing was written.
	ErrDestination = errors.New("copy: the destination is not empty and not a copy of this source")
	// ErrUnsupported: an index engine lacks the copy capability.
	ErrUnsupported = errors.New("copy: the index engine cannot be copied")
)

// DefaultJobs is how many blobs are copied at once by default.
const DefaultJobs = 4

// batchSize is how many entities are read before their blobs are copied
// and they are imported: enough to keep Jobs blob copies busy.
const batchSize = 64

// Options tune a copy.
type Options struct {
	// Jobs is how many blobs are copied at once and entities imported at
	// once (0: DefaultJobs).
	Jobs int
	// Progress, when set, is called with the running totals every Interval
	// and once at the end.
	Progress func(Summary)
	// Interval is how often Progress is called (0: one second).
	Interval time.Duration
	// Logger receives what the copy does beside the totals; nil discards.
	Logger *slog.Logger
}

// Summary is what a copy did. Counts are of this run only.
type Summary struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// EntitiesTotal is the source's entity count when the copy began
	// (progress measures against it).
	EntitiesTotal   int64   `json:"entities_total"`
	EntitiesDone    int64   `json:"entities_done"`    // examined
	EntitiesCreated int64   `json:"entities_created"` // new at the destination
	EntitiesUpdated int64   `json:"entities_updated"` // existed and changed
	EntitiesDeleted int64   `json:"entities_deleted"` // gone at the source, deleted at the destination
	Versions        int64   `json:"versions"`         // versions written (drafts included)
	VersionsRemoved int64   `json:"versions_removed"` // gone at the source, removed at the destination
	Blobs           int64   `json:"blobs"`            // blobs sent
	BlobsSkipped    int64   `json:"blobs_skipped"`    // already at the destination
	BytesSent       int64   `json:"bytes_sent"`
	BytesSkipped    int64   `json:"bytes_skipped"`
	Seconds         float64 `json:"seconds"`
}

// Changed reports whether the run created, changed or deleted anything in
// the destination's index or sent a blob.
func (s Summary) Changed() bool {
	return s.EntitiesCreated+s.EntitiesUpdated+s.EntitiesDeleted+s.Versions+s.VersionsRemoved+s.Blobs > 0
}

// tally is a Summary being counted by concurrent workers.
type tally struct {
	total, done, created, updated, deleted atomic.Int64
	versions, removed                      atomic.Int64
	blobs, blobsSkipped, sent, skipped     atomic.Int64
}

func (t *tally) summary(src, dst string, start time.Time) Summary {
	return Summary{
		Source: src, Destination: dst,
		EntitiesTotal: t.total.Load(), EntitiesDone: t.done.Load(), EntitiesCreated: t.created.Load(),
		EntitiesUpdated: t.updated.Load(), EntitiesDeleted: t.deleted.Load(), Versions: t.versions.Load(),
		VersionsRemoved: t.removed.Load(), Blobs: t.blobs.Load(), BlobsSkipped: t.blobsSkipped.Load(),
		BytesSent: t.sent.Load(), BytesSkipped: t.skipped.Load(), Seconds: time.Since(start).Seconds(),
	}
}

// storeID is the store-identity capability of an index engine: the id that
// binds an index to its blob store (DESIGN.md, invariant 6). It is found
// by type assertion so that this package needs nothing more of it.
type storeID interface {
	StoreID(ctx context.Context) (string, error)
}

// SourceName names the deployment a, as the destination of a copy from it
// records its source: "store:ID" when the index records a store id, else where
// the stores live ("postgres:…" with the password hidden, an absolute data
// directory, the bucket and prefix).
func SourceName(ctx context.Context, a *app.App) (string, error) {
	if s, ok := a.Engine().(storeID); ok {
		id, err := s.StoreID(ctx)
		if err != nil {
			return "", fmt.Errorf("copy: read the source's store id: %w", err)
		}
		if id != "" {
			return "store:" + id, nil
		}
	}
	return describe(a.Config), nil
}

// describe names where a configuration's stores live, without secrets.
func describe(c app.Config) string {
	idx := "pebble:"
	if c.DatabaseURL != "" {
		idx = "postgres:" + pgindex.RedactURL(c.DatabaseURL)
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		idx += filepath.Join(abs, "index")
	}
	blobs := "dir:"
	if c.S3.Endpoint != "" {
		blobs = "s3:" + c.S3.Endpoint + "/" + c.S3.Bucket + "/" + c.S3.Prefix
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		blobs += filepath.Join(abs, "blobs")
	}
	return idx + " " + blobs
}

// copier is one run.
type copier struct {
	src, dst *app.App
	exp      index.Exporter
	imp      index.Importer
	opt      Options
	log      *slog.Logger
	t        tally

	mu   sync.Mutex
	live map[cas.Hash]bool // blobs known live at the destination this run
}

// Run copies src into dst (see the package documentation) and returns what
// it did. It is safe to run again after an error or a cancellation: the
// next run resumes.
func Run(ctx context.Context, src, dst *app.App, opt Options) (Summary, error) {
	start := time.Now()
	if opt.Jobs <= 0 {
		opt.Jobs = DefaultJobs
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	c := &copier{src: src, dst: dst, opt: opt, log: opt.Logger, live: make(map[cas.Hash]bool)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var ok bool
	if c.exp, ok = src.Engine().(index.Exporter); !ok {
		return Summary{}, fmt.Errorf("%w: the source's index (%T) cannot export", ErrUnsupported, src.Engine())
	}
	if c.imp, ok = dst.Engine().(index.Importer); !ok {
		return Summary{}, fmt.Errorf("%w: the destination's index (%T) cannot import", ErrUnsupported, dst.Engine())
	}
	srcName, err := SourceName(ctx, src)
	if err != nil {
		return Summary{}, err
	}
	dstName := describe(dst.Config)
	if err := c.claim(ctx, srcName); err != nil {
		return Summary{}, err
	}
	c.log.Info("copy started", "source", srcName, "destination", dstName)

	stopProgress := c.progress(srcName, dstName, start)
	err = c.run(ctx)
	stopProgress()
	sum := c.t.summary(srcName, dstName, start)
	if opt.Progress != nil {
		opt.Progress(sum)
	}
	return sum, err
}

// progress calls opt.Progress every interval until the returned stop.
func (c *copier) progress(srcName, dstName string, start time.Time) (stop func()) {
	if c.opt.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.opt.Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				c.opt.Progress(c.t.summary(srcName, dstName, start))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// claim accepts the destination (see "Which destinations are accepted")
// and records the source in it before anything is sent.
func (c *copier) claim(ctx context.Context, srcName string) error {
	rec, err := c.imp.CopySource(ctx)
	if err != nil {
		return fmt.Errorf("copy: read the destination's copy record: %w", err)
	}
	switch {
	case rec == srcName:
		return nil
	case rec != "":
		return fmt.Errorf("%w: it is a copy of %s, not of %s", ErrDestination, rec, srcName)
	}
	what, err := c.destinationContent(ctx)
	if err != nil {
		return err
	}
	if what != "" {
		return fmt.Errorf("%w: it holds %s and records no copy of %s; copy into an empty database and bucket (or data directory)",
			ErrDestination, what, srcName)
	}
	if err := c.imp.SetCopySource(ctx, srcName); err != nil {
		return fmt.Errorf("copy: record the source in the destination: %w", err)
	}
	return nil
}

// errFound stops a stream at its first item.
var errFound = errors.New("found")

// destinationContent says what the destination holds ("" when nothing):
// an entity, a blob registry row or a blob.
func (c *copier) destinationContent(ctx context.Context) (string, error) {
	dexp, ok := c.dst.Engine().(index.Exporter)
	if !ok {
		return "", fmt.Errorf("%w: the destination's index (%T) cannot list its entities", ErrUnsupported, c.dst.Engine())
	}
	var what string
	err := dexp.Entities(ctx, func(k index.Kind, id uuid.UUID) error {
		what = fmt.Sprintf("%s %s", k, id)
		return errFound
	})
	if err == nil {
		err = c.dst.Index.Blobs(ctx, func(b index.Blob) error {
			what = "a registered blob " + b.Hash.String()
			return errFound
		})
	}
	if err == nil {
		err = c.dst.Blobs.Walk(ctx, func(info cas.Info) error {
			what = "blob " + info.Hash.String()
			return errFound
		})
	}
	if err != nil && !errors.Is(err, errFound) {
		return "", fmt.Errorf("copy: look at the destination: %w", err)
	}
	return what, nil
}

// run copies every entity, then deletes those the source no longer has.
func (c *copier) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// What the destination holds before: what the source lacks is deleted
	// at the end.
	before := make(map[uuid.UUID]index.Kind)
	dexp := c.dst.Engine().(index.Exporter)
	if err := dexp.Entities(ctx, func(k index.Kind, id uuid.UUID) error { before[id] = k; return nil }); err != nil {
		return fmt.Errorf("copy: list the destination's entities: %w", err)
	}
	if err := c.exp.Entities(ctx, func(index.Kind, uuid.UUID) error { c.t.total.Add(1); return nil }); err != nil {
		return fmt.Errorf("copy: count the source's entities: %w", err)
	}
	seen := make(map[uuid.UUID]bool, len(before))
	var (
		batch    []index.History
		deferred []index.History // names held by an entity not yet updated
	)
	flush := func() error {
		d, err := c.batch(ctx, batch)
		deferred = append(deferred, d...)
		batch = batch[:0]
		return err
	}
	err := c.exp.Export(ctx, func(h index.History) error {
		seen[h.ID] = true
		batch = append(batch, h)
		if len(batch) < batchSize {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return c.settle(ctx, deferred, before, seen)
}

// batch copies the blobs of hs, then imports them: collections one by one
// (members need them), then the others Jobs at a time. It returns the
// histories refused for a name another entity still holds.
func (c *copier) batch(ctx context.Context, hs []index.History) ([]index.History, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	if err := c.copyBlobs(ctx, hs); err != nil {
		return nil, err
	}
	var (
		mu       sync.Mutex
		deferred []index.History
	)
	importOne := func(h index.History) error {
		err := c.importHistory(ctx, h)
		if errors.Is(err, index.ErrConflict) {
			mu.Lock()
			deferred = append(deferred, h)
			mu.Unlock()
			return nil
		}
		return err
	}
	var members []index.History
	for _, h := range hs {
		if h.Kind != index.KindCollection {
			members = append(members, h)
			continue
		}
		if err := importOne(h); err != nil {
			return nil, err
		}
	}
	err := parallel(ctx, c.opt.Jobs, len(members), func(i int) error { return importOne(members[i]) })
	return deferred, err
}

// importHistory imports h and counts what changed. A blob a destination
// sweep took between the copy and the import is copied again, once.
func (c *copier) importHistory(ctx context.Context, h index.History) error {
	r, err := c.imp.Import(ctx, h)
	if errors.Is(err, index.ErrBlobMissing) {
		c.mu.Lock()
		for _, hash := range h.Hashes() {
			delete(c.live, hash)
		}
		c.mu.Unlock()
		if err = c.copyBlobs(ctx, []index.History{h}); err == nil {
			r, err = c.imp.Import(ctx, h)
		}
	}
	if err != nil {
		if errors.Is(err, index.ErrDiverged) {
			return fmt.Errorf("%w (was the destination written to? a copy's destination must not serve until the copy is done)", err)
		}
		return err
	}
	c.count(r)
	return nil
}

// count adds what one import did to the totals.
func (c *copier) count(r index.ImportResult) {
	c.t.done.Add(1)
	switch {
	case r.Created:
		c.t.created.Add(1)
	case r.Changed():
		c.t.updated.Add(1)
	}
	c.t.versions.Add(int64(r.Written))
	c.t.removed.Add(int64(r.Removed))
}

// settle finishes a run: it imports the histories a name conflict put
// off and deletes at the destination the entities it held before this run
// that the source no longer has (rechecked at the source, which may have
// created them meanwhile). The two wait on each other — a name may be held
// by an entity the source deleted, a deletion refused while a unit not yet
// updated links it — so they go in rounds while some succeed; collections
// go last, once empty of what is gone.
func (c *copier) settle(ctx context.Context, deferred []index.History, before map[uuid.UUID]index.Kind, seen map[uuid.UUID]bool) error {
	var members, colls []uuid.UUID
	for id, k := range before {
		if seen[id] {
			continue
		}
		if _, err := c.src.Index.Kind(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, index.ErrNotFound) {
			return fmt.Errorf("copy: look for %s at the source: %w", id, err)
		}
		if k == index.KindCollection {
			colls = append(colls, id)
		} else {
			members = append(members, id)
		}
	}
	for len(deferred) > 0 || len(members) > 0 {
		var (
			againH []index.History
			againM []uuid.UUID
			last   error
		)
		for _, h := range deferred {
			err := c.importHistory(ctx, h)
			if errors.Is(err, index.ErrConflict) {
				againH, last = append(againH, h), err
				continue
			}
			if err != nil {
				return fmt.Errorf("copy: %w", err)
			}
		}
		for _, id := range members {
			err := c.dst.Index.Update(ctx, func(tx index.Tx) error { return tx.DeleteEntity(id) })
			switch {
			case err == nil:
				c.t.deleted.Add(1)
			case errors.Is(err, index.ErrNotFound):
			case errors.Is(err, index.ErrConflict):
				againM, last = append(againM, id), err
			default:
				return fmt.Errorf("copy: delete %s at the destination: %w", id, err)
			}
		}
		if len(againH) == len(deferred) && len(againM) == len(members) {
			// No single import can move: entities that swapped names at the
			// source. Together, in one transaction, they can.
			if len(againH) < 2 {
				return fmt.Errorf("copy: %d entities wait for names, and %d deletions for links, that do not move: %w",
					len(againH), len(againM), last)
			}
			rs, err := c.imp.ImportGroup(ctx, againH)
			if err != nil {
				return fmt.Errorf("copy: %d entities wait for names, and %d deletions for links, that do not move: %w",
					len(againH), len(againM), err)
			}
			for _, r := range rs {
				c.count(r)
			}
			againH = nil
		}
		deferred, members = againH, againM
	}
	for _, id := range colls {
		err := c.dst.Index.Update(ctx, func(tx index.Tx) error { return tx.DeleteCollection(id, true) })
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			return fmt.Errorf("copy: delete collection %s at the destination: %w", id, err)
		}
		if err == nil {
			c.t.deleted.Add(1)
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on at most jobs goroutines and returns the first
// error; the others stop taking work after it.
func parallel(ctx context.Context, jobs, n int, fn func(i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	failed := make(chan struct{})
	for range min(jobs, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				select {
				case <-failed:
					return
				case <-ctx.Done():
					once.Do(func() { ferr = ctx.Err(); close(failed) })
					return
				default:
				}
				if err := fn(i); err != nil {
					once.Do(func() { ferr = err; close(failed) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return ferr
}
