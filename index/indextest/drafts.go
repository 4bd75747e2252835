package indextest

import (
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var draftTests = []test{
	{"CreateDraftOnly", testDraftOnlyInvisible},
	{"ReplaceAndPublish", testDraftReplacePublish},
	{"DeleteDraft", testDraftDelete},
	{"PublishWithoutDraft", testPublishWithoutDraft},
	{"BaseVersion", testDraftBaseVersion},
	{"PublishedFromDraftOnly", testPublishedFromDraftOnly},
	{"Assets", testAssetDrafts},
	{"DeleteDraftOfDraftOnly", testDeleteDraftOfDraftOnly},
}

// testDeleteDraftOfDraftOnly: a draft-only entity is nothing without its
// draft, so deleting the draft deletes the entity, as DeleteEntity would:
// refused while another unit links it, and then its uuid is gone and its
// collection holds nothing.
func testDeleteDraftOfDraftOnly(e *env) {
	c := e.collection("c")
	d := e.draftUnit(c.ID, "d.xml")
	linker := e.unit(c.ID, "linker", index.Link{Target: d.ID})
	err := e.update(func(tx index.Tx) error { return tx.DeleteUnitDraft(d.ID) })
	e.wantErr("DeleteUnitDraft of a linked draft-only unit", err, index.ErrConflict)
	if _, err := e.s.Unit(e.ctx, index.Ref{ID: d.ID, Draft: true}); err != nil {
		e.t.Fatalf("draft after a refused delete: %v", err)
	}
	e.wantOK("DeleteEntity of the linker", e.update(func(tx index.Tx) error { return tx.DeleteEntity(linker.ID) }))
	e.wantOK("DeleteUnitDraft", e.update(func(tx index.Tx) error { return tx.DeleteUnitDraft(d.ID) }))
	_, err = e.s.Kind(e.ctx, d.ID)
	e.wantErr("Kind of a draft-only unit whose draft was deleted", err, index.ErrNotFound)
	e.wantOK("DeleteCollection (nothing left in it)", e.update(func(tx index.Tx) error { return tx.DeleteCollection(c.ID, false) }))
}

func testDraftOnlyInvisible(e *env) {
	c := e.collection("c")
	target := e.asset(c.ID, "t.png")
	before := e.clock.Peek()
	d := e.createUnit(index.NewUnit{Collection: c.ID, Name: "draft.xml", Links: []index.Link{{Target: target.ID}}, Draft: true})
	if d.Version != 0 || d.Name != "draft.xml" || d.Collection != c.ID {
		e.t.Fatalf("CreateUnit draft = %s", fmtUnit(d))
	}
	e.within("draft created_at", d.CreatedAt, before, e.clock.Peek())
	e.wantLinks("draft links", d.Links, []index.Link{assetLink(target.ID, 0)})

	// Reachable through @draft and Kind.
	e.wantUnit("Unit(@draft)", e.getUnit(index.Ref{ID: d.ID, Draft: true}), d)
	if k, err := e.s.Kind(e.ctx, d.ID); err != nil || k != index.KindUnit {
		e.t.Fatalf("Kind(draft-only) = %v, %v", k, err)
	}
	// Invisible to bare reads, version reads, lists, history and LinkedBy.
	_, err := e.s.Unit(e.ctx, index.Latest(d.ID))
	e.wantErr("Unit(latest) of a draft-only unit", err, index.ErrNotFound)
	_, err = e.s.Unit(e.ctx, index.Ref{ID: d.ID, Version: 1})
	e.wantErr("Unit(@1) of a draft-only unit", err, index.ErrNotFound)
	_, err = e.s.UnitVersions(e.ctx, d.ID, index.ListOptions{})
	e.wantErr("UnitVersions of a draft-only unit", err, index.ErrNotFound)
	_, err = e.s.LinkedBy(e.ctx, d.ID, index.ListOptions{})
	e.wantErr("LinkedBy of a draft-only unit", err, index.ErrNotFound)
	units := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units with only a draft-only unit", unitIDs(units), nil)
	named := pages(e, "Units by name", index.ListOptions{Name: "draft.xml", HasName: true}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units named like the draft", unitIDs(named), nil)
	// The draft links do not show in LinkedBy of its target.
	lb := pages(e, "LinkedBy", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.LinkingUnit], error) {
		return e.s.LinkedBy(e.ctx, target.ID, o)
	})
	if len(lb) != 0 {
		e.t.Fatalf("LinkedBy(target) lists %d units; a draft's links are not listed", len(lb))
	}

	// It can be a link target, and it holds its name.
	linker := e.unit(c.ID, "linker", index.Link{Target: d.ID})
	e.wantLinks("link to a draft-only unit", linker.Links, []index.Link{unitLink(d.ID, 0)})
	bh := e.blob()
	err = e.update(func(tx index.Tx) error {
		_, err := tx.CreateAsset(index.NewAsset{Collection: c.ID, Name: "draft.xml", Hash: bh, MediaType: "text/xml"})
		return err
	})
	e.wantHolder("an asset named like a draft-only unit", err, d.ID)

	// A draft-only asset too.
	da := e.createAsset(index.NewAsset{Collection: c.ID, Name: "draft.png", MediaType: "image/png", Draft: true})
	if da.Version != 0 {
		e.t.Fatalf("CreateAsset draft version = %d", da.Version)
	}
	e.wantAsset("Asset(@draft)", e.getAsset(index.Ref{ID: da.ID, Draft: true}), da)
	_, err = e.s.Asset(e.ctx, index.Latest(da.ID))
	e.wantErr("Asset(latest) of a draft-only asset", err, index.ErrNotFound)
	_, err = e.s.AssetVersions(e.ctx, da.ID, index.ListOptions{})
	e.wantErr("AssetVersions of a draft-only asset", err, index.ErrNotFound)
	_, err = e.s.LinkedBy(e.ctx, da.ID, index.ListOptions{})
	e.wantErr("LinkedBy of a draft-only asset", err, index.ErrNotFound)
	assets := pages(e, "Assets", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Asset], error) {
		return e.s.Assets(e.ctx, c.ID, o)
	})
	e.wantIDs("Assets (draft-only hidden)", assetIDs(assets), []uuid.UUID{target.ID})
}

