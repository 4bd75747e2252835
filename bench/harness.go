package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blockstore/blockstore/internal/testenv"
)

// Sections are the parts of a run, in the order Run takes them; Options.Only
// selects some.
var Sections = []string{"limits", "transfer", "peers", "units", "import", "copy", "gc", "stream", "changes"}

// Options configure Run.
type Options struct {
	// Scale sets the sizes (Default when empty).
	Scale Scale
	// Dir is where the temporary directory of the run is made (data
	// directories, MinIO's data, the import tree, the binary): os.TempDir()
	// when empty. The disk limits are measured there.
	Dir string
	// GCDir, when set, holds the sweep benchmark's world instead of Dir (to
	// tell the sweep's own cost from the filesystem's, e.g. on a tmpfs).
	GCDir string
	// Binary is a blockstore binary to run; empty builds cmd/blockstore of
	// the module that holds the working directory.
	Binary string
	// Only runs these sections (all when empty).
	Only []string
	// Log receives a line per measurement (nil: none).
	Log io.Writer
	// Command is shown in the report (how it was run).
	Command string
	// Profiles, when set, is a directory that receives a CPU profile of
	// every server the run starts (blockstore serve --cpu-profile), named
	// after the section, the deployment and the order of starting.
	Profiles string
}

// ErrMeasurement is wrapped by Run's error when some measurements failed
// (the report says which, and their cells are empty).
var ErrMeasurement = errors.New("bench: measurement failed")

// harness is one invocation of Run.
type harness struct {
	opt   Options
	sz    Sizes
	root  string
	bin   string
	minio *minioServer
	// bazel is the bazel-remote of the transfer peers' table; nil when its
	// binary is not installed (its column stays empty, and a note says so).
	bazel    *bazelRemote
	rep      *Report
	failures []error
	// blobBuf is the read buffer of single-stream downloads.
	blobBuf []byte
	// servers counts the servers started (names their profiles).
	servers int
}

// Run runs the benchmarks and returns the report. Every process, database,
// bucket and file it made is gone when it returns. A setup failure (no
// PostgreSQL, no MinIO, the build) returns a nil report; failed
// measurements leave empty cells, are listed in the report's notes, and
// make the error wrap ErrMeasurement.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Scale == "" {
		opt.Scale = Default
	}
	for _, s := range opt.Only {
		if !slices.Contains(Sections, s) {
			return nil, fmt.Errorf("bench: unknown section %q (want one of %s)", s, strings.Join(Sections, ", "))
		}
	}
	h := &harness{opt: opt, sz: opt.Scale.Sizes(), blobBuf: make([]byte, 256*kib)}
	var err error
	if h.root, err = os.MkdirTemp(opt.Dir, "blockstore-bench-"); err != nil {
		return nil, fmt.Errorf("bench: temporary directory: %w", err)
	}
	defer os.RemoveAll(h.root)
	h.rep = &Report{Scale: opt.Scale, Sizes: h.sz, Machine: describeMachine(h.root), Started: time.Now(), Command: opt.Command}

	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	defer h.minio.Stop()
	defer func() {
		if h.bazel != nil {
			h.bazel.Stop()
		}
	}()

	for _, s := range Sections {
		if len(opt.Only) > 0 && !slices.Contains(opt.Only, s) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h.logf("== %s", s)
		switch s {
		case "limits":
			h.limitsSection(ctx)
		case "transfer":
			h.transferSection(ctx)
		case "peers":
			h.peersSection(ctx)
		case "units":
			h.unitsSection(ctx)
		case "import":
			h.importSection(ctx)
		case "copy":
			h.copySection(ctx)
		case "gc":
			h.gcSection(ctx)
		case "stream":
			h.streamSection(ctx)
		case "changes":
			h.changesSection(ctx)
		}
	}
	h.rep.Duration = time.Since(h.rep.Started)
	h.targetNotes()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(h.failures) > 0 {
		return h.rep, fmt.Errorf("%w: %d of them: %w", ErrMeasurement, len(h.failures), errors.Join(h.failures...))
	}
	return h.rep, nil
}

