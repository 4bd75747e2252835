package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/internal/datadir"
	"github.com/blockstore/blockstore/internal/storecopy"
)

// fromFlags say where the source of a copy lives: the store flags with a
// from- prefix (--from-data ↔ BLOCKSTORE_FROM_DATA).
type fromFlags struct {
	data, databaseURL                        *string
	s3Endpoint, s3Bucket, s3Prefix, s3Region *string
	s3AccessKey, s3SecretKey                 *string
	s3Insecure                               *bool
	s3Timeout                                *time.Duration
}

func addFromFlags(fs *flagSet) *fromFlags {
	return &fromFlags{
		data:        fs.String("from-data", "", "source: data directory of an embedded deployment (stopped)"),
		databaseURL: fs.Secret("from-database-url", "source: PostgreSQL URL of its index"),
		s3Endpoint:  fs.String("from-s3-endpoint", "", "source: S3 endpoint of its blobs"),
		s3Bucket:    fs.String("from-s3-bucket", "blockstore", "source: S3 bucket"),
		s3Prefix:    fs.String("from-s3-prefix", "", "source: prefix of every key in the bucket"),
		s3Region:    fs.String("from-s3-region", "", "source: S3 region"),
		s3AccessKey: fs.String("from-s3-access-key", "", "source: S3 access key"),
		s3SecretKey: fs.Secret("from-s3-secret-key", "source: S3 secret key"),
		s3Insecure:  fs.Bool("from-s3-insecure", false, "source: talk plain http to the S3 endpoint"),
		s3Timeout:   fs.PositiveDuration("from-s3-timeout", 30*time.Second, "source: longest wait on the bucket before a request fails"),
	}
}

func (f *fromFlags) config() (app.Config, error) {
	cfg := app.Config{
		DataDir:     *f.data,
		DatabaseURL: *f.databaseURL,
		S3: s3store.Config{
			Endpoint: *f.s3Endpoint, Bucket: *f.s3Bucket, Prefix: *f.s3Prefix, Region: *f.s3Region,
			AccessKey: *f.s3AccessKey, SecretKey: *f.s3SecretKey, Insecure: *f.s3Insecure,
			// A source's bucket exists; a missing one is a mistake to report.
			CreateBucket: false, Timeout: *f.s3Timeout,
		},
	}
	switch {
	case cfg.DataDir == "" && cfg.DatabaseURL == "" && cfg.S3.Endpoint == "":
		return cfg, usageError{errors.New("give the source: --from-data DIR, or --from-database-url and --from-s3-endpoint")}
	case cfg.Embedded() && cfg.DataDir == "":
		return cfg, usageError{errors.New("the source keeps its index or blobs in a data directory: give --from-data too")}
	}
	return cfg, nil
}

func runCopy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("copy", "copy (--from-data DIR | --from-database-url URL --from-s3-endpoint HOST …) [store flags of the destination] [--jobs N] [--json]")
	ff := addFromFlags(fs)
	sf := addStoreFlags(fs)
	jobs := fs.Int("jobs", storecopy.DefaultJobs, "blobs copied, and entities imported, at once")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	srcCfg, err := ff.config()
	if err != nil {
		return err
	}
	dstCfg := sf.config()
	if what := sharedStore(srcCfg, dstCfg); what != "" {
		return usageError{fmt.Errorf("the source and the destination share %s: a copy needs stores of its own "+
			"(two indexes over one blob store would each sweep the other's blobs)", what)}
	}
	src, err := app.Open(ctx, srcCfg)
	if errors.Is(err, datadir.ErrLocked) {
		return fmt.Errorf("the source is in use: %w\nAn embedded deployment is copied while it is stopped: stop its blockstore serve, "+
			"run blockstore copy, then start serve on the destination's flags", err)
	}
	if err != nil {
		return fmt.Errorf("open the source: %w", err)
	}
	defer src.Close()
	dst, err := app.Open(ctx, dstCfg)
	if errors.Is(err, datadir.ErrLocked) {
		return fmt.Errorf("the destination is in use: %w\nCopy into a deployment no server runs on yet", err)
	}
	if err != nil {
		return fmt.Errorf("open the destination: %w", err)
	}
	defer dst.Close()

	display := storecopy.NewDisplay(stderr, isTerminal(stderr))
	sum, runErr := storecopy.Run(ctx, src, dst, storecopy.Options{
		Jobs: *jobs, Progress: display.Update, Interval: display.Interval(),
	})
	display.Finish()
	if sum.Source == "" {
		return runErr // refused before it began: nothing to summarize
	}
	return printSummary(stdout, *asJSON, sum, runErr)
}

// sharedStore names a store the two configurations share ("" when none):
// the data directory, the database, or the bucket and prefix.
func sharedStore(a, b app.Config) string {
	switch {
	case a.DatabaseURL != "" && a.DatabaseURL == b.DatabaseURL:
		return "the database"
	case a.S3.Endpoint != "" && a.S3.Endpoint == b.S3.Endpoint && a.S3.Bucket == b.S3.Bucket && a.S3.Prefix == b.S3.Prefix:
		return "the bucket " + a.S3.Bucket + " and prefix " + strconv.Quote(a.S3.Prefix)
	case a.Embedded() && b.Embedded() && sameDir(a.DataDir, b.DataDir):
		return "the data directory " + a.DataDir
	}
	return ""
}

func sameDir(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && x == y
}
