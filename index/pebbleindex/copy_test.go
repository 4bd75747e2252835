package pebbleindex

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
)

func TestCopyConformance(t *testing.T) {
	indextest.RunCopy(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, Options{Options: opt, InMemory: true})
	})
}

// TestImportRebuildsEveryKey: a store built by Import holds, byte for byte,
// the keys and values a store built by the writes holds in every key space
// derived from the versions (entity records, versions, lists, names, link
// sets with their counts, reverse keys, edges, hash refs, superseded and
// orphan keys): Import keeps doc.go's invariants. Blob rows differ (their
// times and tickets are the destination's) and are left out.
func TestImportRebuildsEveryKey(t *testing.T) {
	ctx := context.Background()
	src := openTest(t, Options{InMemory: true})
	f := newFixture(t, src)
	a := f.asset("a.png")
	b := f.unit("b.xml")
	u := f.unit("u.xml", index.Link{Target: b.ID}, index.Link{Target: a, Version: 1})
	must := func(fn func(tx index.Tx) error) {
		t.Helper()
		if err := src.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	must(func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: f.blob(), Links: &[]index.Link{{Target: b.ID, Version: 1}}}, false)
		return err
	})
	must(func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: f.blob(), Links: &[]index.Link{}}, true)
		return err
	})
	must(func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(b.ID, index.UnitChange{Hash: f.blob()}, false)
		return err
	})

	dst := openTest(t, Options{InMemory: true})
	err := src.Export(ctx, func(h index.History) error {
		for _, v := range h.Versions {
			if h.Kind != index.KindCollection {
				_, tk, err := dst.BeginBlob(ctx, v.Hash)
				if err == nil {
					err = dst.FinishBlob(ctx, v.Hash, v.Size, tk)
				}
				if err != nil {
					return err
				}
			}
		}
		_, err := dst.Import(ctx, h)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	derived := []byte{pCollection, pEntity, pHashRef, pEdge, pLinkSet, pMember, pName, pOrphan, pReverse, pVersion, pSuperseded}
	dump := func(s *Store) string {
		var b strings.Builder
		for _, p := range derived {
			err := s.read(ctx, "dump", func(v *view) error {
				return v.scan([]byte{p}, []byte{p + 1}, func(k, val []byte) (bool, error) {
					fmt.Fprintf(&b, "%x = %x\n", k, val)
					return true, nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	if s, d := dump(src), dump(dst); s != d {
		t.Fatalf("imported keys differ:\n%s\nwritten:\n%s", d, s)
	}
}

// asset creates an asset in the fixture's collection.
func (f *fixture) asset(name string) uuid.UUID {
	f.t.Helper()
	h := f.blob()
	var a index.Asset
	err := f.s.Update(f.ctx, func(tx index.Tx) (err error) {
		a, err = tx.CreateAsset(index.NewAsset{Collection: f.coll, Name: name, MediaType: "image/png", Hash: h})
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.ID
}