func testDraftReplacePublish(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	e.clock.Advance(time1h)
	h1 := e.blob()
	d1, _ := e.commitUnit(u.ID, index.UnitChange{Hash: h1}, true)
	if d1.Version != 0 || d1.Hash != h1 || d1.Name != "u" {
		e.t.Fatalf("draft = %s", fmtUnit(d1))
	}
	// The published version is untouched.
	e.wantUnit("Unit(latest) with a draft", e.getUnit(index.Latest(u.ID)), u)
	hist := pages(e, "UnitVersions", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, u.ID, o)
	})
	e.wantVersions("UnitVersions lists no draft", unitVersions(hist), []int64{1})

	// Replace.
	e.clock.Advance(time1h)
	h2 := e.blob()
	d2, _ := e.commitUnit(u.ID, index.UnitChange{Hash: h2}, true)
	if d2.Version != 0 || d2.Hash != h2 {
		e.t.Fatalf("replaced draft = %s", fmtUnit(d2))
	}
	e.wantUnit("Unit(@draft) after replace", e.getUnit(index.Ref{ID: u.ID, Draft: true}), d2)

	// Publish: the next number, created now.
	e.clock.Advance(time1h)
	before := e.clock.Peek()
	var p index.Unit
	e.must("PublishUnitDraft", func(tx index.Tx) (err error) {
		p, err = tx.PublishUnitDraft(u.ID)
		return err
	})
	e.within("published created_at (the publish time)", p.CreatedAt, before, e.clock.Peek())
	want := d2
	want.Version, want.CreatedAt = 2, p.CreatedAt
	e.wantUnit("PublishUnitDraft", p, want)
	e.wantUnit("Unit(latest) after publish", e.getUnit(index.Latest(u.ID)), want)
	_, err := e.s.Unit(e.ctx, index.Ref{ID: u.ID, Draft: true})
	e.wantErr("Unit(@draft) after publish", err, index.ErrNotFound)
	err = e.update(func(tx index.Tx) error { _, err := tx.PublishUnitDraft(u.ID); return err })
	e.wantErr("PublishUnitDraft twice", err, index.ErrNotFound)

	// Draft then direct commit then publish: numbers never skip.
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	v3 := e.nextUnit(u.ID)
	if v3.Version != 3 {
		e.t.Fatalf("commit with a draft pending = v%d, want 3", v3.Version)
	}
	e.must("PublishUnitDraft", func(tx index.Tx) (err error) {
		p, err = tx.PublishUnitDraft(u.ID)
		return err
	})
	if p.Version != 4 {
		e.t.Fatalf("publish after v3 = v%d, want 4", p.Version)
	}
	hist = pages(e, "UnitVersions", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, u.ID, o)
	})
	e.wantVersions("UnitVersions", unitVersions(hist), descending(4))

	// A draft-only unit publishes as version 1.
	d := e.draftUnit(c.ID, "d")
	e.must("PublishUnitDraft", func(tx index.Tx) (err error) {
		p, err = tx.PublishUnitDraft(d.ID)
		return err
	})
	if p.Version != 1 || p.Name != "d" {
		e.t.Fatalf("publish of a draft-only unit = %s", fmtUnit(p))
	}
	e.wantUnit("Unit(latest) of a published draft-only unit", e.getUnit(index.Latest(d.ID)), p)
	units := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units after publishing a draft-only unit", unitIDs(units), []uuid.UUID{u.ID, d.ID})

	// The entity's creation is its first version's, the draft's: publishing
	// later does not move it behind entities created in between.
	x := e.draftUnit(c.ID, "x")
	y := e.unit(c.ID, "y")
	e.clock.Advance(time1h)
	e.must("PublishUnitDraft", func(tx index.Tx) error { _, err := tx.PublishUnitDraft(x.ID); return err })
	for _, limit := range []int{1, 0} {
		units = pages(e, "Units", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.Units(e.ctx, c.ID, o)
		})
		e.wantIDs("Units ordered by entity creation (a draft's)", unitIDs(units), []uuid.UUID{u.ID, d.ID, x.ID, y.ID})
	}
}

