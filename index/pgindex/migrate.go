package pgindex

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Advisory lock keys (PostgreSQL advisory locks are per database). They
// are arbitrary constants that no other program on the database uses.
const (
	// migrateLockKey serializes migrations across replicas (session lock,
	// held by goose while it migrates).
	migrateLockKey int64 = 0x626c6b7301 // "blks" 01
	// gcLockKey is the one-sweep-at-a-time lock (session lock, TryLockGC).
	gcLockKey int64 = 0x626c6b7302
	// graphLockKey serializes the writers that add unit-to-unit edges, so
	// that two of them cannot each close half of a cycle (transaction lock).
	graphLockKey int64 = 0x626c6b7303
)

// Migrate brings the schema at url up to date: the embedded numbered
// migrations not applied yet are applied in order, under a session-level
// advisory lock so that replicas starting together migrate once. Running it
// again is a no-op.
func Migrate(ctx context.Context, url string) error {
	cfg, err := parseConfig(url)
	if err != nil {
		return err
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return redact(fmt.Errorf("pgindex: migrate: %w", err), cfg.ConnConfig.Password)
	}
	return nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	// goose retries pg_try_advisory_lock every second for up to ten
	// minutes: a replica waits while another one migrates.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockKey), lock.WithLockTimeout(1, 600))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithLogger(goose.NopLogger()),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// SchemaVersion returns the highest migration applied to the database at url
// (0 when none) and the highest this binary embeds.
func SchemaVersion(ctx context.Context, url string) (current, latest int64, err error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return 0, 0, err
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return 0, 0, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithLogger(goose.NopLogger()), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, 0, fmt.Errorf("pgindex: schema version: %w", err)
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, redact(fmt.Errorf("pgindex: schema version: %w", translate(err)), cfg.ConnConfig.Password)
	}
	return current, latest, nil
}
