package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/backup"
)

// backupTempDir is the directory under DataDir that holds the checkpoint of
// the backup under way: beside the index, so that Pebble hard-links its
// tables.
const backupTempDir = "backup"

// backupService wires the backups of package backup over the deployment:
// the Pebble engine under the metrics wrapper copies itself; a PostgreSQL
// index has no such capability, and its backups are refused.
func (a *App) backupService() *backup.Service {
	opt := backup.Options{Logger: a.Logger}
	if cp, ok := a.baseIndex().(backup.Checkpointer); ok {
		opt.Checkpointer, opt.TempDir = cp, filepath.Join(a.Config.DataDir, backupTempDir)
	}
	return backup.New(a.Index, a.Blobs, opt)
}

// baseIndex is the index engine under the metrics wrapper.
func (a *App) baseIndex() index.Store {
	if m, ok := a.Index.(*meteredIndex); ok {
		return m.Store
	}
	return a.Index
}

// Restore brings the backup in dir back into cfg's embedded deployment: the
// index into cfg.DataDir/index (which must be absent or empty) and the blobs
// into cfg.DataDir/blobs, or into cfg's bucket when cfg.S3.Endpoint is set.
// cfg.DatabaseURL must be empty. jobs is how many blobs are restored at once
// (0: 4). See backup.Restore for the errors.
func Restore(ctx context.Context, dir string, cfg Config, jobs int) (backup.Report, error) {
	if cfg.DatabaseURL != "" {
		return backup.Report{}, errors.New("app: restore: the backup holds an embedded index; a PostgreSQL index is restored with pg_restore (see the README)")
	}
	t := backup.Target{DataDir: cfg.DataDir, Jobs: jobs}
	if cfg.S3.Endpoint != "" {
		bucket, err := s3store.Open(ctx, cfg.S3)
		if err != nil {
			return backup.Report{}, fmt.Errorf("app: restore: open the bucket: %w", err)
		}
		defer bucket.Close()
		t.Blobs = bucket
	}
	return backup.Restore(ctx, dir, t)
}
