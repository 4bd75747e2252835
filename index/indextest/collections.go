package indextest

import (
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var collectionTests = []test{
	{"Create", testCollectionCreate},
	{"Patch", testCollectionPatch},
	{"Versions", testCollectionVersions},
	{"Delete", testCollectionDelete},
	{"DeleteWithContents", testCollectionDeleteWithContents},
	{"DeleteRecursive", testCollectionDeleteRecursive},
	{"DeleteRecursiveLinkedFromOutside", testCollectionDeleteRecursiveLinkedIn},
}

func testCollectionCreate(e *env) {
	before := e.clock.Peek()
	var c index.Collection
	fields := index.CollectionFields{Name: "Physics 101", Description: "Mechanics", Owner: "MIT", Author: "A. Author", License: "CC-BY-4.0"}
	e.must("CreateCollection", func(tx index.Tx) (err error) {
		c, err = tx.CreateCollection(index.NewCollection{CollectionFields: fields, GarbageCollect: true})
		if err != nil {
			return err
		}
		// A transaction reads its own writes.
		got, err := tx.Collection(e.ctx, c.ID, 0)
		if err != nil {
			return err
		}
		e.wantCollection("Collection inside the creating transaction", got, c)
		return nil
	})
	e.within("created_at", c.CreatedAt, before, e.clock.Peek())
	if c.ID == uuid.Nil || c.Version != 1 || c.CollectionFields != fields || !c.GarbageCollect {
		e.t.Fatalf("CreateCollection = %+v", c)
	}
	for _, v := range []int64{0, 1} {
		got, err := e.s.Collection(e.ctx, c.ID, v)
		e.wantOK("Collection", err)
		e.wantCollection("Collection", got, c)
	}
	k, err := e.s.Kind(e.ctx, c.ID)
	e.wantOK("Kind", err)
	if k != index.KindCollection {
		e.t.Fatalf("Kind = %v, want collection", k)
	}
	_, err = e.s.Collection(e.ctx, c.ID, 2)
	e.wantErr("Collection version 2", err, index.ErrNotFound)
	_, err = e.s.Collection(e.ctx, uuid.New(), 0)
	e.wantErr("Collection of an unknown uuid", err, index.ErrNotFound)
	_, err = e.s.Kind(e.ctx, uuid.New())
	e.wantErr("Kind of an unknown uuid", err, index.ErrNotFound)

	// A second collection gets its own uuid; names of collections need not be unique.
	c2 := e.collection("Physics 101")
	if c2.ID == c.ID {
		e.t.Fatal("two collections got one uuid")
	}
	// A collection is not a unit or an asset.
	_, err = e.s.Unit(e.ctx, index.Latest(c.ID))
	e.wantErr("Unit(collection uuid)", err, index.ErrNotFound)
	_, err = e.s.Asset(e.ctx, index.Latest(c.ID))
	e.wantErr("Asset(collection uuid)", err, index.ErrNotFound)
}

func testCollectionPatch(e *env) {
	c1 := e.collection("Chemistry")
	update := func(p index.CollectionPatch) (index.Collection, bool) {
		e.t.Helper()
		var c index.Collection
		var created bool
		e.must("UpdateCollection", func(tx index.Tx) (err error) {
			c, created, err = tx.UpdateCollection(c1.ID, p)
			return err
		})
		return c, created
	}
	e.clock.Advance(time1h)
	before := e.clock.Peek()
	c2, created := update(index.CollectionPatch{Description: ptr("Organic chemistry"), GarbageCollect: ptr(true)})
	if !created || c2.Version != 2 {
		e.t.Fatalf("UpdateCollection = v%d created %v, want v2 created", c2.Version, created)
	}
	e.within("created_at of version 2", c2.CreatedAt, before, e.clock.Peek())
	want := c1.CollectionFields
	want.Description = "Organic chemistry"
	if c2.CollectionFields != want || !c2.GarbageCollect || c2.ID != c1.ID {
		e.t.Fatalf("UpdateCollection kept the wrong fields: %+v, want %+v gc true", c2, want)
	}

	// Same values, or nothing at all: no new version.
	for _, p := range []index.CollectionPatch{
		{},
		{Description: ptr("Organic chemistry")},
		{Name: ptr("Chemistry"), Owner: ptr("owner"), GarbageCollect: ptr(true)},
	} {
		c, created := update(p)
		if created {
			e.t.Fatalf("UpdateCollection(%+v) without a change created version %d", p, c.Version)
		}
		e.wantCollection("UpdateCollection without a change returns the latest", c, c2)
	}

	// Every field can change, and an empty string is a value, not "keep".
	c3, created := update(index.CollectionPatch{Name: ptr("Chem"), Owner: ptr(""), Author: ptr("B"), License: ptr("MIT"), GarbageCollect: ptr(false)})
	if !created || c3.Version != 3 {
		e.t.Fatalf("UpdateCollection = v%d created %v, want v3", c3.Version, created)
	}
	want = index.CollectionFields{Name: "Chem", Description: "Organic chemistry", Owner: "", Author: "B", License: "MIT"}
	if c3.CollectionFields != want || c3.GarbageCollect {
		e.t.Fatalf("version 3 = %+v, want %+v gc false", c3, want)
	}
	got, err := e.s.Collection(e.ctx, c1.ID, 0)
	e.wantOK("Collection", err)
	e.wantCollection("latest after patches", got, c3)

	err = e.update(func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(uuid.New(), index.CollectionPatch{Name: ptr("x")})
		return err
	})
	e.wantErr("UpdateCollection of an unknown uuid", err, index.ErrNotFound)
}

