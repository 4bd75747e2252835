package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// ErrIncomplete is wrapped by the error of an import or an export that
// finished but left some files out (see the summary's Errors).
var ErrIncomplete = errors.New("importer: incomplete")

// ErrChanged: a file changed while it was being imported (its bytes no
// longer hash to what was hashed first). Import it again.
var ErrChanged = errors.New("importer: file changed during import")

// Defaults of ImportOptions.
const (
	DefaultBatchDelay = 50 * time.Millisecond
	hashBufferSize    = 1 << 20
)

// ImportOptions configure an import. Exactly one of Collection and
// NewCollection must be set.
type ImportOptions struct {
	// Collection is the uuid of an existing collection to import into.
	Collection uuid.UUID
	// NewCollection names the collection to import into: the collection
	// with NewCollection.Name when exactly one exists (so that a rerun of
	// an interrupted import continues it), else a new one with these
	// fields. More than one collection of that name is an error.
	NewCollection *client.NewCollection
	// Jobs is how many files are hashed, and how many blobs uploaded, at
	// once (0: the number of CPUs). Each file is hashed by one worker.
	Jobs int
	// GarbageCollect is the garbage_collect flag of entities created.
	GarbageCollect bool
	// Layout forces a layout; "" detects it (LayoutOLX when course.xml or
	// library.xml is at the root).
	Layout Layout
	// Progress receives progress and warnings (nil: none): a bar when
	// IsTerminal, else a line every LogInterval (0: DefaultLogInterval).
	Progress    io.Writer
	IsTerminal  bool
	LogInterval time.Duration
	// MissingBatch is the most hashes asked in one /blobs/missing request
	// (0 or more than client.MaxMissingBatch: client.MaxMissingBatch).
	MissingBatch int
	// BatchDelay is how long hashed files wait for others to fill a
	// /blobs/missing batch (0: DefaultBatchDelay).
	BatchDelay time.Duration
}

// node is one file on its way to an entity.
type node struct {
	f *file
	// Set by the hashing worker before the node is handed on.
	hash   cas.Hash
	size   int64
	isUnit bool
	deps   []string // names of the files it references (links, for a unit)
	blob   *blobState

	// Under sched.mu.
	hashed, stored, queued, done bool
	pending                      int
	dependents                   []*node
	err                          error
	id                           uuid.UUID
	kind                         client.Kind
}

// blobState is one distinct hash of the run: asked once, uploaded once,
// however many files hold it.
type blobState struct {
	hash cas.Hash
	size int64
	src  *node // the file to upload from
	// viaUnit: the server lacked it and the unit's create carries it.
	viaUnit bool
	counted atomic.Bool

	mu       sync.Mutex
	resolved bool
	err      error
	waiters  []*node
}

type importer struct {
	c    *client.Client
	opt  ImportOptions
	tree *tree
	col  uuid.UUID
	cnt  *counters
	prog *progress

	nodes  []*node
	byName map[string]*node
	// Entities of the collection before the run, by name.
	units  map[string]client.Unit
	assets map[string]client.Asset

	// runCtx is the context of the run's goroutines (errgroup): it ends
	// with the first error that stops the whole run, its cause.
	runCtx context.Context

	sched sched

	repMu    sync.Mutex
	errs     []string
	warnings []string
	links    atomic.Int64
}

