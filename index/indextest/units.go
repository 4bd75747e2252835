package indextest

import (
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var unitTests = []test{
	{"Create", testUnitCreate},
	{"NextVersions", testUnitNextVersions},
	{"OmittedFieldsKeep", testUnitOmittedFields},
	{"IdenticalVersion", testUnitIdentical},
	{"UnknownEntities", testUnitUnknown},
}

var assetTests = []test{
	{"Create", testAssetCreate},
	{"NextVersions", testAssetNextVersions},
	{"IdenticalVersion", testAssetIdentical},
}

func testUnitCreate(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a.png")
	t1 := e.unit(c.ID, "t1")
	h, size := e.blobSized(4242)
	before := e.clock.Peek()
	var u index.Unit
	e.must("CreateUnit", func(tx index.Tx) (err error) {
		u, err = tx.CreateUnit(index.NewUnit{
			Collection:     c.ID,
			Name:           "vertical/intro.xml",
			Hash:           h,
			Links:          []index.Link{{Target: a.ID}, {Target: t1.ID, Version: 1}, {Target: a.ID, Kind: index.KindAsset}},
			GarbageCollect: true,
		})
		return err
	})
	e.within("created_at", u.CreatedAt, before, e.clock.Peek())
	want := index.Unit{
		ID: u.ID, Collection: c.ID, Name: "vertical/intro.xml", Version: 1, CreatedAt: u.CreatedAt,
		Hash: h, Size: size, GarbageCollect: true,
		Links: []index.Link{assetLink(a.ID, 0), unitLink(t1.ID, 1)},
	}
	if u.ID == uuid.Nil {
		e.t.Fatal("CreateUnit gave no uuid")
	}
	e.wantUnit("CreateUnit (kinds filled in, duplicates dropped, size from the registry)", u, want)
	e.wantUnit("Unit(latest)", e.getUnit(index.Latest(u.ID)), want)
	e.wantUnit("Unit(@1)", e.getUnit(index.Ref{ID: u.ID, Version: 1}), want)
	_, err := e.s.Unit(e.ctx, index.Ref{ID: u.ID, Draft: true})
	e.wantErr("Unit(@draft) without a draft", err, index.ErrNotFound)
	_, err = e.s.Unit(e.ctx, index.Ref{ID: u.ID, Version: 2})
	e.wantErr("Unit(@2)", err, index.ErrNotFound)
	k, err := e.s.Kind(e.ctx, u.ID)
	if err != nil || k != index.KindUnit {
		e.t.Fatalf("Kind = %v, %v; want unit", k, err)
	}
	_, err = e.s.Asset(e.ctx, index.Latest(u.ID))
	e.wantErr("Asset(unit uuid)", err, index.ErrNotFound)
	_, err = e.s.Collection(e.ctx, u.ID, 0)
	e.wantErr("Collection(unit uuid)", err, index.ErrNotFound)

	// Listed in its collection, with its history.
	list := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units", unitIDs(list), []uuid.UUID{t1.ID, u.ID})
	e.wantUnit("Units item", list[1], want)
	hist := pages(e, "UnitVersions", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, u.ID, o)
	})
	e.wantVersions("UnitVersions", unitVersions(hist), []int64{1})

	// A unit with no name and no links.
	bare := e.unit(c.ID, "")
	if bare.Name != "" || len(bare.Links) != 0 || bare.GarbageCollect {
		e.t.Fatalf("bare unit = %s", fmtUnit(bare))
	}
}

func testUnitNextVersions(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	all := []index.Unit{u}
	for i := 2; i <= 6; i++ {
		e.clock.Advance(time1h)
		before := e.clock.Peek()
		h, size := e.blobSized(int64(1000 + i))
		v, created := e.commitUnit(u.ID, index.UnitChange{Hash: h}, false)
		if !created || v.Version != int64(i) || v.Hash != h || v.Size != size {
			e.t.Fatalf("commit %d = %s created %v", i, fmtUnit(v), created)
		}
		e.within("created_at", v.CreatedAt, before, e.clock.Peek())
		all = append(all, v)
	}
	e.wantUnit("Unit(latest)", e.getUnit(index.Latest(u.ID)), all[5])
	for _, want := range all {
		e.wantUnit("Unit(@N)", e.getUnit(index.Ref{ID: u.ID, Version: want.Version}), want)
	}
	hist := pages(e, "UnitVersions", index.ListOptions{}, 2, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, u.ID, o)
	})
	e.wantVersions("UnitVersions", unitVersions(hist), descending(6))
	for i, h := range hist {
		e.wantUnit("UnitVersions item", h, all[5-i])
	}
	// The list shows the latest version, where the entity was created.
	list := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	if len(list) != 1 {
		e.t.Fatalf("Units has %d items, want 1", len(list))
	}
	e.wantUnit("Units item is the latest version", list[0], all[5])
}

