package pebbleindex

import (
	"context"
	"errors"
	"testing"

	"github.com/blockstore/blockstore/index"
)

// TestChangesCursorAheadIsGone: a cursor beyond the feed's durable head
// (another store's, or one given out before a backup was restored) is
// ErrGone, so that its follower reloads instead of silently skipping the
// changes that will take those positions again. Reopening keeps cursors.
func TestChangesCursorAheadIsGone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := a.Update(ctx, func(tx index.Tx) error {
			_, err := tx.CreateCollection(index.NewCollection{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := a.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openTest(t, Options{InMemory: true})
	if _, err := b.Changes(ctx, index.ChangeQuery{After: head}); !errors.Is(err, index.ErrGone) {
		t.Fatalf("another store's cursor: %v, want ErrGone", err)
	}
	a, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p, err := a.Changes(ctx, index.ChangeQuery{After: head})
	if err != nil || len(p.Items) != 0 {
		t.Fatalf("the head after reopening: %v, %v", p.Items, err)
	}
	if h2, err := a.ChangesHead(ctx); err != nil || h2 != head {
		t.Fatalf("head after reopening %q, %v; want %q", h2, err, head)
	}
}
