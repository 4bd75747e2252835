package pgindex

import (
	"context"
	"testing"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
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
	indextest.RunStoreID(t, s)
}
