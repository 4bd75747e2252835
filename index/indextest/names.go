package indextest

import (
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var nameTests = []test{
	{"UniqueAcrossUnitsAndAssets", testNamesUnique},
	{"DraftsHoldNames", testNamesDrafts},
	{"FreedByRename", testNamesFreedByRename},
	{"FreedByDelete", testNamesFreedByDelete},
	{"OtherCollections", testNamesOtherCollections},
	{"Unicode", testNamesUnicode},
	{"Filter", testNamesFilter},
}

func (e *env) tryCreateUnit(coll uuid.UUID, name string) error {
	bh := e.blob()
	return e.update(func(tx index.Tx) error {
		_, err := tx.CreateUnit(index.NewUnit{Collection: coll, Name: name, Hash: bh})
		return err
	})
}

func (e *env) tryCreateAsset(coll uuid.UUID, name string) error {
	bh := e.blob()
	return e.update(func(tx index.Tx) error {
		_, err := tx.CreateAsset(index.NewAsset{Collection: coll, Name: name, Hash: bh, MediaType: "text/plain"})
		return err
	})
}

func (e *env) tryRenameUnit(id uuid.UUID, name string, draft bool) error {
	bh := e.blob()
	return e.update(func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(id, index.UnitChange{Hash: bh, Name: &name}, draft)
		return err
	})
}

func testNamesUnique(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "vertical/a.xml")
	a := e.asset(c.ID, "static/a.png")
	e.wantHolder("a second unit with a unit's name", e.tryCreateUnit(c.ID, "vertical/a.xml"), u.ID)
	e.wantHolder("an asset with a unit's name", e.tryCreateAsset(c.ID, "vertical/a.xml"), u.ID)
	e.wantHolder("a unit with an asset's name", e.tryCreateUnit(c.ID, "static/a.png"), a.ID)
	e.wantHolder("a second asset with an asset's name", e.tryCreateAsset(c.ID, "static/a.png"), a.ID)
	// A draft-only entity cannot take a name either.
	bh := e.blob()
	err := e.update(func(tx index.Tx) error {
		_, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Name: "static/a.png", Hash: bh, Draft: true})
		return err
	})
	e.wantHolder("a draft-only unit with an asset's name", err, a.ID)

	// Renaming onto a taken name, as a version or as a draft.
	other := e.unit(c.ID, "other.xml")
	e.wantHolder("renaming a unit onto a taken name", e.tryRenameUnit(other.ID, "static/a.png", false), a.ID)
	e.wantHolder("renaming a unit's draft onto a taken name", e.tryRenameUnit(other.ID, "vertical/a.xml", true), u.ID)
	bh = e.blob()
	err = e.update(func(tx index.Tx) error {
		_, _, err := tx.CommitAsset(a.ID, index.AssetChange{Hash: bh, Name: ptr("other.xml")}, false)
		return err
	})
	e.wantHolder("renaming an asset onto a unit's name", err, other.ID)
	// Keeping one's own name is no conflict.
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("vertical/a.xml")}, false)
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("vertical/a.xml")}, true)

	// No name is not a name: any number of unnamed entities.
	e.unit(c.ID, "")
	e.unit(c.ID, "")
	e.asset(c.ID, "")
	// Names are exact: case and surrounding text differ.
	e.unit(c.ID, "Vertical/A.xml")
	e.unit(c.ID, "vertical/a.xml ")
}

func testNamesDrafts(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "published")
	// The draft renames: both names are held by u.
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("drafted")}, true)
	e.wantHolder("the latest version's name while a draft renames it", e.tryCreateUnit(c.ID, "published"), u.ID)
	e.wantHolder("the draft's name", e.tryCreateAsset(c.ID, "drafted"), u.ID)
	// Replacing the draft with another name frees the old draft name.
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("drafted again")}, true)
	e.wantOK("the name of a replaced draft", e.tryCreateUnit(c.ID, "drafted"))
	e.wantHolder("the replacing draft's name", e.tryCreateUnit(c.ID, "drafted again"), u.ID)
	// Publishing frees the old published name.
	e.must("PublishUnitDraft", func(tx index.Tx) error { _, err := tx.PublishUnitDraft(u.ID); return err })
	e.wantOK("the name given up by publishing a draft", e.tryCreateUnit(c.ID, "published"))
	e.wantHolder("the published draft's name", e.tryCreateUnit(c.ID, "drafted again"), u.ID)

	// A draft-only asset holds its name against units.
	da := e.createAsset(index.NewAsset{Collection: c.ID, Name: "draft.png", MediaType: "image/png", Draft: true})
	e.wantHolder("a draft-only asset's name", e.tryCreateUnit(c.ID, "draft.png"), da.ID)
}

func testNamesFreedByRename(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "old")
	a := e.asset(c.ID, "old.png")
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("new")}, false)
	e.commitAsset(a.ID, index.AssetChange{Hash: e.blob(), Name: ptr("")}, false)
	// Old versions keep their names in history but do not hold them.
	e.wantOK("a name given up by a new unit version", e.tryCreateAsset(c.ID, "old"))
	e.wantOK("a name given up by a new asset version", e.tryCreateUnit(c.ID, "old.png"))
	e.wantHolder("the new name", e.tryCreateUnit(c.ID, "new"), u.ID)
	if v1 := e.getUnit(index.Ref{ID: u.ID, Version: 1}); v1.Name != "old" {
		e.t.Fatalf("version 1 name = %q, want old", v1.Name)
	}
	// Swapping names between two entities takes two steps, each consistent.
	x := e.unit(c.ID, "x")
	y := e.unit(c.ID, "y")
	e.wantHolder("rename x to y", e.tryRenameUnit(x.ID, "y", false), y.ID)
	e.wantOK("rename y to z", e.tryRenameUnit(y.ID, "z", false))
	e.wantOK("rename x to y", e.tryRenameUnit(x.ID, "y", false))
	e.wantOK("rename y to x", e.tryRenameUnit(y.ID, "x", false))
}

