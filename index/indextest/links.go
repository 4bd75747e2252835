package indextest

import (
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var linkTests = []test{
	{"Targets", testLinkTargets},
	{"Normalized", testLinksNormalized},
	{"SelfLink", testLinkSelf},
	{"CycleViaLatest", testLinkCycleLatest},
	{"CycleViaDraft", testLinkCycleDraft},
	{"CycleEdges", testLinkCycleEdges},
}

var linkedByTests = []test{
	{"LatestOnly", testLinkedByLatest},
	{"Pagination", testLinkedByPagination},
}

var deleteTests = []test{
	{"Entity", testDeleteEntity},
	{"LinkedEntity", testDeleteLinked},
}

// tryLinks commits a new version (or draft) of unit id with these links.
func (e *env) tryLinks(id uuid.UUID, draft bool, links ...index.Link) error {
	bh := e.blob()
	return e.update(func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(id, index.UnitChange{Hash: bh, Links: &links}, draft)
		return err
	})
}

// tryNewUnitLinks creates a unit in coll with these links.
func (e *env) tryNewUnitLinks(coll uuid.UUID, links ...index.Link) error {
	bh := e.blob()
	return e.update(func(tx index.Tx) error {
		_, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: bh, Links: links})
		return err
	})
}

func testLinkTargets(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	t := e.unit(c.ID, "t")
	u := e.unit(c.ID, "u")
	gone := e.unit(c.ID, "gone")
	e.wantOK("DeleteEntity", e.deleteEntity(gone.ID))

	for _, tc := range []struct {
		what string
		link index.Link
	}{
		{"a link to an unknown uuid", index.Link{Target: uuid.New()}},
		{"a link to a deleted unit", index.Link{Target: gone.ID}},
		{"a link to a collection", index.Link{Target: c.ID}},
		{"a link to a collection as a unit", index.Link{Target: c.ID, Kind: index.KindUnit}},
		{"a unit link to an asset", index.Link{Target: a.ID, Kind: index.KindUnit}},
		{"an asset link to a unit", index.Link{Target: t.ID, Kind: index.KindAsset}},
		{"a link of kind collection", index.Link{Target: t.ID, Kind: index.KindCollection}},
		{"a link with a negative pin", index.Link{Target: t.ID, Version: -1}},
	} {
		e.wantErr(tc.what+" (new unit)", e.tryNewUnitLinks(c.ID, tc.link), index.ErrInvalid)
		e.wantErr(tc.what+" (new version)", e.tryLinks(u.ID, false, tc.link), index.ErrInvalid)
		e.wantErr(tc.what+" (draft)", e.tryLinks(u.ID, true, tc.link), index.ErrInvalid)
	}
	e.wantUnit("unit after refused links", e.getUnit(index.Latest(u.ID)), u)
	_, err := e.s.Unit(e.ctx, index.Ref{ID: u.ID, Draft: true})
	e.wantErr("no draft after refused links", err, index.ErrNotFound)

	// Kinds may be omitted or given; a pin to a missing version is allowed;
	// links may cross collections.
	other := e.collection("other")
	far := e.asset(other.ID, "far")
	v, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{
		{Target: a.ID}, {Target: t.ID, Kind: index.KindUnit}, {Target: t.ID, Version: 99}, {Target: far.ID, Kind: index.KindAsset, Version: 7},
	}}, false)
	want := []index.Link{assetLink(a.ID, 0), unitLink(t.ID, 0), unitLink(t.ID, 99), assetLink(far.ID, 7)}
	e.wantLinks("links as stored", v.Links, want)
	e.wantLinks("links read back", e.getUnit(index.Latest(u.ID)).Links, want)
}