func testCollectionVersions(e *env) {
	c := e.collection("History")
	var all []index.Collection
	all = append(all, c)
	for i := 2; i <= 5; i++ {
		e.must("UpdateCollection", func(tx index.Tx) error {
			c, _, err := tx.UpdateCollection(c.ID, index.CollectionPatch{Description: ptr("take " + string(rune('0'+i)))})
			all = append(all, c)
			return err
		})
	}
	for _, limit := range []int{0, 1, 2, 1000} {
		got := pages(e, "CollectionVersions", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Collection], error) {
			return e.s.CollectionVersions(e.ctx, c.ID, o)
		})
		e.wantVersions("CollectionVersions (newest first)", collectionVersions(got), descending(5))
		for i, g := range got {
			e.wantCollection("CollectionVersions item", g, all[len(all)-1-i])
		}
	}
	for _, want := range all {
		got, err := e.s.Collection(e.ctx, c.ID, want.Version)
		e.wantOK("Collection version", err)
		e.wantCollection("Collection version", got, want)
	}
	_, err := e.s.CollectionVersions(e.ctx, uuid.New(), index.ListOptions{})
	e.wantErr("CollectionVersions of an unknown uuid", err, index.ErrNotFound)
}

func testCollectionDelete(e *env) {
	keep := e.collection("keep")
	c := e.collection("gone")
	e.must("UpdateCollection", func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(c.ID, index.CollectionPatch{Name: ptr("gone 2")})
		return err
	})
	e.must("DeleteCollection", func(tx index.Tx) error { return tx.DeleteCollection(c.ID, false) })
	e.wantCollectionGone(c.ID)
	list := pages(e, "Collections", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Collection], error) {
		return e.s.Collections(e.ctx, o)
	})
	e.wantIDs("Collections after delete", collectionIDs(list), []uuid.UUID{keep.ID})

	err := e.update(func(tx index.Tx) error { return tx.DeleteCollection(c.ID, false) })
	e.wantErr("DeleteCollection twice", err, index.ErrNotFound)
	err = e.update(func(tx index.Tx) error { return tx.DeleteCollection(uuid.New(), true) })
	e.wantErr("DeleteCollection of an unknown uuid", err, index.ErrNotFound)

	// A deleted collection takes nothing new.
	bh := e.blob()
	err = e.update(func(tx index.Tx) error {
		_, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: bh})
		return err
	})
	e.wantErr("CreateUnit in a deleted collection", err, index.ErrNotFound)
	err = e.update(func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(c.ID, index.CollectionPatch{Name: ptr("back")})
		return err
	})
	e.wantErr("UpdateCollection of a deleted collection", err, index.ErrNotFound)
}

// wantCollectionGone checks that a deleted collection is not found anywhere.
func (e *env) wantCollectionGone(id uuid.UUID) {
	e.t.Helper()
	_, err := e.s.Collection(e.ctx, id, 0)
	e.wantErr("Collection after delete", err, index.ErrNotFound)
	_, err = e.s.Collection(e.ctx, id, 1)
	e.wantErr("Collection version 1 after delete", err, index.ErrNotFound)
	_, err = e.s.Kind(e.ctx, id)
	e.wantErr("Kind after delete", err, index.ErrNotFound)
	_, err = e.s.CollectionVersions(e.ctx, id, index.ListOptions{})
	e.wantErr("CollectionVersions after delete", err, index.ErrNotFound)
	_, err = e.s.Units(e.ctx, id, index.ListOptions{})
	e.wantErr("Units after delete", err, index.ErrNotFound)
	_, err = e.s.Assets(e.ctx, id, index.ListOptions{})
	e.wantErr("Assets after delete", err, index.ErrNotFound)
}

