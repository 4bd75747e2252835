package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/blockstore/blockstore/internal/storecopy"
	"github.com/blockstore/blockstore/internal/testenv"
)

// copySection: `blockstore copy` of a deployment holding the import tree,
// embedded → PostgreSQL + MinIO (in the PG+MinIO column: the destination)
// and back into a new embedded deployment (embedded column), beside the
// local read+hash of the same bytes; then a second copy, which sends
// nothing.
func (h *harness) copySection(ctx context.Context) {
	sz := h.sz
	tree := filepath.Join(h.root, "copy-tree")
	files, total, err := writeTree(ctx, tree, sz, seedOf("copy", 0, 0))
	defer os.RemoveAll(tree)
	if err != nil {
		h.fail("copy", Embedded, 0, err)
		return
	}
	const g = "copy (blockstore copy)"
	first := fmt.Sprintf("copy of a deployment holding %s in %d files, %d jobs (into the column's stores)",
		binaryUnits(total), len(files), sz.ImportJobs)
	again := "second copy, nothing changed"
	h.rep.row(g, first, "MB/s")
	h.rep.row(g, again, "s")
	lim := newSeries(sz.Runs)
	for run := range sz.Runs {
		d, err := localHash(ctx, files, sz.ImportJobs)
		if err != nil {
			h.fail("copy", MinIO, run, err)
			continue
		}
		lim[run] = mbps(total, d)
		if err := h.copyRun(ctx, run, tree, total, first, again); err != nil {
			h.fail("copy", Postgres, run, err)
		}
	}
	h.rep.limit(g, first, "MB/s", fmt.Sprintf("local read+hash, %d workers", sz.ImportJobs), lim)
}

// copyRun fills an embedded deployment with the tree, stops it, copies it
// to a new PostgreSQL + MinIO deployment and that one to a new data
// directory.
func (h *harness) copyRun(ctx context.Context, run int, tree string, total int64, first, again string) error {
	const g = "copy (blockstore copy)"
	d, err := h.deploy(ctx, Embedded, "copy")
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := h.importTree(ctx, d.srv, tree, ""); err != nil {
		return err
	}
	// An embedded deployment is copied while stopped.
	if err := d.srv.Stop(); err != nil {
		return err
	}
	d.srv = nil
	dbURL, drop, err := testenv.CreateDatabase(ctx, "bench")
	if err != nil {
		return fmt.Errorf("bench: create database: %w", err)
	}
	defer drop()
	bucket := "bench-copy-" + randomHex(4)
	defer h.minio.removeBucket(context.Background(), bucket)
	// Secrets go in the environment, never on a command line.
	env := []string{"BLOCKSTORE_DATABASE_URL=" + dbURL, "BLOCKSTORE_S3_ACCESS_KEY=" + h.minio.AccessKey,
		"BLOCKSTORE_S3_SECRET_KEY=" + h.minio.SecretKey}
	jobs := strconv.Itoa(h.sz.ImportJobs)
	toProd := []string{"copy", "--from-data", filepath.Join(d.dir, "data"), "--jobs", jobs, "--json",
		"--s3-endpoint", h.minio.Endpoint, "--s3-bucket", bucket, "--s3-insecure"}
	copyOnce := func(t Target, args []string, want int64) (time.Duration, error) {
		res, err := runToolEnv(ctx, h.bin, env, args...)
		if err != nil {
			return 0, err
		}
		var sum storecopy.Summary
		if err := json.Unmarshal(res.Stdout, &sum); err != nil {
			return 0, fmt.Errorf("bench: copy summary: %w", err)
		}
		if sum.BytesSent != want {
			return 0, fmt.Errorf("bench: copy into %s sent %d bytes, want %d", t, sum.BytesSent, want)
		}
		return res.Elapsed, nil
	}
	took, err := copyOnce(Postgres, toProd, total)
	if err != nil {
		return err
	}
	h.rep.set(g, first, "MB/s", Postgres, run, mbps(total, took))
	h.logf("copy run %d: embedded → PostgreSQL + MinIO: %.0f MB/s", run+1, mbps(total, took))
	if took, err = copyOnce(Postgres, toProd, 0); err != nil {
		return err
	}
	h.rep.set(g, again, "s", Postgres, run, took.Seconds())

	back := filepath.Join(d.dir, "back")
	toEmbedded := []string{"copy", "--from-s3-endpoint", h.minio.Endpoint, "--from-s3-bucket", bucket, "--from-s3-insecure",
		"--data", back, "--jobs", jobs, "--json"}
	// Now the PostgreSQL + MinIO deployment is the source.
	env = []string{"BLOCKSTORE_FROM_DATABASE_URL=" + dbURL, "BLOCKSTORE_FROM_S3_ACCESS_KEY=" + h.minio.AccessKey,
		"BLOCKSTORE_FROM_S3_SECRET_KEY=" + h.minio.SecretKey}
	if took, err = copyOnce(Embedded, toEmbedded, total); err != nil {
		return err
	}
	h.rep.set(g, first, "MB/s", Embedded, run, mbps(total, took))
	h.logf("copy run %d: PostgreSQL + MinIO → embedded: %.0f MB/s", run+1, mbps(total, took))
	if took, err = copyOnce(Embedded, toEmbedded, 0); err != nil {
		return err
	}
	h.rep.set(g, again, "s", Embedded, run, took.Seconds())
	return nil
}