func testLinksNormalized(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	b := e.asset(c.ID, "b")
	t := e.unit(c.ID, "t")
	in := []index.Link{
		{Target: b.ID}, {Target: a.ID, Version: 2}, {Target: b.ID, Kind: index.KindAsset}, {Target: t.ID},
		{Target: a.ID, Version: 2}, {Target: a.ID}, {Target: t.ID, Kind: index.KindUnit},
	}
	want := []index.Link{assetLink(b.ID, 0), assetLink(a.ID, 2), unitLink(t.ID, 0), assetLink(a.ID, 0)}
	u := e.createUnit(index.NewUnit{Collection: c.ID, Links: in})
	e.wantLinks("CreateUnit normalizes links (first kept, order kept)", u.Links, want)
	e.wantLinks("read back", e.getUnit(index.Latest(u.ID)).Links, want)
	// The same set in its normalized form is an identical version.
	got, created := e.commitUnit(u.ID, index.UnitChange{Hash: u.Hash, Links: &want}, false)
	if created {
		e.t.Fatalf("the normalized form of the same links made version %d", got.Version)
	}
	// Order matters: the writer's order is kept.
	rev := []index.Link{want[3], want[2], want[1], want[0]}
	got, created = e.commitUnit(u.ID, index.UnitChange{Hash: u.Hash, Links: &rev}, false)
	if !created {
		e.t.Fatal("reordered links made no new version")
	}
	e.wantLinks("reordered links", got.Links, rev)
	d, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Links: &in}, true)
	e.wantLinks("a draft normalizes links", d.Links, want)
}

func testLinkSelf(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	e.wantErr("a self-link", e.tryLinks(u.ID, false, index.Link{Target: u.ID}), index.ErrInvalid)
	e.wantErr("a pinned self-link", e.tryLinks(u.ID, false, index.Link{Target: u.ID, Version: 1}), index.ErrInvalid)
	e.wantErr("a self-link in a draft", e.tryLinks(u.ID, true, index.Link{Target: u.ID}), index.ErrInvalid)
	d := e.draftUnit(c.ID, "d")
	e.wantErr("a self-link of a draft-only unit", e.tryLinks(d.ID, true, index.Link{Target: d.ID}), index.ErrInvalid)
	e.wantErr("a self-link of a draft-only unit's first version", e.tryLinks(d.ID, false, index.Link{Target: d.ID}), index.ErrInvalid)
}

func testLinkCycleLatest(e *env) {
	c := e.collection("c")
	// a → b → c3 through latest versions, one of them pinned.
	c3 := e.unit(c.ID, "c3")
	b := e.unit(c.ID, "b", index.Link{Target: c3.ID, Version: 1})
	a := e.unit(c.ID, "a", index.Link{Target: b.ID})
	e.wantErr("b → a closes a → b", e.tryLinks(b.ID, false, index.Link{Target: a.ID}), index.ErrInvalid)
	e.wantErr("c3 → a closes a → b → c3", e.tryLinks(c3.ID, false, index.Link{Target: a.ID}), index.ErrInvalid)
	e.wantErr("c3 → a pinned closes a → b → c3", e.tryLinks(c3.ID, false, index.Link{Target: a.ID, Version: 1}), index.ErrInvalid)
	e.wantErr("c3's draft → a closes a → b → c3", e.tryLinks(c3.ID, true, index.Link{Target: a.ID}), index.ErrInvalid)
	e.wantErr("c3 → b closes b → c3", e.tryLinks(c3.ID, false, index.Link{Target: b.ID}), index.ErrInvalid)
	// Links that close nothing.
	e.wantOK("a → c3 (a diamond, not a cycle)", e.tryLinks(a.ID, false, index.Link{Target: b.ID}, index.Link{Target: c3.ID}))
	x := e.unit(c.ID, "x", index.Link{Target: a.ID})
	e.wantOK("c3 → a new unit", e.tryLinks(c3.ID, false, index.Link{Target: e.unit(c.ID, "leaf").ID}))
	// Once b no longer links c3, c3 → a is allowed (b's old version does not count).
	e.setLinks(b.ID)
	e.setLinks(a.ID, index.Link{Target: b.ID})
	e.wantOK("c3 → a after the path a → c3 is gone", e.tryLinks(c3.ID, false, index.Link{Target: a.ID}))
	// And now a → c3 would close c3 → a.
	e.wantErr("a → c3 closes c3 → a", e.tryLinks(a.ID, false, index.Link{Target: c3.ID}), index.ErrInvalid)
	e.wantErr("b → x closes x → a → b", e.tryLinks(b.ID, false, index.Link{Target: x.ID}), index.ErrInvalid)
}

