package castest

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockstore/blockstore/cas"
)

// Identity is what a backend that records a store id offers (cas/dirstore,
// cas/s3store; internal/app binds it to an index).
type Identity interface {
	StoreID(ctx context.Context) (string, error)
	SetStoreID(ctx context.Context, id string) error
}

// RunStoreID checks a backend's store id: none on a new store, read back,
// replaced and removed, and never seen by Walk or CleanTemp. s is a
// cas.Store over b, which must be new and empty.
func RunStoreID(t *testing.T, s *cas.Store, b Identity) {
	t.Helper()
	ctx := context.Background()
	if id, err := b.StoreID(ctx); err != nil || id != "" {
		t.Fatalf("StoreID of a new store: %q, %v", id, err)
	}
	if _, err := s.Put(ctx, bytes.NewReader([]byte("one blob")), cas.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"first", "second"} {
		if err := b.SetStoreID(ctx, id); err != nil {
			t.Fatal(err)
		}
		if got, err := b.StoreID(ctx); err != nil || got != id {
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
	if got, err := b.StoreID(ctx); err != nil || got != "second" {
		t.Fatalf("StoreID after CleanTemp: %q, %v", got, err)
	}
	if err := b.SetStoreID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := b.StoreID(ctx); err != nil || got != "" {
		t.Fatalf("StoreID after remove: %q, %v", got, err)
	}
}
