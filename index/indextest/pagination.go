package indextest

import (
	"bytes"
	"encoding/base64"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

var paginationTests = []test{
	{"EveryList", testPaginationEveryList},
	{"CreationOrderThenUUID", testPaginationTies},
	{"NameFilter", testPaginationNameFilter},
	{"BadCursorAndLimit", testPaginationBad},
	{"Empty", testPaginationEmpty},
}

func testPaginationEveryList(e *env) {
	var colls []uuid.UUID
	for range 5 {
		colls = append(colls, e.collection("c").ID)
	}
	c := colls[2]
	var units, asts []uuid.UUID
	for i := range 7 {
		units = append(units, e.unit(c, "").ID)
		if i%2 == 0 {
			asts = append(asts, e.asset(c, "").ID)
		}
	}
	e.unit(colls[3], "elsewhere")
	e.asset(colls[3], "elsewhere.png")
	// New versions do not move an entity in a list.
	e.nextUnit(units[0])
	e.commitAsset(asts[0], index.AssetChange{Hash: e.blob()}, false)
	e.must("UpdateCollection", func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(colls[0], index.CollectionPatch{Name: ptr("renamed")})
		return err
	})
	u := units[1]
	for range 6 {
		e.nextUnit(u)
	}
	a := asts[1]
	for range 3 {
		e.commitAsset(a, index.AssetChange{Hash: e.blob()}, false)
	}
	for range 4 {
		e.must("UpdateCollection", func(tx index.Tx) error {
			_, _, err := tx.UpdateCollection(c, index.CollectionPatch{Description: ptr(uuid.NewString())})
			return err
		})
	}

	for _, limit := range []int{1, 2, 3, 0, index.MaxLimit} {
		gotC := pages(e, "Collections", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Collection], error) {
			return e.s.Collections(e.ctx, o)
		})
		e.wantIDs("Collections", collectionIDs(gotC), colls)
		if gotC[0].Version != 2 || gotC[0].Name != "renamed" {
			e.t.Fatalf("Collections shows version %d of an updated collection", gotC[0].Version)
		}
		gotU := pages(e, "Units", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.Units(e.ctx, c, o)
		})
		e.wantIDs("Units", unitIDs(gotU), units)
		if gotU[0].Version != 2 || gotU[1].Version != 7 {
			e.t.Fatalf("Units shows versions %d, %d; want the latest (2, 7)", gotU[0].Version, gotU[1].Version)
		}
		gotA := pages(e, "Assets", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Asset], error) {
			return e.s.Assets(e.ctx, c, o)
		})
		e.wantIDs("Assets", assetIDs(gotA), asts)
		gotUV := pages(e, "UnitVersions", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.UnitVersions(e.ctx, u, o)
		})
		e.wantVersions("UnitVersions", unitVersions(gotUV), descending(7))
		gotAV := pages(e, "AssetVersions", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Asset], error) {
			return e.s.AssetVersions(e.ctx, a, o)
		})
		e.wantVersions("AssetVersions", assetVersions(gotAV), descending(4))
		gotCV := pages(e, "CollectionVersions", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Collection], error) {
			return e.s.CollectionVersions(e.ctx, c, o)
		})
		e.wantVersions("CollectionVersions", collectionVersions(gotCV), descending(5))
	}

	// A cursor stays valid while the list grows after it: the next page
	// continues where the last one ended.
	p, err := e.s.Units(e.ctx, c, index.ListOptions{Limit: 3})
	e.wantOK("Units", err)
	late := e.unit(c, "late").ID
	rest := pages(e, "Units after a cursor", index.ListOptions{}, 100, func(o index.ListOptions) (index.Page[index.Unit], error) {
		if o.Cursor == "" {
			o.Cursor = p.NextCursor
		}
		return e.s.Units(e.ctx, c, o)
	})
	e.wantIDs("Units after a cursor, with one added", unitIDs(rest), append(slices.Clone(units[3:]), late))
	// A version cursor continues a history list that grew.
	h, err := e.s.UnitVersions(e.ctx, u, index.ListOptions{Limit: 2})
	e.wantOK("UnitVersions", err)
	e.nextUnit(u)
	restV := pages(e, "UnitVersions after a cursor", index.ListOptions{}, 100, func(o index.ListOptions) (index.Page[index.Unit], error) {
		if o.Cursor == "" {
			o.Cursor = h.NextCursor
		}
		return e.s.UnitVersions(e.ctx, u, o)
	})
	e.wantVersions("UnitVersions after a cursor", unitVersions(restV), descending(5))
}

// testPaginationTies: entities created at the same instant are ordered by
// uuid, and pages split between them lose and repeat nothing.
func testPaginationTies(e *env) {
	e.clock.Advance(time.Second)
	e.clock.SetStep(0)
	var colls, units, asts []uuid.UUID
	first := e.collection("first").ID
	for range 6 {
		colls = append(colls, e.collection("tie").ID)
		units = append(units, e.unit(first, "").ID)
		asts = append(asts, e.asset(first, "").ID)
	}
	e.clock.SetStep(time.Microsecond)
	later := e.collection("later").ID
	byUUID := func(ids []uuid.UUID) []uuid.UUID {
		out := slices.Clone(ids)
		slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		return out
	}
	wantC := append(append([]uuid.UUID{}, byUUID(append(colls, first))...), later)
	for _, limit := range []int{1, 2, 4, 0} {
		gotC := pages(e, "Collections", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Collection], error) {
			return e.s.Collections(e.ctx, o)
		})
		e.wantIDs("Collections created at one instant (then by uuid)", collectionIDs(gotC), wantC)
		gotU := pages(e, "Units", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.Units(e.ctx, first, o)
		})
		e.wantIDs("Units created at one instant", unitIDs(gotU), byUUID(units))
		gotA := pages(e, "Assets", index.ListOptions{}, limit, func(o index.ListOptions) (index.Page[index.Asset], error) {
			return e.s.Assets(e.ctx, first, o)
		})
		e.wantIDs("Assets created at one instant", assetIDs(gotA), byUUID(asts))
	}
}

