package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/internal/testenv"
)

// gcTarget is one target's side of the sweep benchmark.
type gcTarget struct {
	t     Target
	dbURL string
	env   []string
	ready bool // its kept world is loaded
	bound bool // its index records the blob directory's store id
}

// gcSection: `blockstore gc --grace 0s` over a world of GCBlobs blobs and
// as many versions, GCGarbagePercent of the blobs garbage, written straight
// into the stores (see gcShape). Each sweep gets fresh garbage. The figure
// is the command's wall time and its peak RSS (VmHWM, read every 5 ms while it runs), on the embedded
// default and on PostgreSQL, with blobs in a directory either way (the
// sweep's cost is the index and the mark, not the object store).
func (h *harness) gcSection(ctx context.Context) {
	shape := newGCShape(h.sz.GCBlobs, h.sz.GCGarbagePercent)
	const g = "garbage collection (blockstore gc --grace 0s)"
	sweep := fmt.Sprintf("sweep of %s blobs and %s versions, %s garbage blobs", count(shape.blobs), count(shape.versions()), count(shape.garbage))
	rss := "peak RSS of the gc process"
	h.rep.row(g, sweep, "s")
	h.rep.row(g, rss, "MiB")

	dir := filepath.Join(h.root, "gc")
	if h.opt.GCDir != "" {
		var err error
		if dir, err = os.MkdirTemp(h.opt.GCDir, "blockstore-bench-gc-"); err != nil {
			h.fail("gc", Embedded, 0, err)
			return
		}
		h.rep.note("gc: the sweep's world was on %s (-gc-dir), not in the data directory's filesystem.", filesystemOf(dir))
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	start := time.Now()
	blobs, err := openGCBlobs(data)
	if err != nil {
		h.fail("gc", Embedded, 0, err)
		return
	}
	defer blobs.Close()
	if err := shape.writeKept(ctx, blobs); err != nil {
		h.fail("gc", Embedded, 0, err)
		return
	}
	kept := shape.keptHashes()
	h.logf("gc: wrote %s kept blobs in %s", count(len(kept)), time.Since(start).Round(time.Second))

	targets := []*gcTarget{{t: Embedded}, {t: Postgres}}
	for _, gt := range targets {
		if gt.t != Postgres {
			continue
		}
		url, drop, err := testenv.CreateDatabase(ctx, "bench")
		if err != nil {
			h.fail("gc", Postgres, 0, fmt.Errorf("bench: create database: %w", err))
			targets = targets[:1]
			break
		}
		defer drop()
		gt.dbURL, gt.env = url, []string{"BLOCKSTORE_DATABASE_URL=" + url}
	}
	lim := newSeries(h.sz.GCRuns)
	for round := range h.sz.GCRuns {
		if _, unlinks, err := fileRates(dir, h.sz.FileOps); err != nil {
			h.fail("gc", Embedded, round, err)
		} else {
			lim[round] = float64(shape.garbage) / unlinks
		}
		order := []*gcTarget{targets[0]}
		if len(targets) == 2 && round%2 == 1 {
			order = []*gcTarget{targets[1], targets[0]}
		} else if len(targets) == 2 {
			order = targets
		}
		for _, gt := range order {
			if err := h.gcRound(ctx, gt, round, shape, data, blobs, kept, sweep, rss); err != nil {
				h.fail("gc", gt.t, round, err)
			}
		}
	}
	h.rep.limit(g, sweep, "s", fmt.Sprintf("unlink %s files, 1 worker", count(shape.garbage)), lim)
}

func (h *harness) gcRound(ctx context.Context, gt *gcTarget, round int, shape gcShape, data string, blobs *cas.Store, kept []cas.Hash, sweep, rss string) error {
	const g = "garbage collection (blockstore gc --grace 0s)"
	writers := 1
	if gt.t == Postgres {
		writers = 4
	}
	start := time.Now()
	idx, err := openGCIndex(ctx, data, gt.dbURL)
	if err != nil {
		return err
	}
	if !gt.ready {
		if err := shape.loadKept(ctx, idx, kept, writers); err != nil {
			idx.Close()
			return err
		}
		gt.ready = true
		h.logf("gc, %s: indexed the kept world in %s", gt.t, time.Since(start).Round(time.Second))
		start = time.Now()
	}
	err = shape.loadGarbage(ctx, idx, blobs, kept, seedOf("gc-"+gt.t.String(), round, 0), writers)
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	h.logf("gc round %d, %s: wrote %s garbage blobs in %s", round+1, gt.t, count(shape.garbage), time.Since(start).Round(time.Second))

	if !gt.bound {
		// Both targets' indexes describe the one blob directory on purpose,
		// which the store identity check refuses as two deployments over one
		// blob store: bind each index to it, as an operator would after
		// restoring an index.
		if _, err := runToolEnv(ctx, h.bin, gt.env, "identity", "bind", "--force", "--data", data); err != nil {
			return err
		}
		gt.bound = true
	}
	run, err := runToolEnv(ctx, h.bin, gt.env, "gc", "--data", data, "--grace", "0s", "--json")
	if err != nil {
		return err
	}
	var rep gc.Report
	if err := json.Unmarshal(run.Stdout, &rep); err != nil {
		return fmt.Errorf("bench: gc report: %w", err)
	}
	if rep.Error != "" || rep.VersionsDeleted != int64(shape.expiringVersions()) || rep.BlobsDeleted != int64(shape.garbage) {
		return fmt.Errorf("bench: sweep deleted %d versions and %d blobs, want %d and %d (error %q)",
			rep.VersionsDeleted, rep.BlobsDeleted, shape.expiringVersions(), shape.garbage, rep.Error)
	}
	h.rep.set(g, sweep, "s", gt.t, round, run.Elapsed.Seconds())
	h.rep.set(g, rss, "MiB", gt.t, round, float64(run.PeakRSS)/mib)
	var phases []string
	for _, p := range rep.Phases {
		phases = append(phases, fmt.Sprintf("%s %.1fs", p.Name, p.Seconds))
	}
	h.logf("gc round %d, %s: sweep %s, peak RSS %d MiB, deleted %d versions and %d blobs, kept %d (%s)",
		round+1, gt.t, run.Elapsed.Round(time.Millisecond), run.PeakRSS/mib, rep.VersionsDeleted, rep.BlobsDeleted, rep.BlobsKept, strings.Join(phases, ", "))
	if round == 0 {
		h.rep.note("gc on %s, first sweep's phases: %s.", gt.t, strings.Join(phases, ", "))
	}
	return nil
}
