package apitest

import (
	"net/http"
	"strings"
	"testing"
)

// testResolve: "Many at once".
func testResolve(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	coll := a.newCollection(t, J{"name": "resolve"})
	c := coll.str("uuid")
	coll2 := a.patch(t, v1+"/collections/"+c, J{"description": "v2"}).want(t, http.StatusOK).obj(t)
	u1 := a.newUnit(t, c, J{"name": "r.xml", "olx": "<r>1</r>"})
	u := u1.str("uuid")
	u2 := a.newUnitVersion(t, u, J{"olx": "<r>2 한국어 🎉</r>"})
	ud := a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<r>draft</r>"}).want(t, http.StatusOK).obj(t)
	as := a.newAsset(t, c, "static/r.png", "image/png", []byte("resolve png"))
	do := a.post(t, v1+"/units", J{"collection": c, "olx": "<only-draft/>", "draft": true}).want(t, http.StatusCreated).obj(t)
	d := do.str("uuid")
	nowhere := randomUUID(30)
	olxOf := map[string]string{u1.String(): "<r>1</r>", u2.String(): "<r>2 한국어 🎉</r>", ud.String(): "<r>draft</r>", do.String(): "<only-draft/>"}

	type want struct {
		ref, kind string
		obj       object // nil: missing
	}
	cases := []want{
		{u, "unit", u2},
		{as.str("uuid") + "@1", "asset", as},
		{c, "collection", coll2},
		{nowhere, "", nil},
		{u + "@1", "unit", u1},
		{u + "@draft", "unit", ud},
		{u + "@99", "", nil},
		{d, "", nil},
		{d + "@draft", "unit", do},
		{c + "@1", "collection", coll},
		{as.str("uuid"), "asset", as},
		{c + "@draft", "", nil},
		{nowhere + "@draft", "", nil},
		{as.str("uuid") + "@2", "", nil},
	}
	refs := make([]string, len(cases))
	for i, w := range cases {
		refs[i] = w.ref
	}

	check := func(t *testing.T, includeOLX bool) {
		body := J{"refs": refs}
		if includeOLX {
			body["include_olx"] = true
		}
		r := a.post(t, v1+"/resolve", body).want(t, http.StatusOK)
		o := r.obj(t)
		items := o.objs("items")
		if _, ok := o.list("items"); !ok {
			t.Fatalf(`resolve answer lacks "items" as a list: %s`, r)
		}
		if _, ok := o.list("missing"); !ok {
			t.Fatalf(`resolve answer lacks "missing" as a list: %s`, r)
		}
		var wantItems []want
		var wantMissing []string
		for _, w := range cases {
			if w.obj == nil {
				wantMissing = append(wantMissing, w.ref)
			} else {
				wantItems = append(wantItems, w)
			}
		}
		eqSlice(t, "missing, in the order asked", o.strs("missing"), wantMissing)
		if len(items) != len(wantItems) {
			t.Fatalf("%d items, want %d: %s", len(items), len(wantItems), r)
		}
		for i, w := range wantItems {
			it := items[i]
			eq(t, "item ref (in the order asked)", it.str("ref"), w.ref)
			eq(t, w.ref+" kind", it.str("kind"), w.kind)
			shape(t, w.kind, it)
			for k, v := range w.obj {
				if got := (object{k: it[k]}).String(); got != (object{k: v}).String() {
					t.Errorf("%s: %s = %s, want %s", w.ref, k, got, object{k: v})
				}
			}
			switch {
			case w.kind == "unit" && includeOLX:
				eq(t, w.ref+" olx", it.str("olx"), olxOf[w.obj.String()])
			case w.kind == "unit":
				if it.has("olx") && !it.isNull("olx") {
					t.Errorf("%s carries olx though include_olx was not asked", w.ref)
				}
			}
		}
	}
	t.Run("mixed kinds in the order asked", func(t *testing.T) { check(t, false) })
	t.Run("include_olx", func(t *testing.T) { check(t, true) })

	t.Run("no refs", func(t *testing.T) {
		o := a.post(t, v1+"/resolve", J{"refs": []string{}}).want(t, http.StatusOK).obj(t)
		if l, ok := o.list("items"); !ok || len(l) != 0 {
			t.Errorf("items of no refs = %v, want []", o["items"])
		}
		if l, ok := o.list("missing"); !ok || len(l) != 0 {
			t.Errorf("missing of no refs = %v, want []", o["missing"])
		}
	})

	t.Run("the ref is echoed as sent", func(t *testing.T) {
		// RFC 4122 reads UUIDs in either case; API.md does not say whether
		// the server does. If it answers an upper-case ref, the item's ref
		// is the string sent and its uuid the lower-case one.
		up := strings.ToUpper(u) + "@1"
		r := a.post(t, v1+"/resolve", J{"refs": []string{up}})
		if r.status == http.StatusBadRequest {
			r.wantError(t, http.StatusBadRequest)
			return
		}
		o := r.want(t, http.StatusOK).obj(t)
		if items := o.objs("items"); len(items) == 1 {
			eq(t, "ref as sent", items[0].str("ref"), up)
			eq(t, "uuid in lower case", items[0].str("uuid"), u)
		} else {
			eqSlice(t, "missing", o.strs("missing"), []string{up})
		}
	})

	t.Run("malformed refs are 400", func(t *testing.T) {
		for _, bad := range []string{
			"", "nope", u + "@", u + "@0", u + "@-1", u + "@1.5", u + "@abc", u + "@DRAFT", u + "@draft@1",
			u + "@1@2", "@1", u[:35], u + "0", " " + u, u + " ", "{" + u + "}", "urn:uuid:" + u, u + "@+1", u + "@01", u + "@1e3",
		} {
			a.post(t, v1+"/resolve", J{"refs": []string{u, bad}}).wantError(t, http.StatusBadRequest)
		}
		a.post(t, v1+"/resolve", J{"refs": "not a list"}).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/resolve", J{"refs": []any{1}}).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/resolve", J{"refs": []string{u}, "include_olx": "yes"}).wantError(t, http.StatusBadRequest)
	})

	t.Run("at most 1,000 refs", func(t *testing.T) {
		many := make([]string, 1001)
		for i := range many {
			many[i] = randomUUID(1000 + i)
		}
		many[500] = u
		o := a.post(t, v1+"/resolve", J{"refs": many[:1000]}).want(t, http.StatusOK).obj(t)
		eq(t, "items of 1,000 refs", len(o.objs("items")), 1)
		eq(t, "missing of 1,000 refs", len(o.strs("missing")), 999)
		a.post(t, v1+"/resolve", J{"refs": many}).wantError(t, http.StatusRequestEntityTooLarge)
	})
}