func testLinkCycleDraft(e *env) {
	c := e.collection("c")
	b := e.unit(c.ID, "b")
	a := e.unit(c.ID, "a")
	// a's draft links b; a's latest does not.
	e.wantOK("a's draft → b", e.tryLinks(a.ID, true, index.Link{Target: b.ID}))
	e.wantErr("b → a closes a's draft → b", e.tryLinks(b.ID, false, index.Link{Target: a.ID}), index.ErrInvalid)
	e.wantErr("b's draft → a closes a's draft → b", e.tryLinks(b.ID, true, index.Link{Target: a.ID}), index.ErrInvalid)
	// A draft-only unit's links are edges too.
	d := e.draftUnit(c.ID, "d", index.Link{Target: a.ID})
	e.wantErr("b → d closes d → a → b", e.tryLinks(b.ID, false, index.Link{Target: d.ID}), index.ErrInvalid)
	// Creating a unit cannot close a cycle (nothing links a new unit yet).
	e.wantOK("new unit → d", e.tryNewUnitLinks(c.ID, index.Link{Target: d.ID}))
	// Delete the draft: the edge is gone.
	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(a.ID) })
	e.wantOK("b → a after a's draft is deleted", e.tryLinks(b.ID, false, index.Link{Target: a.ID}))
	e.wantErr("a's draft → b closes b → a", e.tryLinks(a.ID, true, index.Link{Target: b.ID}), index.ErrInvalid)
}

// testLinkCycleEdges: a pinned version's own links are not followed; only
// latest versions and drafts make edges.
func testLinkCycleEdges(e *env) {
	c := e.collection("c")
	z := e.unit(c.ID, "z")
	b := e.unit(c.ID, "b", index.Link{Target: z.ID}) // b@1 → z
	e.setLinks(b.ID)                                 // b@2 links nothing
	a := e.unit(c.ID, "a", index.Link{Target: b.ID, Version: 1})
	// Edges: a → b; b's latest has no links; so z → a closes nothing.
	e.wantOK("z → a (a pins b@1, whose links are not followed)", e.tryLinks(z.ID, false, index.Link{Target: a.ID}))
	// Long chain: each link is allowed, the closing one is not.
	chain := []index.Unit{e.unit(c.ID, "n0")}
	for i := 1; i < 12; i++ {
		chain = append(chain, e.unit(c.ID, "n"+string(rune('a'+i)), index.Link{Target: chain[i-1].ID}))
	}
	e.wantErr("closing a chain of 12", e.tryLinks(chain[0].ID, false, index.Link{Target: chain[11].ID}), index.ErrInvalid)
	e.wantErr("closing a chain of 12 in a draft", e.tryLinks(chain[0].ID, true, index.Link{Target: chain[11].ID, Version: 1}), index.ErrInvalid)
	e.wantOK("linking the chain's end from a new unit", e.tryNewUnitLinks(c.ID, index.Link{Target: chain[11].ID}))
	// Asset links never make cycles.
	as := e.asset(c.ID, "as")
	e.wantOK("asset links", e.tryLinks(chain[0].ID, false, index.Link{Target: as.ID}))
}

func testLinkedByLatest(e *env) {
	c := e.collection("c")
	other := e.collection("other")
	t := e.unit(c.ID, "t")
	a := e.asset(c.ID, "a")
	plain := e.unit(c.ID, "plain", index.Link{Target: t.ID}, index.Link{Target: a.ID})
	pinned := e.unit(other.ID, "pinned", index.Link{Target: t.ID, Version: 1}, index.Link{Target: a.ID, Version: 3})
	old := e.unit(c.ID, "old", index.Link{Target: t.ID})
	e.setLinks(old.ID) // its latest no longer links
	drafted := e.unit(c.ID, "drafted")
	e.commitUnit(drafted.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{{Target: t.ID}}}, true)
	e.draftUnit(c.ID, "draft-only", index.Link{Target: t.ID})
	relinked := e.unit(c.ID, "relinked")
	latestRelinked := e.setLinks(relinked.ID, index.Link{Target: t.ID})

	got := pages(e, "LinkedBy(t)", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.LinkingUnit], error) {
		return e.s.LinkedBy(e.ctx, t.ID, o)
	})
	if len(got) != 3 {
		e.t.Fatalf("LinkedBy(t) has %d items, want plain, pinned, relinked", len(got))
	}
	e.wantUnit("LinkedBy item 0", got[0].Unit, plain)
	e.wantUnit("LinkedBy item 1", got[1].Unit, pinned)
	e.wantUnit("LinkedBy item 2 (its latest version)", got[2].Unit, latestRelinked)
	if got[0].LinkVersion != 0 || got[1].LinkVersion != 1 || got[2].LinkVersion != 0 {
		e.t.Fatalf("LinkVersions = %d %d %d, want 0 1 0", got[0].LinkVersion, got[1].LinkVersion, got[2].LinkVersion)
	}
	ga := pages(e, "LinkedBy(a)", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.LinkingUnit], error) {
		return e.s.LinkedBy(e.ctx, a.ID, o)
	})
	if len(ga) != 2 || ga[0].ID != plain.ID || ga[1].ID != pinned.ID || ga[0].LinkVersion != 0 || ga[1].LinkVersion != 3 {
		e.t.Fatalf("LinkedBy(asset) = %+v, want plain (unpinned), pinned (@3)", ga)
	}
	// An entity nothing links has an empty list.
	none := pages(e, "LinkedBy(plain)", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.LinkingUnit], error) {
		return e.s.LinkedBy(e.ctx, plain.ID, o)
	})
	if len(none) != 0 {
		e.t.Fatalf("LinkedBy of an unlinked unit has %d items", len(none))
	}
	// A collection is not a link target.
	_, err := e.s.LinkedBy(e.ctx, c.ID, index.ListOptions{})
	e.wantErr("LinkedBy(collection)", err, index.ErrNotFound)
}

