package indextest

import (
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var lookupTests = []test{
	{"Mixed", testLookupMixed},
}

func testLookupMixed(e *env) {
	c := e.collection("c")
	e.must("UpdateCollection", func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(c.ID, index.CollectionPatch{Name: ptr("c2")})
		return err
	})
	a := e.asset(c.ID, "a")
	a2, _ := e.commitAsset(a.ID, index.AssetChange{Hash: e.blob()}, false)
	u := e.unit(c.ID, "u", index.Link{Target: a.ID})
	u2 := e.nextUnit(u.ID)
	ud, _ := e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	d := e.draftUnit(c.ID, "d")
	da := e.createAsset(index.NewAsset{Collection: c.ID, Name: "da", MediaType: "image/png", Draft: true})
	gone := e.unit(c.ID, "gone")
	e.wantOK("DeleteEntity", e.deleteEntity(gone.ID))

	type want struct {
		kind    index.Kind
		version int64
		id      uuid.UUID
	}
	cases := []struct {
		ref  index.Ref
		want want // kind 0: missing
	}{
		{index.Latest(c.ID), want{index.KindCollection, 2, c.ID}},
		{index.Ref{ID: c.ID, Version: 1}, want{index.KindCollection, 1, c.ID}},
		{index.Ref{ID: c.ID, Draft: true}, want{}},
		{index.Ref{ID: c.ID, Version: 3}, want{}},
		{index.Latest(u.ID), want{index.KindUnit, 2, u.ID}},
		{index.Ref{ID: u.ID, Version: 1}, want{index.KindUnit, 1, u.ID}},
		{index.Ref{ID: u.ID, Draft: true}, want{index.KindUnit, 0, u.ID}},
		{index.Ref{ID: u.ID, Version: 99}, want{}},
		{index.Latest(uuid.New()), want{}},
		{index.Latest(a.ID), want{index.KindAsset, 2, a.ID}},
		{index.Ref{ID: a.ID, Version: 1}, want{index.KindAsset, 1, a.ID}},
		{index.Ref{ID: a.ID, Draft: true}, want{}},
		{index.Latest(d.ID), want{}},
		{index.Ref{ID: d.ID, Draft: true}, want{index.KindUnit, 0, d.ID}},
		{index.Latest(da.ID), want{}},
		{index.Ref{ID: da.ID, Draft: true}, want{index.KindAsset, 0, da.ID}},
		{index.Latest(gone.ID), want{}},
		{index.Latest(u.ID), want{index.KindUnit, 2, u.ID}}, // repeats answer each time
		{index.Ref{ID: uuid.New(), Draft: true}, want{}},
	}
	refs := make([]index.Ref, len(cases))
	for i, tc := range cases {
		refs[i] = tc.ref
	}
	out, err := e.s.Lookup(e.ctx, refs)
	e.wantOK("Lookup", err)
	if len(out) != len(refs) {
		e.t.Fatalf("Lookup returned %d answers for %d refs", len(out), len(refs))
	}
	for i, tc := range cases {
		got := out[i]
		if got.Kind != tc.want.kind {
			e.t.Fatalf("Lookup %d (%s): kind %v, want %v", i, tc.ref, got.Kind, tc.want.kind)
		}
		set := 0
		for _, p := range []bool{got.Collection != nil, got.Unit != nil, got.Asset != nil} {
			if p {
				set++
			}
		}
		switch {
		case tc.want.kind == 0 && set != 0, tc.want.kind != 0 && set != 1:
			e.t.Fatalf("Lookup %d (%s): %d pointers set for kind %v", i, tc.ref, set, got.Kind)
		}
		switch tc.want.kind {
		case index.KindCollection:
			if got.Collection == nil || got.Collection.ID != tc.want.id || got.Collection.Version != tc.want.version {
				e.t.Fatalf("Lookup %d (%s) = %+v", i, tc.ref, got.Collection)
			}
		case index.KindUnit:
			if got.Unit == nil || got.Unit.ID != tc.want.id || got.Unit.Version != tc.want.version {
				e.t.Fatalf("Lookup %d (%s) = %+v", i, tc.ref, got.Unit)
			}
		case index.KindAsset:
			if got.Asset == nil || got.Asset.ID != tc.want.id || got.Asset.Version != tc.want.version {
				e.t.Fatalf("Lookup %d (%s) = %+v", i, tc.ref, got.Asset)
			}
		}
	}
	// The answers are whole versions.
	e.wantUnit("Lookup unit", *out[4].Unit, u2)
	e.wantUnit("Lookup unit draft", *out[6].Unit, ud)
	e.wantAsset("Lookup asset", *out[9].Asset, a2)
	e.wantUnit("Lookup unit@1", *out[5].Unit, u)

	// Nothing asked, nothing answered.
	out, err = e.s.Lookup(e.ctx, nil)
	e.wantOK("Lookup(nil)", err)
	if len(out) != 0 {
		e.t.Fatalf("Lookup(nil) = %d answers", len(out))
	}
	// A thousand refs at once (the API's limit).
	many := make([]index.Ref, 1000)
	for i := range many {
		if i%2 == 0 {
			many[i] = index.Latest(u.ID)
		} else {
			many[i] = index.Latest(uuid.New())
		}
	}
	out, err = e.s.Lookup(e.ctx, many)
	e.wantOK("Lookup of 1000 refs", err)
	for i, o := range out {
		if (i%2 == 0) != (o.Kind == index.KindUnit) {
			e.t.Fatalf("Lookup of 1000 refs: answer %d has kind %v", i, o.Kind)
		}
	}
}
