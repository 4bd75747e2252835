package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/internal/app"
)

// storeFlags are the flags that say where the index and the blobs live,
// shared by every command that opens the stores directly.
type storeFlags struct {
	data, databaseURL                        *string
	s3Endpoint, s3Bucket, s3Prefix, s3Region *string
	s3AccessKey, s3SecretKey                 *string
	s3Insecure, s3CreateBucket               *bool
	allowEmbeddedIndexWithS3                 *bool
	s3Timeout, s3PresignExpiry               *time.Duration
	s3SpoolDir                               *string
	s3SpoolBytes                             *int64
	retention, grace                         *time.Duration
	maxDeleteShare                           *string
}

func addStoreFlags(fs *flagSet) *storeFlags {
	return &storeFlags{
		data:           fs.String("data", "./blockstore-data", "data directory of the embedded deployment (Pebble index, blob directory)"),
		databaseURL:    fs.Secret("database-url", "PostgreSQL URL (postgres://…): puts the index in PostgreSQL instead of Pebble"),
		s3Endpoint:     fs.String("s3-endpoint", "", "S3 endpoint (host:port or URL): puts the blobs in a bucket instead of the data directory"),
		s3Bucket:       fs.String("s3-bucket", "blockstore", "S3 bucket"),
		s3Prefix:       fs.String("s3-prefix", "", "prefix of every key in the bucket"),
		s3Region:       fs.String("s3-region", "", "S3 region (empty: the endpoint's default)"),
		s3AccessKey:    fs.String("s3-access-key", "", "S3 access key (empty: from the environment or IAM role)"),
		s3SecretKey:    fs.Secret("s3-secret-key", "S3 secret key"),
		s3Insecure:     fs.Bool("s3-insecure", false, "talk plain http to the S3 endpoint"),
		s3CreateBucket: fs.Bool("s3-create-bucket", true, "create the bucket when it does not exist"),
		allowEmbeddedIndexWithS3: fs.Bool("allow-embedded-index-with-s3", false,
			"accept the embedded Pebble index (no --database-url) over an S3 bucket; refused otherwise, as a forgotten --database-url"),
		s3Timeout: fs.PositiveDuration("s3-timeout", 30*time.Second, "longest wait on the bucket before a request fails with 503 (a stat, a small PUT, each read, each part handed to an upload)"),
		s3PresignExpiry: fs.PositiveDuration("s3-presign-expiry", s3store.DefaultPresignExpiry,
			"how long the presigned URLs of a GET with Prefer: redirect stay valid (1s to 168h)"),
		s3SpoolDir: fs.String("s3-spool-dir", "",
			"local directory where an upload of unknown hash over 32 MiB (POST /assets, POST /blobs) waits for its hash before it goes to its key (empty: $TMPDIR, else /tmp); refused at start when not writable"),
		s3SpoolBytes: fs.Int64("s3-spool-bytes", 0,
			"bytes all uploads may keep in --s3-spool-dir at once; past it an upload goes to a temporary key that the bucket copies (0: 16 GiB; negative: no spool)"),
		retention:      fs.Duration("gc-retention", 720*time.Hour, "how long superseded versions are kept when their entity opts in to garbage collection"),
		grace:          fs.Duration("gc-grace", 24*time.Hour, "blob leases, young stray bytes and recently unlinked assets are kept this long"),
		maxDeleteShare: fs.String("gc-max-delete-share", "0.5", "a sweep whose plan deletes more than this share (0 to 1) of the stored blobs or bytes stops before deleting any, unless forced"),
	}
}

// gcMaxDeleteShare parses --gc-max-delete-share.
func (f *storeFlags) gcMaxDeleteShare() (float64, error) {
	v, err := strconv.ParseFloat(*f.maxDeleteShare, 64)
	if err != nil || v <= 0 || v > 1 {
		return 0, usageError{fmt.Errorf("--gc-max-delete-share %q is not a share above 0 and at most 1", *f.maxDeleteShare)}
	}
	return v, nil
}

func (f *storeFlags) config() app.Config {
	return app.Config{
		DataDir:     *f.data,
		DatabaseURL: *f.databaseURL,
		S3: s3store.Config{
			Endpoint: *f.s3Endpoint, Bucket: *f.s3Bucket, Prefix: *f.s3Prefix, Region: *f.s3Region,
			AccessKey: *f.s3AccessKey, SecretKey: *f.s3SecretKey, Insecure: *f.s3Insecure,
			CreateBucket: *f.s3CreateBucket, Timeout: *f.s3Timeout, PresignExpiry: *f.s3PresignExpiry,
			SpoolDir: *f.s3SpoolDir, SpoolBytes: *f.s3SpoolBytes,
		},
		AllowEmbeddedIndexWithS3: *f.allowEmbeddedIndexWithS3,
		GCRetention:              orTiny(*f.retention),
		GCGrace:                  orTiny(*f.grace),
	}
}

// orTiny keeps an explicit zero duration from reading as "the default" in
// app.Config: 0s on the command line means no grace (or no retention).
// Negative durations never get here: flagSet.Parse refuses them.
func orTiny(d time.Duration) time.Duration {
	if d == 0 {
		return time.Nanosecond
	}
	return d
}
