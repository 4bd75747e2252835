package pebbleindex

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/blockstore/blockstore/index/indextest"
)

// TestStoreID: none at first, the first bind wins, replace and remove
// (indextest.RunStoreID), and a bound id survives a reopen.
func TestStoreID(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "index")
	if fresh, err := Fresh(dir); err != nil || !fresh {
		t.Fatalf("Fresh of an absent directory: %v, %v", fresh, err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if fresh, err := Fresh(dir); err != nil || fresh {
		t.Fatalf("Fresh of an index: %v, %v", fresh, err)
	}
	indextest.RunStoreID(t, s)
	if id, err := s.BindStoreID(ctx, "first"); err != nil || id != "first" {
		t.Fatalf("BindStoreID(first): %q, %v", id, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, err := s.StoreID(ctx); err != nil || id != "first" {
		t.Fatalf("StoreID after reopen: %q, %v", id, err)
	}
}
