package pebbleindex

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// liveBlob registers h as a live blob of the store.
func liveBlob(t *testing.T, s *Store, h cas.Hash) {
	t.Helper()
	ctx := context.Background()
	_, tk, err := s.BeginBlob(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishBlob(ctx, h, 100, tk); err != nil {
		t.Fatal(err)
	}
}

// TestEntityCacheServesWriters creates units that link the same targets
// in the same collection: after the first, the collection and the targets
// come from the entity cache.
func TestEntityCacheServesWriters(t *testing.T) {
	s := openTest(t, Options{InMemory: true})
	ctx := context.Background()
	h := cas.Sum([]byte("<problem/>"))
	liveBlob(t, s, h)
	var coll uuid.UUID
	var links []index.Link
	err := s.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{})
		if err != nil {
			return err
		}
		coll = c.ID
		a, err := tx.CreateAsset(index.NewAsset{Collection: coll, Hash: h, MediaType: "image/png"})
		if err != nil {
			return err
		}
		u, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h})
		if err != nil {
			return err
		}
		links = []index.Link{{Target: a.ID, Kind: index.KindAsset}, {Target: u.ID, Kind: index.KindUnit}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	hits0, misses0 := s.ents.hits.Load(), s.ents.misses.Load()
	for range n {
		err := s.Update(ctx, func(tx index.Tx) error {
			_, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h, Links: links})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	hits, misses := s.ents.hits.Load()-hits0, s.ents.misses.Load()-misses0
	// Each create reads the collection and both targets (the asset is
	// marked ever linked once, which sends it back to Pebble once).
	if want := uint64(3*n - 4); hits < want || misses > 4 {
		t.Errorf("%d creates: %d entity reads from the cache, %d from Pebble; want at least %d and at most 4", n, hits, misses, want)
	}
}

// TestEntityCacheFollowsWrites changes, deletes and fails to change
// entities that the cache holds: every transaction reads what is
// committed.
func TestEntityCacheFollowsWrites(t *testing.T) {
	s := openTest(t, Options{InMemory: true})
	ctx := context.Background()
	h := cas.Sum([]byte("<html/>"))
	liveBlob(t, s, h)
	var coll, target uuid.UUID
	err := s.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "before"}})
		if err != nil {
			return err
		}
		coll = c.ID
		u, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h})
		target = u.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	link := []index.Link{{Target: target, Kind: index.KindUnit}}
	create := func() error {
		return s.Update(ctx, func(tx index.Tx) error {
			_, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h, Links: link})
			return err
		})
	}
	// A transaction's read of the target puts it in the cache, as a
	// create's read of the collection does.
	err = s.Update(ctx, func(tx index.Tx) error {
		_, err := tx.Unit(ctx, index.Latest(target))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ents.m[target]; !ok {
		t.Fatal("the transaction's read of a unit did not cache it")
	}
	name := func() string {
		t.Helper()
		var got string
		err := s.Update(ctx, func(tx index.Tx) error {
			c, err := tx.Collection(ctx, coll, 0)
			got = c.Name
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	rename := func(to string, fail error) error {
		return s.Update(ctx, func(tx index.Tx) error {
			if _, _, err := tx.UpdateCollection(coll, index.CollectionPatch{Name: &to}); err != nil {
				return err
			}
			if got, err := tx.Collection(ctx, coll, 0); err != nil || got.Name != to {
				t.Errorf("inside the transaction that renamed it: %q, %v; want %q", got.Name, err, to)
			}
			return fail
		})
	}

	// A transaction that fails leaves the committed record.
	boom := errors.New("boom")
	if err := rename("abandoned", boom); !errors.Is(err, boom) {
		t.Fatalf("failed rename: %v", err)
	}
	if got := name(); got != "before" {
		t.Errorf("after a failed rename: %q, want %q", got, "before")
	}
	// A committed change is what the next transaction reads.
	if err := rename("after", nil); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "after" {
		t.Errorf("after a rename: %q, want %q", got, "after")
	}
	// A deleted link target is gone for the next create (and from the
	// cache).
	if err := s.Update(ctx, func(tx index.Tx) error { return tx.DeleteEntity(target) }); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ents.m[target]; ok {
		t.Error("the cache still holds a deleted unit")
	}
	if err := create(); !errors.Is(err, index.ErrInvalid) {
		t.Errorf("create linking a deleted unit: %v, want ErrInvalid", err)
	}
	// So is a deleted collection.
	if err := s.Update(ctx, func(tx index.Tx) error { return tx.DeleteCollection(coll, true) }); err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx index.Tx) error {
		_, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h})
		return err
	})
	if !errors.Is(err, index.ErrNotFound) {
		t.Errorf("create in a deleted collection: %v, want ErrNotFound", err)
	}
}

// TestEntityCacheBounded fills the cache past its size.
func TestEntityCacheBounded(t *testing.T) {
	c := newEntityCache()
	for range entityCacheSize + 10 {
		c.put(uuid.New(), entityRec{Kind: index.KindUnit})
	}
	if len(c.m) != entityCacheSize {
		t.Fatalf("cache holds %d records, want %d", len(c.m), entityCacheSize)
	}
}
