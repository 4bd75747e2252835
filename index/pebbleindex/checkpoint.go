package pebbleindex

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Checkpoint writes a consistent copy of the index into dir, which must not
// exist yet, while the store keeps serving: Pebble's DB.Checkpoint, which
// hard-links the immutable tables (dir should be on the index's file
// system, or they are copied) and copies the MANIFEST, OPTIONS and WAL
// files up to one point of the log. The copy opens with Open like any
// index.
//
// The WAL is flushed and synced first, so the checkpoint holds every commit
// Update has acknowledged when Checkpoint is called, and possibly commits
// applied whose sync was still under way (their blobs are durable: a commit
// only names a live blob). A commit is a single batch in the WAL, so the
// checkpoint holds all of it or none of it.
//
// The caller owns dir and removes it. An in-memory store writes its
// checkpoint into its own memory file system, where nothing else can read
// it.
func (s *Store) Checkpoint(ctx context.Context, dir string) error {
	if err := s.gate.enter(); err != nil {
		return err
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("index: checkpoint: %w", err)
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("index: checkpoint into %s: %w", dir, dbErr(err))
	}
	return nil
}