// Import imports the files under dir into a collection of the server c
// talks to, as the package documentation describes, and returns what it
// did. The error is nil when every file was imported; it wraps
// ErrIncomplete when some were not (the summary says which) and is the
// cause when the import stopped (the server failed, ctx ended): a rerun
// finishes the job without uploading again what is stored.
func Import(ctx context.Context, c *client.Client, dir string, opt ImportOptions) (Summary, error) {
	start := time.Now()
	var sum Summary
	if (opt.Collection == uuid.Nil) == (opt.NewCollection == nil) {
		return sum, fmt.Errorf("%w: give either a collection uuid or a new collection", client.ErrInvalid)
	}
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.NumCPU()
	}
	if opt.MissingBatch <= 0 || opt.MissingBatch > client.MaxMissingBatch {
		opt.MissingBatch = client.MaxMissingBatch
	}
	if opt.BatchDelay <= 0 {
		opt.BatchDelay = DefaultBatchDelay
	}
	t, err := walkTree(dir)
	if err != nil {
		return sum, err
	}
	switch opt.Layout {
	case "":
	case LayoutPlain:
		for _, f := range t.files {
			f.unit, f.scan = false, false
		}
		t.layout = LayoutPlain
	case LayoutOLX:
		if t.layout != LayoutOLX {
			return sum, fmt.Errorf("%w: %s has no course.xml or library.xml at its root", ErrBadInput, dir)
		}
	default:
		return sum, fmt.Errorf("%w: unknown layout %q", client.ErrInvalid, opt.Layout)
	}
	im := &importer{c: c, opt: opt, tree: t, cnt: &counters{}, byName: map[string]*node{},
		units: map[string]client.Unit{}, assets: map[string]client.Asset{}}
	im.sched.init(im)
	sum.Layout = t.layout
	sum.Skipped = capped(t.skipped)
	for _, e := range t.errs {
		im.report(e.Error())
		im.cnt.failed.Add(1)
	}
	if sum.Collection, sum.CollectionCreated, err = im.collection(ctx); err != nil {
		return sum, err
	}
	im.col = sum.Collection
	if !sum.CollectionCreated {
		if err := im.loadExisting(ctx); err != nil {
			return sum, err
		}
	}
	files, size := t.totals()
	im.cnt.filesTotal.Store(files)
	im.cnt.bytesTotal.Store(size)
	im.prog = newProgress(opt.Progress, opt.IsTerminal, opt.LogInterval, "import", im.cnt)
	for _, s := range t.skipped {
		im.prog.logf("import: skipped %s", s)
	}

	runErr := im.run(ctx)
	im.prog.finish()

	for _, n := range im.nodes {
		if n.isUnit {
			sum.Units++
		} else {
			sum.Assets++
		}
		if !n.done && runErr == nil {
			// Nothing stopped the run, yet the node never became ready: it
			// waits on itself through its references.
			im.failed(n, fmt.Errorf("%w: %s: its references form a cycle", ErrBadInput, n.f.name))
		}
	}
	sum.Files = files
	sum.Bytes = size
	sum.Links = im.links.Load()
	sum.BlobsUploaded = im.cnt.blobsUploaded.Load()
	sum.BytesUploaded = im.cnt.bytesUploaded.Load()
	sum.countDedup(im.nodes)
	sum.EntitiesCreated = im.cnt.created.Load()
	sum.VersionsAdded = im.cnt.versions.Load()
	sum.Unchanged = im.cnt.same.Load()
	sum.Failed = im.cnt.failed.Load()
	im.repMu.Lock()
	sum.Errors, sum.Warnings = im.errs, im.warnings
	im.repMu.Unlock()
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.BytesPerSecond = float64(size) / sum.Seconds
	}
	if runErr != nil {
		return sum, fmt.Errorf("importer: import %s stopped (run it again to finish): %w", dir, runErr)
	}
	if sum.Failed > 0 {
		return sum, fmt.Errorf("%w: %d of %d files were not imported (first: %s)", ErrIncomplete, sum.Failed, files+int64(len(t.errs)), firstOr(sum.Errors))
	}
	return sum, nil
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return "?"
	}
	return s[0]
}

func capped(s []string) []string {
	if len(s) > maxReported {
		return append(s[:maxReported:maxReported], fmt.Sprintf("… and %d more", len(s)-maxReported))
	}
	return s
}

// collection finds or creates the collection to import into.
func (im *importer) collection(ctx context.Context) (uuid.UUID, bool, error) {
	if im.opt.Collection != uuid.Nil {
		if _, err := im.c.Collection(ctx, im.opt.Collection, client.Latest); err != nil {
			return uuid.Nil, false, fmt.Errorf("importer: collection %s: %w", im.opt.Collection, err)
		}
		return im.opt.Collection, false, nil
	}
	var found []uuid.UUID
	for col, err := range im.c.AllCollections(ctx, client.ListOptions{Limit: 1000}) {
		if err != nil {
			return uuid.Nil, false, fmt.Errorf("importer: list collections: %w", err)
		}
		if col.Name == im.opt.NewCollection.Name {
			found = append(found, col.UUID)
		}
	}
	switch len(found) {
	case 0:
		col, err := im.c.CreateCollection(ctx, *im.opt.NewCollection)
		if err != nil {
			return uuid.Nil, false, fmt.Errorf("importer: create collection %q: %w", im.opt.NewCollection.Name, err)
		}
		return col.UUID, true, nil
	case 1:
		return found[0], false, nil
	}
	return uuid.Nil, false, fmt.Errorf("%w: %d collections are named %q (%v): give the uuid of one", client.ErrConflict, len(found), im.opt.NewCollection.Name, found)
}

