package dirstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockstore/blockstore/cas"
)

// TestStoreID: the id file is read back, replaced and removed, and neither
// Walk nor CleanTemp ever sees it.
func TestStoreID(t *testing.T) {
	ctx := context.Background()
	s, d := newStore(t)
	if id, err := d.StoreID(ctx); err != nil || id != "" {
		t.Fatalf("StoreID of a new store: %q, %v", id, err)
	}
	if _, err := s.Put(ctx, bytes.NewReader([]byte("one blob")), cas.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"first", "second"} {
		if err := d.SetStoreID(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got, err := d.StoreID(ctx); err != nil || got != id {
			t.Fatalf("StoreID: %q, %v; want %q", got, err, id)
		}
	}
	if _, _, err := s.CleanTemp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.Walk(ctx, func(cas.Info) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("Walk: %d blobs, %v; want the one blob only", n, err)
	}
	if got, err := d.StoreID(ctx); err != nil || got != "second" {
		t.Fatalf("StoreID after CleanTemp: %q, %v", got, err)
	}
	if err := d.SetStoreID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := d.StoreID(ctx); err != nil || got != "" {
		t.Fatalf("StoreID after remove: %q, %v", got, err)
	}
}
