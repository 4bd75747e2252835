package indextest

import (
	"context"
	"testing"

	"github.com/blockstore/blockstore/index"
)

// RunStoreID checks an engine's store id on a new index: none at first,
// the first bind wins, replace and remove, and an empty id is refused.
func RunStoreID(t *testing.T, s index.Identity) {
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