func testNamesFreedByDelete(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("u draft")}, true)
	a := e.asset(c.ID, "a")
	d := e.draftUnit(c.ID, "d")
	for _, id := range []uuid.UUID{u.ID, a.ID, d.ID} {
		e.wantOK("DeleteEntity", e.deleteEntity(id))
	}
	for _, name := range []string{"u", "u draft", "a", "d"} {
		e.wantOK("the name "+name+" of a deleted entity", e.tryCreateUnit(c.ID, name))
	}
}

func testNamesOtherCollections(e *env) {
	c1 := e.collection("one")
	c2 := e.collection("two")
	u1 := e.unit(c1.ID, "intro.xml")
	u2 := e.unit(c2.ID, "intro.xml")
	a2 := e.asset(c2.ID, "intro.png")
	a1 := e.asset(c1.ID, "intro.png")
	if u1.ID == u2.ID || a1.ID == a2.ID {
		e.t.Fatal("entities share a uuid")
	}
	e.wantHolder("the name in collection two", e.tryCreateUnit(c2.ID, "intro.xml"), u2.ID)
	e.wantHolder("the name in collection one", e.tryCreateAsset(c1.ID, "intro.png"), a1.ID)
}

func testNamesUnicode(e *env) {
	c := e.collection("강좌")
	names := []string{"강의/소개.xml", "🎬/intro 🎥.mp4", "ﬁ/Å/é.xml", "e\u0301.xml"}
	var ids []uuid.UUID
	for i, n := range names {
		if i%2 == 0 {
			ids = append(ids, e.unit(c.ID, n).ID)
		} else {
			ids = append(ids, e.asset(c.ID, n).ID)
		}
	}
	for i, n := range names {
		e.wantHolder("the unicode name "+n, e.tryCreateUnit(c.ID, n), ids[i])
	}
	// Names are bytes: a different normalization is a different name.
	e.wantOK("é precomposed beside e + combining acute", e.tryCreateUnit(c.ID, "\u00e9.xml"))
	units := pages(e, "Units by a Korean name", index.ListOptions{Name: "강의/소개.xml", HasName: true}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units by a Korean name", unitIDs(units), ids[:1])
	if units[0].Name != "강의/소개.xml" {
		e.t.Fatalf("name read back as %q", units[0].Name)
	}
	assets := pages(e, "Assets by an emoji name", index.ListOptions{Name: "🎬/intro 🎥.mp4", HasName: true}, 0, func(o index.ListOptions) (index.Page[index.Asset], error) {
		return e.s.Assets(e.ctx, c.ID, o)
	})
	e.wantIDs("Assets by an emoji name", assetIDs(assets), ids[1:2])
	if assets[0].Name != "🎬/intro 🎥.mp4" {
		e.t.Fatalf("name read back as %q", assets[0].Name)
	}
	coll, err := e.s.Collection(e.ctx, c.ID, 0)
	e.wantOK("Collection", err)
	if coll.Name != "강좌" {
		e.t.Fatalf("collection name read back as %q", coll.Name)
	}
}

func testNamesFilter(e *env) {
	c := e.collection("c")
	other := e.collection("other")
	u := e.unit(c.ID, "u.xml")
	a := e.asset(c.ID, "a.png")
	e.unit(other.ID, "u.xml")
	renamed := e.unit(c.ID, "before.xml")
	e.commitUnit(renamed.ID, index.UnitChange{Hash: e.blob(), Name: ptr("after.xml")}, false)
	drafted := e.unit(c.ID, "kept.xml")
	e.commitUnit(drafted.ID, index.UnitChange{Hash: e.blob(), Name: ptr("drafted.xml")}, true)

	byName := func(name string) []uuid.UUID {
		e.t.Helper()
		return unitIDs(pages(e, "Units by name "+name, index.ListOptions{Name: name, HasName: true}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.Units(e.ctx, c.ID, o)
		}))
	}
	e.wantIDs("Units named u.xml", byName("u.xml"), []uuid.UUID{u.ID})
	e.wantIDs("Units named a.png (an asset)", byName("a.png"), nil)
	e.wantIDs("Units named nothing known", byName("none.xml"), nil)
	e.wantIDs("Units named like an old version", byName("before.xml"), nil)
	e.wantIDs("Units named like the latest version", byName("after.xml"), []uuid.UUID{renamed.ID})
	e.wantIDs("Units named like a draft (lists show latest versions)", byName("drafted.xml"), nil)
	e.wantIDs("Units named like the latest version of a drafted unit", byName("kept.xml"), []uuid.UUID{drafted.ID})
	assets := pages(e, "Assets named a.png", index.ListOptions{Name: "a.png", HasName: true}, 0, func(o index.ListOptions) (index.Page[index.Asset], error) {
		return e.s.Assets(e.ctx, c.ID, o)
	})
	e.wantIDs("Assets named a.png", assetIDs(assets), []uuid.UUID{a.ID})
	assets = pages(e, "Assets named u.xml", index.ListOptions{Name: "u.xml", HasName: true}, 0, func(o index.ListOptions) (index.Page[index.Asset], error) {
		return e.s.Assets(e.ctx, c.ID, o)
	})
	e.wantIDs("Assets named u.xml (a unit)", assetIDs(assets), nil)
}
