package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/client"
)

// runChanges prints the change feed, one change per line: what a cache
// would apply. Without --follow it stops once it has caught up.
func runChanges(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("changes", "changes --server URL [--follow] [--collection UUID] [--after CURSOR | --from-head] [--json]")
	cf := addClientFlags(fs)
	follow := fs.Bool("follow", false, "keep waiting for new changes (long-poll) instead of stopping once caught up")
	collection := fs.String("collection", "", "only this collection's changes")
	after := fs.String("after", "", "start after this cursor (default: the oldest change kept)")
	fromHead := fs.Bool("from-head", false, "start at the latest change: print only what is committed from now on")
	asJSON := fs.Bool("json", false, "print each change as a JSON object (one per line)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %q", fs.Args())}
	}
	q := client.ChangeQuery{After: *after}
	if *collection != "" {
		id, err := uuid.Parse(*collection)
		if err != nil {
			return usageError{fmt.Errorf("--collection %q is not a UUID", *collection)}
		}
		q.Collection = id
	}
	if *fromHead && *after != "" {
		return usageError{fmt.Errorf("give --after or --from-head, not both")}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if *fromHead {
		if q.After, err = c.ChangesHead(ctx); err != nil {
			return err
		}
	}
	f := c.Follow(q)
	f.Forever = *follow
	f.OnRetry = func(err error, wait time.Duration) {
		fmt.Fprintf(stderr, "blockstore: %v; retrying in %s from cursor %s\n", err, wait, f.Cursor())
	}
	enc := json.NewEncoder(stdout)
	for ch, err := range f.Changes(ctx) {
		if err != nil {
			if errors.Is(err, client.ErrGone) {
				return fmt.Errorf("%w: the server no longer keeps the changes after this cursor; reload and start again with --from-head", err)
			}
			if ctx.Err() != nil && *follow {
				return nil // interrupted while following: a normal end
			}
			return err
		}
		if *asJSON {
			if err := enc.Encode(ch); err != nil {
				return err
			}
			continue
		}
		version := "-"
		if ch.Version != nil {
			version = strconv.FormatInt(*ch.Version, 10)
		}
		if _, err := fmt.Fprintf(stdout, "%s %-13s %-10s %s %s collection=%s cursor=%s\n",
			ch.At.UTC().Format("2006-01-02T15:04:05.000000Z"), ch.Event, ch.Kind, ch.UUID, version, ch.Collection, ch.Cursor); err != nil {
			return err
		}
	}
	return nil
}