func testCollectionDeleteWithContents(e *env) {
	withUnit := e.collection("with a unit")
	u := e.unit(withUnit.ID, "u")
	withAsset := e.collection("with an asset")
	a := e.asset(withAsset.ID, "a")
	withDraft := e.collection("with a draft-only unit")
	d := e.draftUnit(withDraft.ID, "d")
	for _, c := range []uuid.UUID{withUnit.ID, withAsset.ID, withDraft.ID} {
		err := e.update(func(tx index.Tx) error { return tx.DeleteCollection(c, false) })
		e.wantErr("DeleteCollection of a collection with contents", err, index.ErrConflict)
		_, err = e.s.Collection(e.ctx, c, 0)
		e.wantOK("Collection after a refused delete", err)
	}
	e.getUnit(index.Latest(u.ID))
	e.getAsset(index.Latest(a.ID))
	e.getUnit(index.Ref{ID: d.ID, Draft: true})

	// Once emptied, it can go.
	e.wantOK("DeleteEntity", e.deleteEntity(u.ID))
	e.must("DeleteCollection of an emptied collection", func(tx index.Tx) error { return tx.DeleteCollection(withUnit.ID, false) })
	e.wantCollectionGone(withUnit.ID)
}

func testCollectionDeleteRecursive(e *env) {
	c := e.collection("doomed")
	other := e.collection("other")
	target := e.asset(c.ID, "img.png")
	inner := e.unit(c.ID, "inner", assetLink(target.ID, 0))
	outer := e.unit(c.ID, "outer", unitLink(inner.ID, 0), assetLink(target.ID, 1))
	draftOnly := e.draftUnit(c.ID, "draft", unitLink(outer.ID, 0))
	e.nextUnit(outer.ID)
	bystander := e.unit(other.ID, "bystander")

	e.must("DeleteCollection recursive", func(tx index.Tx) error { return tx.DeleteCollection(c.ID, true) })
	e.wantCollectionGone(c.ID)
	for _, id := range []uuid.UUID{target.ID, inner.ID, outer.ID, draftOnly.ID} {
		_, err := e.s.Kind(e.ctx, id)
		e.wantErr("Kind of an entity of a recursively deleted collection", err, index.ErrNotFound)
	}
	_, err := e.s.Unit(e.ctx, index.Ref{ID: draftOnly.ID, Draft: true})
	e.wantErr("draft of a recursively deleted collection", err, index.ErrNotFound)
	_, err = e.s.Unit(e.ctx, index.Ref{ID: outer.ID, Version: 1})
	e.wantErr("old version of a recursively deleted collection", err, index.ErrNotFound)
	e.getUnit(index.Latest(bystander.ID))

	// The names it held are free again.
	c2 := e.collection("doomed")
	e.unit(c2.ID, "inner")
}

func testCollectionDeleteRecursiveLinkedIn(e *env) {
	c := e.collection("linked into")
	other := e.collection("linker")
	target := e.unit(c.ID, "target")
	asset := e.asset(c.ID, "asset")
	linker := e.unit(other.ID, "via latest", unitLink(target.ID, 0))

	err := e.update(func(tx index.Tx) error { return tx.DeleteCollection(c.ID, true) })
	e.wantErr("recursive delete while a unit of another collection links in (latest)", err, index.ErrConflict)
	e.getUnit(index.Latest(target.ID))

	// Moving the link into a draft still blocks.
	e.setLinks(linker.ID)
	e.commitUnit(linker.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{assetLink(asset.ID, 0)}}, true)
	err = e.update(func(tx index.Tx) error { return tx.DeleteCollection(c.ID, true) })
	e.wantErr("recursive delete while a draft of another collection links in", err, index.ErrConflict)
	e.getAsset(index.Latest(asset.ID))

	// Gone from latest and draft: it may go (old versions of the linker may keep their links).
	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(linker.ID) })
	e.must("DeleteCollection recursive", func(tx index.Tx) error { return tx.DeleteCollection(c.ID, true) })
	e.wantCollectionGone(c.ID)
	e.getUnit(index.Latest(linker.ID))
	e.getUnit(index.Ref{ID: linker.ID, Version: 1})
}
