package indextest

import (
	"testing"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// RunStats checks the optional index.Stats of the stores open returns: the
// totals of a whole index and of one collection, with deduplicated blobs,
// drafts, pending uploads and deletions. A store without index.Stats is
// skipped, saying so.
func RunStats(t *testing.T, open func(t *testing.T, opt index.Options) index.Store) {
	t.Run("Totals", func(t *testing.T) {
		t.Parallel()
		testTotals(newEnv(t, open))
	})
	t.Run("CollectionTotals", func(t *testing.T) {
		t.Parallel()
		testCollectionTotals(newEnv(t, open))
	})
}

func (e *env) stats() index.Stats {
	e.t.Helper()
	st, ok := e.s.(index.Stats)
	if !ok {
		e.t.Skipf("%T does not implement index.Stats", e.s)
	}
	return st
}

func (e *env) wantTotals(what string, want index.Totals) {
	e.t.Helper()
	got, err := e.stats().Totals(e.ctx)
	if err != nil {
		e.t.Fatalf("%s: Totals: %v", what, err)
	}
	if got != want {
		e.t.Fatalf("%s: Totals\n got %+v\nwant %+v", what, got, want)
	}
}

func testTotals(e *env) {
	e.wantTotals("empty index", index.Totals{})

	a, b := e.collection("a"), e.collection("b")
	e.collection("empty")
	h1, s1 := e.blobSized(100)
	u := e.createUnit(index.NewUnit{Collection: a.ID, Name: "u", Hash: h1})
	h2, s2 := e.blobSized(200)
	e.commitUnit(u.ID, index.UnitChange{Hash: h2}, false)
	// One blob, named by two assets in two collections: stored once,
	// referenced twice.
	shared, ss := e.blobSized(5000)
	a1 := e.createAsset(index.NewAsset{Collection: a.ID, Name: "a1", MediaType: "video/mp4", Hash: shared})
	e.createAsset(index.NewAsset{Collection: b.ID, Name: "a2", MediaType: "video/mp4", Hash: shared})
	// A draft-only unit: its version counts, the unit does not (lists hide it).
	hd, sd := e.blobSized(30)
	e.createUnit(index.NewUnit{Collection: b.ID, Name: "draft", Hash: hd, Draft: true})
	// A pending upload is not stored yet.
	e.pending()
	// A collection's new version names no blob.
	name := "a, renamed"
	e.must("UpdateCollection", func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(a.ID, index.CollectionPatch{Name: &name})
		return err
	})

	want := index.Totals{
		Collections: 3, Units: 1, Assets: 2, Versions: 5,
		Blobs: 4, StoredBytes: s1 + s2 + ss + sd,
		ReferencedBytes: s1 + s2 + 2*ss + sd,
	}
	e.wantTotals("seeded", want)

	// Deleting an asset removes its version at once; its bytes stay stored
	// until a sweep.
	e.wantOK("DeleteEntity", e.deleteEntity(a1.ID))
	want.Assets, want.Versions, want.ReferencedBytes = 1, 4, want.ReferencedBytes-ss
	e.wantTotals("after a deletion", want)
}

func testCollectionTotals(e *env) {
	st := e.stats()
	a, b := e.collection("a"), e.collection("b")
	h1, _ := e.blobSized(100)
	u := e.createUnit(index.NewUnit{Collection: a.ID, Name: "u", Hash: h1})
	h2, s2 := e.blobSized(200)
	e.commitUnit(u.ID, index.UnitChange{Hash: h2}, false)
	// A draft on top of the published version does not change the latest.
	h3, _ := e.blobSized(999)
	e.commitUnit(u.ID, index.UnitChange{Hash: h3}, true)
	ha, sa := e.blobSized(4096)
	e.createAsset(index.NewAsset{Collection: a.ID, Name: "pic", MediaType: "image/png", Hash: ha})
	e.draftUnit(a.ID, "draft only")
	e.unit(b.ID, "elsewhere")

	got, err := st.CollectionTotals(e.ctx, a.ID)
	e.wantOK("CollectionTotals(a)", err)
	if want := (index.CollectionTotals{Units: 1, Assets: 1, Bytes: s2 + sa}); got != want {
		e.t.Fatalf("CollectionTotals(a) = %+v, want %+v", got, want)
	}
	empty := e.collection("empty")
	got, err = st.CollectionTotals(e.ctx, empty.ID)
	e.wantOK("CollectionTotals(empty)", err)
	if got != (index.CollectionTotals{}) {
		e.t.Fatalf("CollectionTotals(empty) = %+v, want zeros", got)
	}
	_, err = st.CollectionTotals(e.ctx, uuid.New())
	e.wantErr("CollectionTotals(unknown)", err, index.ErrNotFound)
	_, err = st.CollectionTotals(e.ctx, u.ID)
	e.wantErr("CollectionTotals(a unit)", err, index.ErrNotFound)
}