func testPaginationNameFilter(e *env) {
	c := e.collection("c")
	var unnamed []uuid.UUID
	for i := range 5 {
		unnamed = append(unnamed, e.unit(c.ID, "").ID)
		e.unit(c.ID, "named "+string(rune('a'+i)))
		e.asset(c.ID, "")
	}
	for _, limit := range []int{1, 2, 0} {
		got := pages(e, "Units with no name", index.ListOptions{Name: "", HasName: true}, limit, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.Units(e.ctx, c.ID, o)
		})
		e.wantIDs("Units filtered by the empty name, paginated", unitIDs(got), unnamed)
		one := pages(e, "Units named b", index.ListOptions{Name: "named b", HasName: true}, limit, func(o index.ListOptions) (index.Page[index.Unit], error) {
			return e.s.Units(e.ctx, c.ID, o)
		})
		if len(one) != 1 || one[0].Name != "named b" {
			e.t.Fatalf("Units named b (limit %d) = %d items", limit, len(one))
		}
	}
	all := pages(e, "Units", index.ListOptions{}, 3, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	if len(all) != 10 {
		e.t.Fatalf("Units without a filter = %d items, want 10", len(all))
	}
	_, err := e.s.Units(e.ctx, c.ID, index.ListOptions{Name: "x", HasName: true, Cursor: "%%%"})
	e.wantErr("Units by name with a bad cursor", err, index.ErrInvalid)
}

func testPaginationBad(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	a := e.asset(c.ID, "a")
	e.unit(c.ID, "v", index.Link{Target: a.ID})
	lists := []struct {
		name    string
		entity  bool // takes an entity cursor (else a version cursor)
		list    func(index.ListOptions) error
		another string // a valid cursor of the other kind
	}{
		{"Collections", true, func(o index.ListOptions) error { _, err := e.s.Collections(e.ctx, o); return err }, ""},
		{"CollectionVersions", false, func(o index.ListOptions) error { _, err := e.s.CollectionVersions(e.ctx, c.ID, o); return err }, ""},
		{"Units", true, func(o index.ListOptions) error { _, err := e.s.Units(e.ctx, c.ID, o); return err }, ""},
		{"Assets", true, func(o index.ListOptions) error { _, err := e.s.Assets(e.ctx, c.ID, o); return err }, ""},
		{"UnitVersions", false, func(o index.ListOptions) error { _, err := e.s.UnitVersions(e.ctx, u.ID, o); return err }, ""},
		{"AssetVersions", false, func(o index.ListOptions) error { _, err := e.s.AssetVersions(e.ctx, a.ID, o); return err }, ""},
		{"LinkedBy", true, func(o index.ListOptions) error { _, err := e.s.LinkedBy(e.ctx, a.ID, o); return err }, ""},
	}
	entityCursor := index.EncodeEntityCursor(e.clock.Peek(), u.ID)
	versionCursor := index.EncodeVersionCursor(1)
	bad := []string{
		"x", "!!!!", "not a cursor", "=", base64.RawURLEncoding.EncodeToString([]byte("z")),
		base64.RawURLEncoding.EncodeToString(make([]byte, 25)), base64.StdEncoding.EncodeToString(make([]byte, 25)),
		entityCursor + "A", "A" + versionCursor,
	}
	for _, l := range lists {
		for _, cur := range bad {
			e.wantErr(l.name+" with cursor "+cur, l.list(index.ListOptions{Cursor: cur}), index.ErrInvalid)
		}
		other := versionCursor
		if !l.entity {
			other = entityCursor
		}
		e.wantErr(l.name+" with a cursor of another list", l.list(index.ListOptions{Cursor: other}), index.ErrInvalid)
		for _, limit := range []int{-1, index.MaxLimit + 1, 1 << 30} {
			e.wantErr(l.name+" with a bad limit", l.list(index.ListOptions{Limit: limit}), index.ErrInvalid)
		}
		for _, limit := range []int{1, index.MaxLimit} {
			e.wantOK(l.name+" with a good limit", l.list(index.ListOptions{Limit: limit}))
		}
	}
}

func testPaginationEmpty(e *env) {
	p, err := e.s.Collections(e.ctx, index.ListOptions{})
	e.wantOK("Collections of an empty store", err)
	if len(p.Items) != 0 || p.NextCursor != "" {
		e.t.Fatalf("Collections of an empty store = %+v", p)
	}
	c := e.collection("c")
	pu, err := e.s.Units(e.ctx, c.ID, index.ListOptions{Limit: 1})
	e.wantOK("Units of an empty collection", err)
	if len(pu.Items) != 0 || pu.NextCursor != "" {
		e.t.Fatalf("Units of an empty collection = %+v", pu)
	}
	pa, err := e.s.Assets(e.ctx, c.ID, index.ListOptions{})
	e.wantOK("Assets of an empty collection", err)
	if len(pa.Items) != 0 || pa.NextCursor != "" {
		e.t.Fatalf("Assets of an empty collection = %+v", pa)
	}
	// Exactly one full page: no cursor.
	e.unit(c.ID, "")
	pu, err = e.s.Units(e.ctx, c.ID, index.ListOptions{Limit: 1})
	e.wantOK("Units", err)
	if len(pu.Items) != 1 || pu.NextCursor != "" {
		e.t.Fatalf("Units with limit 1 over one unit = %d items, cursor %q: the last page has no cursor", len(pu.Items), pu.NextCursor)
	}
}
