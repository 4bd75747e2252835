package pgindex

import (
	"context"
	"testing"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/testenv"
)

// TestStoreID: none at first, the first bind wins, replace and remove.
func TestStoreID(t *testing.T) {
	ctx := context.Background()
	url := testenv.NewDatabase(t)
	if fresh, err := Fresh(ctx, url); err != nil || !fresh {
		t.Fatalf("Fresh of a new database: %v, %v", fresh, err)
	}
	s, err := Open(ctx, url, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if fresh, err := Fresh(ctx, url); err != nil || fresh {
		t.Fatalf("Fresh of a migrated database: %v, %v", fresh, err)
	}
	checkStoreID(t, s)
}

func checkStoreID(t *testing.T, s index.Identity) {
	t.Helper()
	ctx := context.Background()
	if id, err := s.StoreID(ctx); err != nil || id != "" {
		t.Fatalf("StoreID of a new index: %q, %v", id, err)
	}
	if id, err := s.BindStoreID(ctx, "first"); err != nil || id != "first" {
		t.Fatalf("BindStoreID(first): %q, %v", id, err)
	}
	if id, err := s.BindStoreID(ctx, "second"); err != nil || id != "first" {
		t.Fatalf("BindStoreID(second): %q, %v; want the first to stay", id, err)
	}
	if err := s.ReplaceStoreID(ctx, "third"); err != nil {
		t.Fatal(err)
	}
	if id, err := s.StoreID(ctx); err != nil || id != "third" {
		t.Fatalf("StoreID after replace: %q, %v", id, err)
	}
	if err := s.ReplaceStoreID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if id, err := s.StoreID(ctx); err != nil || id != "" {
		t.Fatalf("StoreID after remove: %q, %v", id, err)
	}
	if _, err := s.BindStoreID(ctx, ""); err == nil {
		t.Fatal("BindStoreID accepted an empty id")
	}
}
