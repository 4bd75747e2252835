package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/app"
)

// runMigrate brings the schema up to date. With the bucket's flags too
// (--s3-endpoint), it first checks that the database belongs to the bucket,
// as serve would, and refuses a fresh database over a used bucket before
// writing anything; without them there is no blob store to check against.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate --database-url postgres://… [--s3-endpoint … (checks the store identity)]")
	sf := addStoreFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	databaseURL := sf.databaseURL
	if *databaseURL == "" {
		return usageError{fmt.Errorf("--database-url is required: the embedded Pebble index needs no migrations")}
	}
	if *sf.s3Endpoint != "" {
		a, err := app.Open(ctx, sf.config())
		if err != nil {
			return err
		}
		if err := a.Close(); err != nil {
			return err
		}
	} else if err := pgindex.Migrate(ctx, *databaseURL); err != nil {
		return err
	}
	cur, latest, err := pgindex.SchemaVersion(ctx, *databaseURL)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d (latest %d)\n", cur, latest)
	return nil
}
