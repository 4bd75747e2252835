package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client/importer"
)

// localHash reads and hashes every file with jobs workers (each file on
// one worker, streaming): what an import cannot beat.
func localHash(ctx context.Context, files []treeFile, jobs int) (time.Duration, error) {
	start := time.Now()
	err := parallel(ctx, len(files), jobs, func(ctx context.Context, i int, buf []byte) error {
		f, err := os.Open(files[i].Path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := cas.NewHasher()
		n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
		if err != nil {
			return err
		}
		if n != files[i].Size {
			return fmt.Errorf("bench: read %d bytes of %s, want %d", n, files[i].Path, files[i].Size)
		}
		_ = h.Sum()
		return nil
	})
	return time.Since(start), err
}

// importTree runs `blockstore import` and returns its summary and how
// long the command took.
func (h *harness) importTree(ctx context.Context, srv *Server, tree string, collection string) (importer.Summary, time.Duration, error) {
	args := []string{"import", tree, "--server", srv.URL, "--jobs", strconv.Itoa(h.sz.ImportJobs), "--json"}
	if collection == "" {
		args = append(args, "--new-collection", "bench import")
	} else {
		args = append(args, "--collection", collection)
	}
	run, err := runTool(ctx, h.bin, args...)
	if err != nil {
		return importer.Summary{}, 0, err
	}
	var sum importer.Summary
	if err := json.Unmarshal(run.Stdout, &sum); err != nil {
		return sum, 0, fmt.Errorf("bench: import summary: %w", err)
	}
	if sum.Failed > 0 {
		return sum, 0, fmt.Errorf("bench: import failed %d files: %v", sum.Failed, sum.Errors)
	}
	return sum, run.Elapsed, nil
}

// importSection: `blockstore import` of a tree of new files, then the same
// tree again (which must upload nothing), beside reading and hashing it
// locally with as many workers.
func (h *harness) importSection(ctx context.Context) {
	sz := h.sz
	tree := filepath.Join(h.root, "tree")
	files, total, err := writeTree(ctx, tree, sz, seedOf("tree", 0, 0))
	defer os.RemoveAll(tree)
	if err != nil {
		h.fail("import", Embedded, 0, err)
		return
	}
	const g = "import (blockstore import)"
	shape := fmt.Sprintf("%s (%d × %s + %s × %s), %d jobs", binaryUnits(total), sz.TreeLarge, binaryUnits(sz.TreeLargeBytes),
		count(sz.TreeSmall), binaryUnits(sz.TreeSmallBytes), sz.ImportJobs)
	if total%mib != 0 || total < 10*mib {
		shape = fmt.Sprintf("%.1f MiB (%d × %s + %s × %s), %d jobs", float64(total)/mib, sz.TreeLarge, binaryUnits(sz.TreeLargeBytes),
			count(sz.TreeSmall), binaryUnits(sz.TreeSmallBytes), sz.ImportJobs)
	}
	first := "import of a new tree of " + shape
	again := "re-import of the same tree (page cache warm)"
	uploaded := "bytes uploaded by the re-import"
	h.rep.row(g, first, "MB/s")
	h.rep.row(g, again, "s")
	h.rep.row(g, uploaded, "bytes")
	limFirst, limLocal := newSeries(sz.Runs), newSeries(sz.Runs)
	for run := range sz.Runs {
		bAll := hashRate(sz.LimitBytes, runtime.NumCPU())
		w, _, _, err := diskRates(ctx, h.root, sz.LimitBytes)
		if err != nil {
			h.fail("import", Embedded, run, err)
			continue
		}
		limFirst[run] = min(bAll, w)
		// The local read+hash takes its turn among the targets.
		for _, t := range rotate([]Target{Embedded, Postgres, MinIO}, run) {
			if t == MinIO {
				d, err := localHash(ctx, files, sz.ImportJobs)
				if err != nil {
					h.fail("import", t, run, err)
					continue
				}
				limLocal[run] = d.Seconds()
				h.logf("import run %d: local read+hash of %s: %s", run+1, binaryUnits(total), d.Round(time.Millisecond))
				continue
			}
			if err := h.importRun(ctx, run, t, tree, total, first, again, uploaded); err != nil {
				h.fail("import", t, run, err)
			}
		}
	}
	h.rep.limit(g, first, "MB/s", fmt.Sprintf("min(BLAKE3 %d cores, write+fsync)", runtime.NumCPU()), limFirst)
	h.rep.limit(g, again, "s", fmt.Sprintf("local read+hash, %d workers", sz.ImportJobs), limLocal)
}

func (h *harness) importRun(ctx context.Context, run int, t Target, tree string, total int64, first, again, uploaded string) error {
	const g = "import (blockstore import)"
	d, err := h.deploy(ctx, t, "import")
	if err != nil {
		return err
	}
	defer d.Close()
	sum, took, err := h.importTree(ctx, d.srv, tree, "")
	if err != nil {
		return err
	}
	if sum.Bytes != total || sum.BytesUploaded != total {
		return fmt.Errorf("bench: first import saw %d bytes and uploaded %d, want %d", sum.Bytes, sum.BytesUploaded, total)
	}
	v := mbps(total, took)
	h.rep.set(g, first, "MB/s", t, run, v)
	h.logf("import run %d, %s: %s: %.0f MB/s", run+1, t, first, v)
	sum, took, err = h.importTree(ctx, d.srv, tree, sum.Collection.String())
	if err != nil {
		return err
	}
	if sum.Bytes != total {
		return fmt.Errorf("bench: re-import saw %d bytes, want %d", sum.Bytes, total)
	}
	h.rep.set(g, again, "s", t, run, took.Seconds())
	h.rep.set(g, uploaded, "bytes", t, run, float64(sum.BytesUploaded))
	h.logf("import run %d, %s: %s: %s, %d bytes uploaded, %d entities created", run+1, t, again, took.Round(time.Millisecond), sum.BytesUploaded, sum.EntitiesCreated)
	return nil
}
