package apitest

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// testPagination: "Lists", on every list of API.md.
func testPagination(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	C1 := a.newCollection(t, J{"name": "p1"}).str("uuid")
	C2 := a.newCollection(t, J{"name": "p2"}).str("uuid")
	C3 := a.newCollection(t, J{"name": "p3"}).str("uuid")
	a.patch(t, v1+"/collections/"+C1, J{"name": "p1 v2"}).want(t, http.StatusOK)
	a.patch(t, v1+"/collections/"+C1, J{"name": "p1 v3"}).want(t, http.StatusOK)

	U1 := a.newUnit(t, C1, J{"name": "u1.xml", "olx": "<u1/>"}).str("uuid")
	A1 := a.newAsset(t, C1, "a1.bin", "application/octet-stream", []byte("a1")).str("uuid")
	T := a.newUnit(t, C1, J{"name": "t.xml", "olx": "<t/>"}).str("uuid")
	U2 := a.newUnit(t, C1, J{"name": "u2.xml", "olx": "<u2/>", "links": []J{link(T, "", 0), link(A1, "", 0)}}).str("uuid")
	A2 := a.newAsset(t, C1, "a2.bin", "application/octet-stream", []byte("a2")).str("uuid")
	U3 := a.newUnit(t, C1, J{"name": "u3.xml", "olx": "<u3/>", "links": []J{link(T, "unit", 1), link(A1, "asset", 1)}}).str("uuid")
	A3 := a.newAsset(t, C1, "a3.bin", "application/octet-stream", []byte("a3")).str("uuid")
	L := a.newUnit(t, C2, J{"name": "l.xml", "olx": "<l/>", "links": []J{link(T, "", 0), link(A1, "", 0), link(U1, "", 0), link(A2, "", 0)}}).str("uuid")
	// A draft-only unit and a drafted unit stay out of every list.
	a.post(t, v1+"/units", J{"collection": C1, "olx": "<hidden/>", "draft": true, "links": []J{link(T, "", 0)}}).want(t, http.StatusCreated)
	a.put(t, v1+"/units/"+U1+"/draft", J{"olx": "<u1 draft/>", "links": []J{link(T, "", 0)}}).want(t, http.StatusOK)
	for i := 2; i <= 3; i++ {
		a.newUnitVersion(t, U1, J{"olx": "<u1 v" + strconv.Itoa(i) + "/>"})
		a.post(t, v1+"/assets/"+A1+"/versions", []byte("a1 v"+strconv.Itoa(i)), "Content-Type", "text/plain").want(t, http.StatusCreated)
	}

	byUUID := []struct {
		target string
		want   []string
	}{
		{v1 + "/collections", []string{C1, C2, C3}},
		{v1 + "/collections/" + C1 + "/units", []string{U1, T, U2, U3}},
		{v1 + "/collections/" + C1 + "/assets", []string{A1, A2, A3}},
		{v1 + "/collections/" + C1 + "/units?name=u2.xml", []string{U2}},
		{v1 + "/collections/" + C1 + "/assets?name=a3.bin", []string{A3}},
		{v1 + "/collections/" + C1 + "/units?name=a3.bin", []string{}},
		{v1 + "/collections/" + C3 + "/units", []string{}},
		{v1 + "/units/" + T + "/linked-by", []string{U2, U3, L}},
		{v1 + "/assets/" + A1 + "/linked-by", []string{U2, U3, L}},
		{v1 + "/assets/" + A3 + "/linked-by", []string{}},
	}
	byVersion := []struct {
		target string
		want   []int64
	}{
		{v1 + "/collections/" + C1 + "/versions", []int64{3, 2, 1}},
		{v1 + "/collections/" + C2 + "/versions", []int64{1}},
		{v1 + "/units/" + U1 + "/versions", []int64{3, 2, 1}},
		{v1 + "/assets/" + A1 + "/versions", []int64{3, 2, 1}},
	}
	linksTarget := v1 + "/units/" + L + "/links"
	wantLinks := []string{linkStr(T, "unit", 0), linkStr(A1, "asset", 0), linkStr(U1, "unit", 0), linkStr(A2, "asset", 0)}
	allLists := []string{linksTarget}
	for _, l := range byUUID {
		allLists = append(allLists, l.target)
	}
	for _, l := range byVersion {
		allLists = append(allLists, l.target)
	}

	t.Run("every page size walks all items in order", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3, 0, 1000} {
			for _, l := range byUUID {
				eqSlice(t, l.target+" limit="+strconv.Itoa(limit), uuids(a.walk(t, l.target, limit)), l.want)
			}
			for _, l := range byVersion {
				eqSlice(t, l.target+" limit="+strconv.Itoa(limit), versions(a.walk(t, l.target, limit)), l.want)
			}
			items := a.walk(t, linksTarget, limit)
			sameSet(t, linksTarget+" limit="+strconv.Itoa(limit), linksOf(object{"links": anys(items)}), wantLinks)
		}
	})

	t.Run("next_cursor is absent on the last page", func(t *testing.T) {
		for _, p := range allLists {
			r := a.get(t, withQuery(p, "limit=1000"))
			r.page(t)
			if r.obj(t).has("next_cursor") {
				t.Errorf("a page that holds the whole list has next_cursor: %s", r)
			}
		}
		// A full last page ends the list too.
		r := a.get(t, v1+"/collections?limit=3")
		items, next := r.page(t)
		eq(t, "items on a full last page", len(items), 3)
		eq(t, "next_cursor on a full last page", next, "")
	})

	t.Run("limit over 1000 and bad cursors are 400", func(t *testing.T) {
		for _, p := range allLists {
			a.get(t, withQuery(p, "limit=1001")).wantError(t, http.StatusBadRequest)
			a.get(t, withQuery(p, "limit=1000000")).wantError(t, http.StatusBadRequest)
			a.get(t, withQuery(p, "cursor=%21%21not-a-cursor%21%21")).wantError(t, http.StatusBadRequest)
			a.get(t, withQuery(p, "limit=1&cursor=%00%FF%FE")).wantError(t, http.StatusBadRequest)
			a.get(t, withQuery(p, "limit=1")).expect(t, http.StatusOK)
		}
	})

	t.Run("limits API.md does not fix are never a server error", func(t *testing.T) {
		// API.md gives the default (100) and the maximum (1000); it does not
		// say what 0, a negative or a non-number are. Only sanity is checked.
		for _, p := range allLists {
			for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=99999999999999999999", "cursor="} {
				r := a.get(t, withQuery(p, q))
				if r.sane(t) && r.status != http.StatusOK && r.status != http.StatusBadRequest {
					t.Errorf("want 200 or 400: %s", r)
				}
			}
		}
	})

	t.Run("a cursor belongs to its list", func(t *testing.T) {
		_, cur := a.get(t, v1+"/collections?limit=1").page(t)
		if cur == "" {
			t.Fatal("no next_cursor on the first of three pages")
		}
		for _, p := range []string{v1 + "/collections/" + C1 + "/versions", v1 + "/units/" + T + "/linked-by"} {
			a.get(t, withQuery(p, "cursor="+url.QueryEscape(cur))).sane(t)
		}
	})

	t.Run("default page size is 100", func(t *testing.T) {
		for i := 0; i < 100; i++ {
			a.patch(t, v1+"/collections/"+C3, J{"description": "rev " + strconv.Itoa(i)}).want(t, http.StatusOK)
		}
		r := a.get(t, v1+"/collections/"+C3+"/versions")
		items, next := r.page(t)
		eq(t, "items on a default page", len(items), 100)
		if next == "" {
			t.Fatalf("no next_cursor after 100 of 101 versions: %s", r)
		}
		if len(items) > 0 {
			eq(t, "first item", items[0].ver(), 101)
		}
		items, next = a.get(t, v1+"/collections/"+C3+"/versions?cursor="+url.QueryEscape(next)).page(t)
		eqSlice(t, "second page", versions(items), []int64{1})
		eq(t, "next_cursor on the second page", next, "")
		all := a.walk(t, v1+"/collections/"+C3+"/versions", 1000)
		eq(t, "versions with limit=1000", len(all), 101)
		got := versions(a.walk(t, v1+"/collections/"+C3+"/versions", 7))
		for i, v := range got {
			if v != int64(101-i) {
				t.Errorf("walk by 7: item %d is version %d, want %d", i, v, 101-i)
				break
			}
		}
		eq(t, "walk by 7 length", len(got), 101)
	})
}