// loadExisting lists the units and assets already in the collection.
func (im *importer) loadExisting(ctx context.Context) error {
	for u, err := range im.c.AllUnits(ctx, im.col, client.ListOptions{Limit: 1000}) {
		if err != nil {
			return fmt.Errorf("importer: list units of %s: %w", im.col, err)
		}
		if u.Name != "" {
			im.units[u.Name] = u
		}
	}
	for a, err := range im.c.AllAssets(ctx, im.col, client.ListOptions{Limit: 1000}) {
		if err != nil {
			return fmt.Errorf("importer: list assets of %s: %w", im.col, err)
		}
		if a.Name != "" {
			im.assets[a.Name] = a
		}
	}
	return nil
}

// stopped returns why the run is stopping (the first fatal error, or the
// caller's cancellation); nil while it runs.
func (im *importer) stopped() error {
	if im.runCtx.Err() == nil {
		return nil
	}
	return context.Cause(im.runCtx)
}

// isFatal reports whether err stops the whole run rather than one file:
// the server cannot be reached or fails, refuses the token, or the run's
// context ended. A 4xx about one entity, or a file that cannot be read, is
// that file's failure.
func isFatal(err error) bool {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == 401 || e.Status == 403
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || client.IsTemporary(err)
}

func (im *importer) report(msg string) {
	im.repMu.Lock()
	if len(im.errs) < maxReported {
		im.errs = append(im.errs, msg)
	}
	im.repMu.Unlock()
	im.prog.logf("import: %s", msg)
}

func (im *importer) warn(msg string) {
	im.repMu.Lock()
	if len(im.warnings) < maxReported {
		im.warnings = append(im.warnings, msg)
	}
	im.repMu.Unlock()
	im.prog.logf("import: warning: %s", msg)
}

// failed marks n (and what depends on it) as not imported because of err.
// When the run stops, files are not reported one by one: the cause is the
// import's error.
func (im *importer) failed(n *node, err error) {
	stopping := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		(im.stopped() != nil && isFatal(err))
	im.sched.fail(n, err, !stopping)
}

// run drives the pipeline: hash → ask missing → upload → commit. A stage
// that meets an error that stops the whole run (isFatal) returns it: the
// group's context ends, every other stage stops, and run returns that error
// (or the caller's cancellation). Files still under way are then left
// neither imported nor reported; a rerun finishes them.
func (im *importer) run(ctx context.Context) error {
	for _, f := range im.tree.ordered() {
		n := &node{f: f, isUnit: f.unit}
		im.nodes = append(im.nodes, n)
		im.byName[f.name] = n
	}
	g, gctx := errgroup.WithContext(ctx)
	im.runCtx = gctx
	jobs := im.opt.Jobs
	toHash := make(chan *node)
	hashed := make(chan *node, 4*jobs)
	uploads := make(chan *blobState, 4*jobs)

	// hashers ends when every hasher has; upstream when the batcher and
	// every uploader have: then no node becomes hashed or stored any more.
	var hashers, upstream sync.WaitGroup
	g.Go(func() error {
		defer close(toHash)
		for _, n := range im.nodes {
			select {
			case toHash <- n:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range jobs {
		hashers.Add(1)
		g.Go(func() error {
			defer hashers.Done()
			buf := make([]byte, hashBufferSize)
			for n := range toHash {
				if err := im.hash(gctx, n, buf); err != nil {
					if isFatal(err) {
						return err
					}
					im.failed(n, err)
					continue
				}
				select {
				case hashed <- n:
				case <-gctx.Done():
					im.failed(n, gctx.Err())
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		hashers.Wait()
		close(hashed)
		return nil
	})
	upstream.Add(1 + jobs)
	g.Go(func() error {
		defer upstream.Done()
		defer close(uploads)
		return im.batch(gctx, hashed, uploads)
	})
	for range jobs {
		g.Go(func() error {
			defer upstream.Done()
			for bs := range uploads {
				if err := im.upload(gctx, bs); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		upstream.Wait()
		im.sched.upstreamDone()
		return nil
	})
	for range max(4, 2*jobs) {
		g.Go(func() error {
			for {
				n := im.sched.pop()
				if n == nil {
					return nil
				}
				if err := im.commit(gctx, n); err != nil {
					return err
				}
			}
		})
	}
	err := g.Wait()
	if cause := context.Cause(ctx); cause != nil {
		// The caller's cancellation stops the run like a failing server
		// does, and is its reason.
		err = cause
	}
	return err
}