func testUnitOmittedFields(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	b := e.asset(c.ID, "b")
	links := []index.Link{assetLink(a.ID, 0), assetLink(b.ID, 1)}
	u := e.createUnit(index.NewUnit{Collection: c.ID, Name: "kept", Links: links, GarbageCollect: true})

	// Only a hash: name, links and flag kept.
	v2, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, false)
	if v2.Version != 2 || v2.Name != "kept" || !v2.GarbageCollect || v2.Collection != c.ID {
		e.t.Fatalf("version 2 = %s", fmtUnit(v2))
	}
	e.wantLinks("version 2 keeps the links", v2.Links, links)

	// A nil *[]Link keeps, a pointer to nil keeps nothing... a pointer to an empty slice removes all.
	v3, _ := e.commitUnit(u.ID, index.UnitChange{Hash: v2.Hash, Links: &[]index.Link{}}, false)
	if v3.Version != 3 || len(v3.Links) != 0 || v3.Name != "kept" || !v3.GarbageCollect {
		e.t.Fatalf("version 3 (links removed) = %s", fmtUnit(v3))
	}
	e.wantUnit("stored version 3", e.getUnit(index.Ref{ID: u.ID, Version: 3}), v3)

	// Name and flag change; the links stay removed; an empty name removes the name.
	v4, _ := e.commitUnit(u.ID, index.UnitChange{Hash: v3.Hash, Name: ptr("renamed"), GarbageCollect: ptr(false)}, false)
	if v4.Version != 4 || v4.Name != "renamed" || v4.GarbageCollect || len(v4.Links) != 0 {
		e.t.Fatalf("version 4 = %s", fmtUnit(v4))
	}
	v5, _ := e.commitUnit(u.ID, index.UnitChange{Hash: v4.Hash, Name: ptr("")}, false)
	if v5.Version != 5 || v5.Name != "" {
		e.t.Fatalf("version 5 (name removed) = %s", fmtUnit(v5))
	}
	// Links come back.
	v6, _ := e.commitUnit(u.ID, index.UnitChange{Hash: v5.Hash, Links: &links}, false)
	e.wantLinks("version 6", v6.Links, links)
	// The old versions are unchanged.
	e.wantUnit("version 2 after later commits", e.getUnit(index.Ref{ID: u.ID, Version: 2}), v2)
	e.wantUnit("version 1 after later commits", e.getUnit(index.Ref{ID: u.ID, Version: 1}), u)
}

func testUnitIdentical(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	u := e.createUnit(index.NewUnit{Collection: c.ID, Name: "same", Links: []index.Link{{Target: a.ID}}, GarbageCollect: true})
	for _, ch := range []index.UnitChange{
		{Hash: u.Hash},
		{Hash: u.Hash, Name: ptr("same"), GarbageCollect: ptr(true)},
		{Hash: u.Hash, Links: &[]index.Link{{Target: a.ID}, {Target: a.ID, Kind: index.KindAsset}}},
	} {
		got, created := e.commitUnit(u.ID, ch, false)
		if created {
			e.t.Fatalf("an identical version was created: %s", fmtUnit(got))
		}
		e.wantUnit("an identical version answers the latest", got, u)
	}
	hist := pages(e, "UnitVersions", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, u.ID, o)
	})
	e.wantVersions("UnitVersions after identical commits", unitVersions(hist), []int64{1})
	// Any difference makes a version: the flag, the pin of a link, the hash.
	v2, created := e.commitUnit(u.ID, index.UnitChange{Hash: u.Hash, GarbageCollect: ptr(false)}, false)
	if !created || v2.Version != 2 {
		e.t.Fatalf("a new flag: v%d created %v", v2.Version, created)
	}
	v3, created := e.commitUnit(u.ID, index.UnitChange{Hash: u.Hash, Links: &[]index.Link{{Target: a.ID, Version: 1}}}, false)
	if !created || v3.Version != 3 {
		e.t.Fatalf("a new pin: v%d created %v", v3.Version, created)
	}
	// Identical to an older version but not to the latest is a new version.
	v4, created := e.commitUnit(u.ID, index.UnitChange{Hash: u.Hash, Links: &[]index.Link{{Target: a.ID}}, GarbageCollect: ptr(true)}, false)
	if !created || v4.Version != 4 {
		e.t.Fatalf("back to version 1's content: v%d created %v", v4.Version, created)
	}
}