func testDraftDelete(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("draft name")}, true)
	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(u.ID) })
	_, err := e.s.Unit(e.ctx, index.Ref{ID: u.ID, Draft: true})
	e.wantErr("Unit(@draft) after delete", err, index.ErrNotFound)
	e.wantUnit("Unit(latest) after draft delete", e.getUnit(index.Latest(u.ID)), u)
	err = e.update(func(tx index.Tx) error { return tx.DeleteUnitDraft(u.ID) })
	e.wantErr("DeleteUnitDraft without a draft", err, index.ErrNotFound)
	// The draft's name is free again.
	e.unit(c.ID, "draft name")
	// A new draft after the delete.
	d, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	e.wantUnit("new draft", e.getUnit(index.Ref{ID: u.ID, Draft: true}), d)
}

func testPublishWithoutDraft(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	a := e.asset(c.ID, "a")
	err := e.update(func(tx index.Tx) error { _, err := tx.PublishUnitDraft(u.ID); return err })
	e.wantErr("PublishUnitDraft without a draft", err, index.ErrNotFound)
	err = e.update(func(tx index.Tx) error { _, err := tx.PublishAssetDraft(a.ID); return err })
	e.wantErr("PublishAssetDraft without a draft", err, index.ErrNotFound)
	err = e.update(func(tx index.Tx) error { return tx.DeleteAssetDraft(a.ID) })
	e.wantErr("DeleteAssetDraft without a draft", err, index.ErrNotFound)
	e.wantUnit("unit unchanged", e.getUnit(index.Latest(u.ID)), u)
}

// testDraftBaseVersion: a draft write takes omitted fields from the current
// draft if any, else from the latest published version.
func testDraftBaseVersion(e *env) {
	c := e.collection("c")
	t1 := e.asset(c.ID, "t1")
	t2 := e.asset(c.ID, "t2")
	links := []index.Link{assetLink(t1.ID, 0)}
	u := e.createUnit(index.NewUnit{Collection: c.ID, Name: "a", Links: links, GarbageCollect: true})

	// No draft: the base is the latest version.
	d1, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	if d1.Name != "a" || !d1.GarbageCollect {
		e.t.Fatalf("first draft = %s", fmtUnit(d1))
	}
	e.wantLinks("first draft keeps the latest links", d1.Links, links)

	// Change the draft's name, links and flag.
	links2 := []index.Link{assetLink(t2.ID, 1)}
	d2, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Name: ptr("b"), Links: &links2, GarbageCollect: ptr(false)}, true)
	if d2.Name != "b" || d2.GarbageCollect {
		e.t.Fatalf("second draft = %s", fmtUnit(d2))
	}
	// Meanwhile a new published version changes the latest; the draft stays the base.
	e.nextUnit(u.ID)
	d3, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	if d3.Name != "b" || d3.GarbageCollect {
		e.t.Fatalf("third draft (base: the draft) = %s", fmtUnit(d3))
	}
	e.wantLinks("third draft keeps the draft's links", d3.Links, links2)

	// A published version's base is the latest published version, not the draft.
	v3, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, false)
	if v3.Version != 3 || v3.Name != "a" || !v3.GarbageCollect {
		e.t.Fatalf("published version with a draft pending = %s", fmtUnit(v3))
	}
	e.wantLinks("published version keeps the latest links", v3.Links, links)

	// Publishing takes the draft as it is.
	var p index.Unit
	e.must("PublishUnitDraft", func(tx index.Tx) (err error) {
		p, err = tx.PublishUnitDraft(u.ID)
		return err
	})
	if p.Version != 4 || p.Name != "b" || p.GarbageCollect || p.Hash != d3.Hash {
		e.t.Fatalf("published draft = %s", fmtUnit(p))
	}
	e.wantLinks("published draft", p.Links, links2)

	// Omitted links in a draft of a unit whose latest has none stay none;
	// an empty list in a draft removes them.
	d4, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{}}, true)
	if len(d4.Links) != 0 || d4.Name != "b" {
		e.t.Fatalf("draft with links removed = %s", fmtUnit(d4))
	}
}