func testLinkedByPagination(e *env) {
	c := e.collection("c")
	t := e.asset(c.ID, "t")
	var want []uuid.UUID
	for i := range 5 {
		u := e.unit(c.ID, "", index.Link{Target: t.ID, Version: int64(i)})
		want = append(want, u.ID)
		e.unit(c.ID, "") // not a linker
	}
	for _, limit := range []int{1, 2, 5, 0} {
		got := pages(e, "LinkedBy", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.LinkingUnit], error) {
			return e.s.LinkedBy(e.ctx, t.ID, o)
		})
		ids := make([]uuid.UUID, len(got))
		for i, g := range got {
			ids[i] = g.ID
			if g.LinkVersion != int64(i) {
				e.t.Fatalf("LinkedBy item %d LinkVersion = %d", i, g.LinkVersion)
			}
		}
		e.wantIDs("LinkedBy pages", ids, want)
	}
	_, err := e.s.LinkedBy(e.ctx, t.ID, index.ListOptions{Cursor: "not a cursor"})
	e.wantErr("LinkedBy with a bad cursor", err, index.ErrInvalid)
	_, err = e.s.LinkedBy(e.ctx, t.ID, index.ListOptions{Limit: index.MaxLimit + 1})
	e.wantErr("LinkedBy with a bad limit", err, index.ErrInvalid)
}

func testDeleteEntity(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	u := e.unit(c.ID, "u", index.Link{Target: a.ID})
	e.nextUnit(u.ID)
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	keep := e.unit(c.ID, "keep")
	e.wantOK("DeleteEntity(unit with versions, draft and links)", e.deleteEntity(u.ID))
	e.wantEntityGone(u.ID, index.KindUnit)
	e.wantErr("DeleteEntity twice", e.deleteEntity(u.ID), index.ErrNotFound)
	// Its target is free to go now.
	e.wantOK("DeleteEntity(asset)", e.deleteEntity(a.ID))
	e.wantEntityGone(a.ID, index.KindAsset)
	units := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units after delete", unitIDs(units), []uuid.UUID{keep.ID})
	// A draft-only entity can be deleted.
	d := e.draftUnit(c.ID, "d")
	e.wantOK("DeleteEntity(draft-only)", e.deleteEntity(d.ID))
	e.wantEntityGone(d.ID, index.KindUnit)
	// A collection is not deleted through DeleteEntity.
	if err := e.deleteEntity(c.ID); err == nil {
		e.t.Fatal("DeleteEntity(collection) succeeded")
	}
	_, err := e.s.Collection(e.ctx, c.ID, 0)
	e.wantOK("collection after DeleteEntity(collection)", err)
}