func testUnitUnknown(e *env) {
	c := e.collection("c")
	a := e.asset(c.ID, "a")
	h := e.blob()
	for _, tc := range []struct {
		what string
		fn   func(tx index.Tx) error
	}{
		{"CommitUnit of an unknown uuid", func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(uuid.New(), index.UnitChange{Hash: h}, false)
			return err
		}},
		{"CommitUnit draft of an unknown uuid", func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(uuid.New(), index.UnitChange{Hash: h}, true)
			return err
		}},
		{"CommitUnit of an asset", func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(a.ID, index.UnitChange{Hash: h}, false)
			return err
		}},
		{"CommitUnit of a collection", func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(c.ID, index.UnitChange{Hash: h}, false)
			return err
		}},
		{"CommitAsset of an unknown uuid", func(tx index.Tx) error {
			_, _, err := tx.CommitAsset(uuid.New(), index.AssetChange{Hash: h}, false)
			return err
		}},
		{"CreateUnit in an unknown collection", func(tx index.Tx) error {
			_, err := tx.CreateUnit(index.NewUnit{Collection: uuid.New(), Hash: h})
			return err
		}},
		{"CreateAsset in an unknown collection", func(tx index.Tx) error {
			_, err := tx.CreateAsset(index.NewAsset{Collection: uuid.New(), Hash: h, MediaType: "text/plain"})
			return err
		}},
		{"CreateUnit in a unit", func(tx index.Tx) error {
			_, err := tx.CreateUnit(index.NewUnit{Collection: a.ID, Hash: h})
			return err
		}},
		{"PublishUnitDraft of an unknown uuid", func(tx index.Tx) error {
			_, err := tx.PublishUnitDraft(uuid.New())
			return err
		}},
		{"DeleteUnitDraft of an unknown uuid", func(tx index.Tx) error { return tx.DeleteUnitDraft(uuid.New()) }},
		{"DeleteEntity of an unknown uuid", func(tx index.Tx) error { return tx.DeleteEntity(uuid.New()) }},
	} {
		e.wantErr(tc.what, e.update(tc.fn), index.ErrNotFound)
	}
	for _, fn := range []func() error{
		func() error { _, err := e.s.Unit(e.ctx, index.Latest(uuid.New())); return err },
		func() error { _, err := e.s.Unit(e.ctx, index.Ref{ID: uuid.New(), Draft: true}); return err },
		func() error { _, err := e.s.UnitVersions(e.ctx, uuid.New(), index.ListOptions{}); return err },
		func() error { _, err := e.s.AssetVersions(e.ctx, uuid.New(), index.ListOptions{}); return err },
		func() error { _, err := e.s.Units(e.ctx, uuid.New(), index.ListOptions{}); return err },
		func() error { _, err := e.s.LinkedBy(e.ctx, uuid.New(), index.ListOptions{}); return err },
		func() error { _, err := e.s.UnitVersions(e.ctx, a.ID, index.ListOptions{}); return err },
	} {
		e.wantErr("read of an unknown uuid", fn(), index.ErrNotFound)
	}
}