// setup builds the binary, checks PostgreSQL and starts MinIO.
func (h *harness) setup(ctx context.Context) error {
	if h.opt.Binary != "" {
		h.bin = h.opt.Binary
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		root, err := moduleRoot(ctx, wd)
		if err != nil {
			return err
		}
		h.logf("building cmd/blockstore")
		dir := filepath.Join(h.root, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if h.bin, err = buildBinary(ctx, root, dir); err != nil {
			return err
		}
	}
	_, drop, err := testenv.CreateDatabase(ctx, "bench")
	if err != nil {
		return fmt.Errorf("bench: PostgreSQL at %s: %w", testenv.RedactURL(testenv.DatabaseURL()), err)
	}
	drop()
	h.logf("starting MinIO")
	if h.minio, err = startMinIO(ctx, filepath.Join(h.root, "minio")); err != nil {
		return err
	}
	if len(h.opt.Only) > 0 && !slices.Contains(h.opt.Only, "peers") {
		return nil
	}
	bazel, err := bazelRemoteBinary()
	if err != nil {
		h.rep.note("*** bazel-remote is not installed (%v): its column is empty ***", err)
		h.logf("*** %v: the transfer peers' table runs without bazel-remote ***", err)
		return nil
	}
	h.logf("starting bazel-remote")
	if h.bazel, err = startBazelRemote(ctx, bazel, filepath.Join(h.root, "bazel-remote")); err != nil {
		h.minio.Stop()
		return err
	}
	return nil
}

func (h *harness) logf(format string, args ...any) {
	if h.opt.Log != nil {
		fmt.Fprintf(h.opt.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// fail records a failed measurement and goes on.
func (h *harness) fail(section string, t Target, run int, err error) {
	err = fmt.Errorf("%s, %s, run %d: %w", section, t, run+1, err)
	h.failures = append(h.failures, err)
	h.rep.note("FAILED: %v", err)
	h.logf("FAILED: %v", err)
}

// rotate returns ts rotated by run, so that no target always goes first.
func rotate(ts []Target, run int) []Target {
	k := run % len(ts)
	return append(slices.Clone(ts[k:]), ts[:k]...)
}

// deployment is a fresh Blockstore server of one target, for one run of
// one section.
type deployment struct {
	srv    *Server
	dir    string
	dbURL  string
	drop   func()
	bucket string
	name   string // section and target, for the log
	h      *harness
}

// deploy starts a Blockstore server of target t on fresh stores: a new data
// directory, and for Postgres a new database and bucket. The caller must
// close it, which removes them.
func (h *harness) deploy(ctx context.Context, t Target, section string) (_ *deployment, err error) {
	d := &deployment{h: h, name: section + ", " + t.String()}
	start := time.Now()
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.dir, err = os.MkdirTemp(h.root, section+"-"+t.String()+"-"); err != nil {
		return nil, err
	}
	args := []string{"--data", filepath.Join(d.dir, "data")}
	var env []string
	if t == Postgres {
		if d.dbURL, d.drop, err = testenv.CreateDatabase(ctx, "bench"); err != nil {
			return nil, fmt.Errorf("bench: create database: %w", err)
		}
		d.bucket = "bench-" + section + "-" + randomHex(4)
		args = append(args, "--s3-endpoint", h.minio.Endpoint, "--s3-bucket", d.bucket, "--s3-insecure")
		env = append(env,
			"BLOCKSTORE_DATABASE_URL="+d.dbURL,
			"BLOCKSTORE_S3_ACCESS_KEY="+h.minio.AccessKey,
			"BLOCKSTORE_S3_SECRET_KEY="+h.minio.SecretKey)
	}
	if h.opt.Profiles != "" {
		h.servers++
		name := fmt.Sprintf("%s-%s-%02d.pprof", section, t, h.servers)
		args = append(args, "--cpu-profile", filepath.Join(h.opt.Profiles, name))
	}
	if d.srv, err = startServer(ctx, h.bin, env, args...); err != nil {
		return nil, err
	}
	h.logf("%s: server started in %s", d.name, time.Since(start).Round(time.Millisecond))
	return d, nil
}

// Close stops the server and removes the deployment's stores.
func (d *deployment) Close() error {
	start := time.Now()
	defer func() {
		d.h.logf("%s: server stopped, stores removed in %s", d.name, time.Since(start).Round(time.Millisecond))
	}()
	var err error
	if d.srv != nil {
		err = d.srv.Stop()
	}
	if d.bucket != "" {
		if berr := d.h.minio.removeBucket(context.Background(), d.bucket); err == nil {
			err = berr
		}
	}
	if d.drop != nil {
		d.drop()
	}
	if d.dir != "" {
		_ = os.RemoveAll(d.dir)
	}
	return err
}

// discard is io.Discard without ReadFrom, so that io.CopyBuffer reads with
// the buffer it is given.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// drain reads r to its end with buf and returns how many bytes it gave.
func drain(r io.Reader, buf []byte) (int64, error) {
	return io.CopyBuffer(discard{}, r, buf)
}

// binaryUnits formats a size as the issues do (1 GiB, 4 KiB).
func binaryUnits(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib && n%kib == 0:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d B", n)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// count formats a count with thousands separators.
func count(n int) string { return groupThousands(fmt.Sprint(n)) }