// wantEntityGone checks that a deleted unit or asset is not found anywhere.
func (e *env) wantEntityGone(id uuid.UUID, kind index.Kind) {
	e.t.Helper()
	_, err := e.s.Kind(e.ctx, id)
	e.wantErr("Kind of a deleted entity", err, index.ErrNotFound)
	for _, ref := range []index.Ref{index.Latest(id), {ID: id, Version: 1}, {ID: id, Draft: true}} {
		if kind == index.KindUnit {
			_, err = e.s.Unit(e.ctx, ref)
		} else {
			_, err = e.s.Asset(e.ctx, ref)
		}
		e.wantErr("read "+ref.String()+" of a deleted entity", err, index.ErrNotFound)
	}
	if kind == index.KindUnit {
		_, err = e.s.UnitVersions(e.ctx, id, index.ListOptions{})
	} else {
		_, err = e.s.AssetVersions(e.ctx, id, index.ListOptions{})
	}
	e.wantErr("history of a deleted entity", err, index.ErrNotFound)
	_, err = e.s.LinkedBy(e.ctx, id, index.ListOptions{})
	e.wantErr("LinkedBy of a deleted entity", err, index.ErrNotFound)
	out, err := e.s.Lookup(e.ctx, []index.Ref{index.Latest(id), {ID: id, Draft: true}})
	e.wantOK("Lookup", err)
	for _, o := range out {
		if o.Kind != 0 {
			e.t.Fatalf("Lookup finds a deleted entity: %+v", o)
		}
	}
	bh := e.blob()
	err = e.update(func(tx index.Tx) error {
		if kind == index.KindUnit {
			_, _, err := tx.CommitUnit(id, index.UnitChange{Hash: bh}, false)
			return err
		}
		_, _, err := tx.CommitAsset(id, index.AssetChange{Hash: bh}, false)
		return err
	})
	e.wantErr("commit to a deleted entity", err, index.ErrNotFound)
	bh = e.blob()
	e.wantErr("a link to a deleted entity", e.update(func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{})
		if err != nil {
			return err
		}
		_, err = tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: bh, Links: []index.Link{{Target: id}}})
		return err
	}), index.ErrInvalid)
}

func testDeleteLinked(e *env) {
	c := e.collection("c")
	other := e.collection("other")
	t := e.unit(c.ID, "t")
	a := e.asset(c.ID, "a")
	viaLatest := e.unit(other.ID, "via latest", index.Link{Target: t.ID, Version: 1})
	viaDraft := e.unit(c.ID, "via draft")
	e.commitUnit(viaDraft.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{{Target: a.ID}}}, true)

	e.wantHolder("delete a unit that a latest version links", e.deleteEntity(t.ID), viaLatest.ID)
	e.wantHolder("delete an asset that a draft links", e.deleteEntity(a.ID), viaDraft.ID)
	e.getUnit(index.Latest(t.ID))
	e.getAsset(index.Latest(a.ID))

	// The latest drops the link but a draft takes it up: still refused.
	e.setLinks(viaLatest.ID)
	e.wantOK("draft → t", e.tryLinks(viaLatest.ID, true, index.Link{Target: t.ID}))
	e.wantHolder("delete a unit that a draft links", e.deleteEntity(t.ID), viaLatest.ID)
	// A draft-only unit's links count too.
	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(viaLatest.ID) })
	d := e.draftUnit(c.ID, "draft-only", index.Link{Target: t.ID})
	e.wantHolder("delete a unit that a draft-only unit links", e.deleteEntity(t.ID), d.ID)
	e.wantOK("DeleteEntity(draft-only linker)", e.deleteEntity(d.ID))

	// Only old versions link t now: it may go.
	e.wantOK("delete a unit that only old versions link", e.deleteEntity(t.ID))
	e.wantEntityGone(t.ID, index.KindUnit)
	// The old version keeps its (now dangling) link.
	e.wantLinks("old version's links", e.getUnit(index.Ref{ID: viaLatest.ID, Version: 1}).Links, []index.Link{unitLink(t.ID, 1)})

	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(viaDraft.ID) })
	e.wantOK("delete an asset no latest version or draft links", e.deleteEntity(a.ID))
	e.wantEntityGone(a.ID, index.KindAsset)

	// A unit's own links never block deleting it.
	x := e.asset(c.ID, "x")
	linker := e.unit(c.ID, "linker", index.Link{Target: x.ID})
	e.wantOK("delete a unit that links", e.deleteEntity(linker.ID))
	e.wantOK("delete its former target", e.deleteEntity(x.ID))
}