func testAssetCreate(e *env) {
	c := e.collection("c")
	h, size := e.blobSized(1 << 40)
	before := e.clock.Peek()
	a := e.createAsset(index.NewAsset{Collection: c.ID, Name: "static/intro.mp4", MediaType: "video/mp4", Hash: h, GarbageCollect: true})
	e.within("created_at", a.CreatedAt, before, e.clock.Peek())
	want := index.Asset{ID: a.ID, Collection: c.ID, Name: "static/intro.mp4", MediaType: "video/mp4", Version: 1,
		CreatedAt: a.CreatedAt, Hash: h, Size: size, GarbageCollect: true}
	e.wantAsset("CreateAsset (size from the registry)", a, want)
	e.wantAsset("Asset(latest)", e.getAsset(index.Latest(a.ID)), want)
	e.wantAsset("Asset(@1)", e.getAsset(index.Ref{ID: a.ID, Version: 1}), want)
	_, err := e.s.Asset(e.ctx, index.Ref{ID: a.ID, Draft: true})
	e.wantErr("Asset(@draft) without a draft", err, index.ErrNotFound)
	k, err := e.s.Kind(e.ctx, a.ID)
	if err != nil || k != index.KindAsset {
		e.t.Fatalf("Kind = %v, %v; want asset", k, err)
	}
	_, err = e.s.Unit(e.ctx, index.Latest(a.ID))
	e.wantErr("Unit(asset uuid)", err, index.ErrNotFound)
	list := pages(e, "Assets", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Asset], error) {
		return e.s.Assets(e.ctx, c.ID, o)
	})
	e.wantIDs("Assets", assetIDs(list), []uuid.UUID{a.ID})
	e.wantAsset("Assets item", list[0], want)
	units := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units of a collection with only an asset", unitIDs(units), nil)
}

func testAssetNextVersions(e *env) {
	c := e.collection("c")
	a := e.createAsset(index.NewAsset{Collection: c.ID, Name: "doc.pdf", MediaType: "application/pdf", GarbageCollect: true})
	all := []index.Asset{a}
	// Omitted fields keep the latest version's values.
	h2, s2 := e.blobSized(2)
	v2, created := e.commitAsset(a.ID, index.AssetChange{Hash: h2}, false)
	want := a
	want.Version, want.CreatedAt, want.Hash, want.Size = 2, v2.CreatedAt, h2, s2
	if !created {
		e.t.Fatal("CommitAsset with a new hash: created = false")
	}
	e.wantAsset("version 2 keeps name, media type and flag", v2, want)
	all = append(all, v2)
	v3, _ := e.commitAsset(a.ID, index.AssetChange{Hash: h2, Name: ptr("doc-v3.pdf"), MediaType: ptr("application/x-pdf"), GarbageCollect: ptr(false)}, false)
	want = v2
	want.Version, want.CreatedAt, want.Name, want.MediaType, want.GarbageCollect = 3, v3.CreatedAt, "doc-v3.pdf", "application/x-pdf", false
	e.wantAsset("version 3 changes name, media type and flag", v3, want)
	all = append(all, v3)
	for i := 4; i <= 7; i++ {
		v, _ := e.commitAsset(a.ID, index.AssetChange{Hash: e.blob()}, false)
		if v.Version != int64(i) || v.Name != "doc-v3.pdf" || v.MediaType != "application/x-pdf" {
			e.t.Fatalf("version %d = %+v", i, v)
		}
		all = append(all, v)
	}
	hist := pages(e, "AssetVersions", index.ListOptions{}, 3, func(o index.ListOptions) (index.Page[index.Asset], error) {
		return e.s.AssetVersions(e.ctx, a.ID, o)
	})
	e.wantVersions("AssetVersions", assetVersions(hist), descending(7))
	for i, h := range hist {
		e.wantAsset("AssetVersions item", h, all[6-i])
	}
	e.wantAsset("Asset(latest)", e.getAsset(index.Latest(a.ID)), all[6])
	e.wantAsset("Asset(@2)", e.getAsset(index.Ref{ID: a.ID, Version: 2}), all[1])
}

func testAssetIdentical(e *env) {
	c := e.collection("c")
	a := e.createAsset(index.NewAsset{Collection: c.ID, Name: "x.png", MediaType: "image/png"})
	for _, ch := range []index.AssetChange{
		{Hash: a.Hash},
		{Hash: a.Hash, Name: ptr("x.png"), MediaType: ptr("image/png"), GarbageCollect: ptr(false)},
	} {
		got, created := e.commitAsset(a.ID, ch, false)
		if created {
			e.t.Fatalf("an identical asset version was created: %+v", got)
		}
		e.wantAsset("an identical version answers the latest", got, a)
	}
	v2, created := e.commitAsset(a.ID, index.AssetChange{Hash: a.Hash, MediaType: ptr("image/x-png")}, false)
	if !created || v2.Version != 2 {
		e.t.Fatalf("a new media type: v%d created %v", v2.Version, created)
	}
}
