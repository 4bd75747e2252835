package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockstore/blockstore/index/pgindex"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate --database-url postgres://…")
	databaseURL := fs.Secret("database-url", "PostgreSQL URL whose schema to bring up to date")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *databaseURL == "" {
		return usageError{fmt.Errorf("--database-url is required: the embedded Pebble index needs no migrations")}
	}
	if err := pgindex.Migrate(ctx, *databaseURL); err != nil {
		return err
	}
	cur, latest, err := pgindex.SchemaVersion(ctx, *databaseURL)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d (latest %d)\n", cur, latest)
	return nil
}