// testPublishedFromDraftOnly: a published version of a draft-only entity
// takes omitted fields from the draft.
func testPublishedFromDraftOnly(e *env) {
	c := e.collection("c")
	t1 := e.asset(c.ID, "t1")
	links := []index.Link{assetLink(t1.ID, 0)}
	d := e.createUnit(index.NewUnit{Collection: c.ID, Name: "only a draft", Links: links, GarbageCollect: true, Draft: true})
	v1, created := e.commitUnit(d.ID, index.UnitChange{Hash: e.blob()}, false)
	if !created || v1.Version != 1 || v1.Name != "only a draft" || !v1.GarbageCollect {
		e.t.Fatalf("published version of a draft-only unit = %s (created %v)", fmtUnit(v1), created)
	}
	e.wantLinks("published version of a draft-only unit keeps the draft links", v1.Links, links)

	da := e.createAsset(index.NewAsset{Collection: c.ID, Name: "only a draft.png", MediaType: "image/png", GarbageCollect: true, Draft: true})
	a1, created := e.commitAsset(da.ID, index.AssetChange{Hash: e.blob()}, false)
	if !created || a1.Version != 1 || a1.Name != "only a draft.png" || a1.MediaType != "image/png" || !a1.GarbageCollect {
		e.t.Fatalf("published version of a draft-only asset = %+v (created %v)", a1, created)
	}
}

func testAssetDrafts(e *env) {
	c := e.collection("c")
	a := e.createAsset(index.NewAsset{Collection: c.ID, Name: "a.png", MediaType: "image/png"})
	d1, _ := e.commitAsset(a.ID, index.AssetChange{Hash: e.blob(), MediaType: ptr("image/webp")}, true)
	if d1.Version != 0 || d1.Name != "a.png" || d1.MediaType != "image/webp" {
		e.t.Fatalf("asset draft = %+v", d1)
	}
	d2, _ := e.commitAsset(a.ID, index.AssetChange{Hash: e.blob(), Name: ptr("a.webp")}, true)
	if d2.MediaType != "image/webp" || d2.Name != "a.webp" {
		e.t.Fatalf("replaced asset draft (base: the draft) = %+v", d2)
	}
	e.wantAsset("Asset(@draft)", e.getAsset(index.Ref{ID: a.ID, Draft: true}), d2)
	e.wantAsset("Asset(latest) with a draft", e.getAsset(index.Latest(a.ID)), a)
	var p index.Asset
	e.must("PublishAssetDraft", func(tx index.Tx) (err error) {
		p, err = tx.PublishAssetDraft(a.ID)
		return err
	})
	want := d2
	want.Version, want.CreatedAt = 2, p.CreatedAt
	e.wantAsset("PublishAssetDraft", p, want)
	if !p.CreatedAt.After(d2.CreatedAt) {
		e.t.Fatalf("published at %s, not after the draft (%s)", p.CreatedAt, d2.CreatedAt)
	}
	_, err := e.s.Asset(e.ctx, index.Ref{ID: a.ID, Draft: true})
	e.wantErr("Asset(@draft) after publish", err, index.ErrNotFound)

	e.commitAsset(a.ID, index.AssetChange{Hash: e.blob()}, true)
	e.must("DeleteAssetDraft", func(tx index.Tx) error { return tx.DeleteAssetDraft(a.ID) })
	_, err = e.s.Asset(e.ctx, index.Ref{ID: a.ID, Draft: true})
	e.wantErr("Asset(@draft) after delete", err, index.ErrNotFound)
	e.wantAsset("Asset(latest)", e.getAsset(index.Latest(a.ID)), p)
}
