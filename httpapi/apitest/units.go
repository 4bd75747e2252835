package apitest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// testUnits: "Units", and the draft rules of "Conventions" for units.
func testUnits(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	c := a.newCollection(t, J{"name": "units"}).str("uuid")
	c2 := a.newCollection(t, J{"name": "units elsewhere"}).str("uuid")

	t.Run("create", func(t *testing.T) {
		olx := "<problem>\r\n  <p>two  spaces,\ttab</p>\n</problem>\n"
		r := a.post(t, v1+"/units", J{"collection": c, "name": "vertical/create.xml", "olx": olx, "garbage_collect": true})
		r.want(t, http.StatusCreated)
		u := r.obj(t)
		shape(t, "unit", u)
		eq(t, "version", u.ver(), 1)
		eq(t, "collection", u.str("collection"), c)
		eq(t, "name", u.str("name"), "vertical/create.xml")
		eq(t, "hash", u.str("hash"), hashOf([]byte(olx)))
		n, _ := u.int("size")
		eq(t, "size", n, int64(len(olx)))
		eq(t, "links", len(u.objs("links")), 0)
		gc, _ := u.bool("garbage_collect")
		eq(t, "garbage_collect", gc, true)
		g := a.get(t, v1+"/units/"+u.str("uuid")).want(t, http.StatusOK).obj(t)
		eq(t, "GET = POST answer", g.String(), u.String())

		noName := a.newUnit(t, c, J{"olx": "<unnamed/>"})
		eq(t, "name when not given", noName.str("name"), "")
		gc, _ = noName.bool("garbage_collect")
		eq(t, "garbage_collect when not given", gc, false)
		// A name is unique only when given: two unnamed units live side by side.
		a.newUnit(t, c, J{"olx": "<unnamed/>"})
		// Empty OLX is still OLX.
		empty := a.newUnit(t, c, J{"olx": ""})
		eq(t, "hash of empty OLX", empty.str("hash"), hashOf(nil))

		a.get(t, v1+"/units/"+randomUUID(10)).wantError(t, http.StatusNotFound)
	})

	t.Run("olx endpoints", func(t *testing.T) {
		olx1, olx2 := "<html>one & <b>1</b></html>", "<html>two</html>\n"
		u := a.newUnit(t, c, J{"olx": olx1}).str("uuid")
		a.newUnitVersion(t, u, J{"olx": olx2})
		for _, x := range []struct{ path, want string }{
			{"/olx", olx2}, {"/versions/2/olx", olx2}, {"/versions/1/olx", olx1},
		} {
			r := a.get(t, v1+"/units/"+u+x.path)
			if !r.expect(t, http.StatusOK) {
				continue
			}
			eq(t, x.path+" bytes", string(r.body), x.want)
			eq(t, x.path+" media type", mediaType(r.header.Get("Content-Type")), "application/xml")
			h := a.head(t, v1+"/units/"+u+x.path)
			if h.expect(t, http.StatusOK) {
				eq(t, "HEAD "+x.path+" Content-Length", h.header.Get("Content-Length"), strconv.Itoa(len(x.want)))
			}
		}
		a.get(t, v1+"/units/"+u+"/versions/3/olx").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/versions/draft/olx").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+randomUUID(11)+"/olx").wantError(t, http.StatusNotFound)
	})

	t.Run("new versions and history", func(t *testing.T) {
		first := a.newUnit(t, c, J{"name": "history.xml", "olx": "<v1/>"})
		u := first.str("uuid")
		second := a.post(t, v1+"/units/"+u+"/versions", J{"olx": "<v2/>"}).want(t, http.StatusCreated).obj(t)
		shape(t, "unit", second)
		eq(t, "uuid", second.str("uuid"), u)
		eq(t, "version", second.ver(), 2)
		eq(t, "hash", second.str("hash"), hashOf([]byte("<v2/>")))
		eq(t, "collection kept", second.str("collection"), c)
		third := a.newUnitVersion(t, u, J{"olx": "<v3/>"})
		eq(t, "version", third.ver(), 3)
		eq(t, "GET is the latest", a.get(t, v1+"/units/"+u).want(t, http.StatusOK).obj(t).String(), third.String())
		vs := a.walk(t, v1+"/units/"+u+"/versions", 0)
		eqSlice(t, "versions, newest first", versions(vs), []int64{3, 2, 1})
		eq(t, "versions/1", a.get(t, v1+"/units/"+u+"/versions/1").want(t, http.StatusOK).obj(t).String(), first.String())
		eq(t, "versions/2", a.get(t, v1+"/units/"+u+"/versions/2").want(t, http.StatusOK).obj(t).String(), second.String())
		a.get(t, v1+"/units/"+u+"/versions/4").wantError(t, http.StatusNotFound)
		a.post(t, v1+"/units/"+randomUUID(12)+"/versions", J{"olx": "<x/>"}).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+randomUUID(12)+"/versions").wantError(t, http.StatusNotFound)
	})

	t.Run("identical new version is 200 with the latest", func(t *testing.T) {
		target := a.newUnit(t, c, J{"olx": "<target/>"}).str("uuid")
		first := a.newUnit(t, c, J{"name": "same.xml", "olx": "<same/>", "garbage_collect": true, "links": []J{link(target, "unit", 0)}})
		u := first.str("uuid")
		before := a.snap(t, v1+"/units/"+u+"/versions", v1+"/units/"+u)
		for _, body := range []J{
			{"olx": "<same/>"},
			{"olx": "<same/>", "links": nil},
			{"olx": "<same/>", "garbage_collect": true, "links": []J{link(target, "", 0)}, "name": "same.xml"},
		} {
			r := a.post(t, v1+"/units/"+u+"/versions", body)
			if r.expect(t, http.StatusOK) {
				eq(t, "answer to an identical version", r.obj(t).String(), first.String())
			}
		}
		a.unchanged(t, before, "identical new versions")
		// Any difference makes a version: the flag, the links, the bytes.
		eq(t, "flag changed", a.newUnitVersion(t, u, J{"olx": "<same/>", "garbage_collect": false}).ver(), 2)
		eq(t, "links changed", a.newUnitVersion(t, u, J{"olx": "<same/>", "links": []J{}}).ver(), 3)
		eq(t, "bytes changed", a.newUnitVersion(t, u, J{"olx": "<same/> "}).ver(), 4)
	})

	t.Run("omitted is not empty", func(t *testing.T) {
		target := a.newUnit(t, c, J{"olx": "<kept-target/>"}).str("uuid")
		lk := linkStr(target, "unit", 0)
		u := a.newUnit(t, c, J{"name": "kept.xml", "olx": "<k1/>", "garbage_collect": true, "links": []J{link(target, "unit", 0)}}).str("uuid")

		v := a.newUnitVersion(t, u, J{"olx": "<k2/>"})
		eq(t, "name kept", v.str("name"), "kept.xml")
		eqSlice(t, "links kept", linksOf(v), []string{lk})
		gc, _ := v.bool("garbage_collect")
		eq(t, "garbage_collect kept", gc, true)

		v = a.newUnitVersion(t, u, J{"olx": "<k3/>", "links": nil})
		eqSlice(t, `links kept by "links": null`, linksOf(v), []string{lk})

		d := a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<kd/>"}).want(t, http.StatusOK).obj(t)
		eq(t, "draft name kept", d.str("name"), "kept.xml")
		eqSlice(t, "draft links kept", linksOf(d), []string{lk})
		gc, _ = d.bool("garbage_collect")
		eq(t, "draft garbage_collect kept", gc, true)
		a.del(t, v1+"/units/"+u+"/draft").want(t, http.StatusNoContent)

		v = a.newUnitVersion(t, u, J{"olx": "<k4/>", "links": []J{}})
		eq(t, `links after "links": []`, len(v.objs("links")), 0)
		eq(t, "name still kept", v.str("name"), "kept.xml")
		v = a.newUnitVersion(t, u, J{"olx": "<k5/>"})
		eq(t, "no links stay no links", len(v.objs("links")), 0)

		v = a.newUnitVersion(t, u, J{"olx": "<k6/>", "garbage_collect": false})
		gc, _ = v.bool("garbage_collect")
		eq(t, "garbage_collect set false", gc, false)
		v = a.newUnitVersion(t, u, J{"olx": "<k7/>"})
		gc, _ = v.bool("garbage_collect")
		eq(t, "garbage_collect false kept", gc, false)

		v = a.newUnitVersion(t, u, J{"olx": "<k8/>", "name": "renamed.xml"})
		eq(t, "name changed", v.str("name"), "renamed.xml")
		v = a.newUnitVersion(t, u, J{"olx": "<k9/>", "name": ""})
		eq(t, `name after "name": ""`, v.str("name"), "")
	})

	t.Run("drafts", func(t *testing.T) {
		u := a.newUnit(t, c, J{"name": "drafted.xml", "olx": "<d1/>"}).str("uuid")
		latest := a.get(t, v1+"/units/"+u).want(t, http.StatusOK).obj(t)
		a.post(t, v1+"/units/"+u+"/draft/publish", nil).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/versions/draft").wantError(t, http.StatusNotFound)

		d := a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<draft-a/>"}).want(t, http.StatusOK).obj(t)
		shape(t, "unit", d)
		if !d.isNull("version") {
			t.Errorf("draft version = %v, want null", d["version"])
		}
		eq(t, "draft uuid", d.str("uuid"), u)
		eq(t, "draft hash", d.str("hash"), hashOf([]byte("<draft-a/>")))
		eq(t, "GET still the latest published", a.get(t, v1+"/units/"+u).want(t, http.StatusOK).obj(t).String(), latest.String())
		if r := a.get(t, v1+"/units/"+u+"/olx"); r.expect(t, http.StatusOK) {
			eq(t, "olx still the published one", string(r.body), "<d1/>")
		}
		eq(t, "versions/draft", a.get(t, v1+"/units/"+u+"/versions/draft").want(t, http.StatusOK).obj(t).String(), d.String())
		if r := a.get(t, v1+"/units/"+u+"/versions/draft/olx"); r.expect(t, http.StatusOK) {
			eq(t, "draft olx", string(r.body), "<draft-a/>")
		}

		// Replace it.
		d = a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<draft-b/>", "name": "drafted-b.xml", "garbage_collect": true}).want(t, http.StatusOK).obj(t)
		eq(t, "replaced draft hash", d.str("hash"), hashOf([]byte("<draft-b/>")))
		if r := a.get(t, v1+"/units/"+u+"/versions/draft/olx"); r.expect(t, http.StatusOK) {
			eq(t, "replaced draft olx", string(r.body), "<draft-b/>")
		}

		// Publish it.
		p := a.post(t, v1+"/units/"+u+"/draft/publish", nil).want(t, http.StatusCreated).obj(t)
		shape(t, "unit", p)
		eq(t, "published version", p.ver(), 2)
		eq(t, "published hash", p.str("hash"), hashOf([]byte("<draft-b/>")))
		eq(t, "published name", p.str("name"), "drafted-b.xml")
		gc, _ := p.bool("garbage_collect")
		eq(t, "published garbage_collect", gc, true)
		eq(t, "GET after publish", a.get(t, v1+"/units/"+u).want(t, http.StatusOK).obj(t).String(), p.String())
		a.get(t, v1+"/units/"+u+"/versions/draft").wantError(t, http.StatusNotFound)
		eqSlice(t, "versions after publish", versions(a.walk(t, v1+"/units/"+u+"/versions", 0)), []int64{2, 1})
		a.post(t, v1+"/units/"+u+"/draft/publish", nil).wantError(t, http.StatusNotFound)

		// Delete a draft.
		a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<draft-c/>"}).want(t, http.StatusOK)
		before := a.snap(t, v1+"/units/"+u, v1+"/units/"+u+"/versions")
		a.del(t, v1+"/units/"+u+"/draft").expect(t, http.StatusNoContent)
		a.get(t, v1+"/units/"+u+"/versions/draft").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/versions/draft/olx").wantError(t, http.StatusNotFound)
		a.post(t, v1+"/units/"+u+"/draft/publish", nil).wantError(t, http.StatusNotFound)
		a.unchanged(t, before, "DELETE of a draft")

		// A new version leaves the draft alone.
		a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<draft-d/>"}).want(t, http.StatusOK)
		a.newUnitVersion(t, u, J{"olx": "<d3/>"})
		if r := a.get(t, v1+"/units/"+u+"/versions/draft/olx"); r.expect(t, http.StatusOK) {
			eq(t, "draft after a new version", string(r.body), "<draft-d/>")
		}
		eq(t, "publish after a new version", a.post(t, v1+"/units/"+u+"/draft/publish", nil).want(t, http.StatusCreated).obj(t).ver(), 4)

		missing := randomUUID(13)
		a.put(t, v1+"/units/"+missing+"/draft", J{"olx": "<x/>"}).wantError(t, http.StatusNotFound)
		a.post(t, v1+"/units/"+missing+"/draft/publish", nil).wantError(t, http.StatusNotFound)
		a.del(t, v1+"/units/"+missing+"/draft").wantError(t, http.StatusNotFound)
	})

	t.Run("draft-only units", func(t *testing.T) {
		r := a.post(t, v1+"/units", J{"collection": c, "name": "held.xml", "olx": "<held/>", "draft": true})
		r.want(t, http.StatusCreated)
		d := r.obj(t)
		shape(t, "unit", d)
		if !d.isNull("version") {
			t.Errorf("draft version = %v, want null", d["version"])
		}
		u := d.str("uuid")
		// Invisible to bare-uuid reads, lists and /versions.
		a.get(t, v1+"/units/"+u).wantError(t, http.StatusNotFound)
		a.head(t, v1+"/units/"+u).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/olx").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/links").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/versions").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u+"/versions/1").wantError(t, http.StatusNotFound)
		if contains(uuids(a.walk(t, v1+"/collections/"+c+"/units", 0)), u) {
			t.Errorf("a draft-only unit is listed in its collection")
		}
		eq(t, "units named held.xml", len(a.walk(t, v1+"/collections/"+c+"/units?name=held.xml", 0)), 0)
		// Reachable through versions/draft.
		eq(t, "versions/draft", a.get(t, v1+"/units/"+u+"/versions/draft").want(t, http.StatusOK).obj(t).String(), d.String())
		if r := a.get(t, v1+"/units/"+u+"/versions/draft/olx"); r.expect(t, http.StatusOK) {
			eq(t, "draft olx", string(r.body), "<held/>")
		}
		// It holds its name, and the 409 says who holds it.
		before := a.snap(t, v1+"/collections/"+c+"/units", v1+"/collections/"+c+"/assets")
		r = a.post(t, v1+"/units", J{"collection": c, "name": "held.xml", "olx": "<other/>"})
		if r.wantError(t, http.StatusConflict) && !strings.Contains(string(r.body), u) {
			t.Errorf("the 409 for a taken name does not name the holder %s: %s", u, r)
		}
		r = a.post(t, v1+"/assets?collection="+c+"&name=held.xml", []byte("x"), "Content-Type", "text/plain")
		if r.wantError(t, http.StatusConflict) && !strings.Contains(string(r.body), u) {
			t.Errorf("the 409 for a taken name does not name the holder %s: %s", u, r)
		}
		a.unchanged(t, before, "names taken by a draft")
		// It can be a link target; unpinned, it resolves to null.
		l := a.newUnit(t, c, J{"olx": "<links-to-draft/>", "links": []J{link(u, "", 0)}})
		eqSlice(t, "link to a draft-only unit", linksOf(l), []string{linkStr(u, "unit", 0)})
		x := a.get(t, v1+"/units/"+l.str("uuid")+"?expand=links").want(t, http.StatusOK).obj(t)
		if ls := x.objs("links"); len(ls) == 1 {
			if !ls[0].isNull("resolved") {
				t.Errorf("resolved of a link to a draft-only unit = %v, want null", ls[0]["resolved"])
			}
		} else {
			t.Errorf("expanded links = %v", x["links"])
		}
		// Its draft's links do not make it a linker.
		target := a.newUnit(t, c, J{"olx": "<linked-from-draft/>"}).str("uuid")
		a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<held2/>", "links": []J{link(target, "unit", 0)}}).want(t, http.StatusOK)
		eq(t, "linked-by of a target of a draft-only unit", len(a.walk(t, v1+"/units/"+target+"/linked-by", 0)), 0)
		// Published, it appears.
		p := a.post(t, v1+"/units/"+u+"/draft/publish", nil).want(t, http.StatusCreated).obj(t)
		eq(t, "first published version", p.ver(), 1)
		eq(t, "published name", p.str("name"), "held.xml")
		a.get(t, v1+"/units/"+u).expect(t, http.StatusOK)
		eqSlice(t, "versions once published", versions(a.walk(t, v1+"/units/"+u+"/versions", 0)), []int64{1})
		if !contains(uuids(a.walk(t, v1+"/collections/"+c+"/units?name=held.xml", 0)), u) {
			t.Errorf("a published unit is not listed under its name")
		}
		eqSlice(t, "linked-by once published", uuids(a.walk(t, v1+"/units/"+target+"/linked-by", 0)), []string{u})
	})

	t.Run("names are unique in a collection", func(t *testing.T) {
		holder := a.newUnit(t, c, J{"name": "taken.xml", "olx": "<t/>"}).str("uuid")
		asset := a.newAsset(t, c, "static/taken.png", "image/png", []byte("taken")).str("uuid")
		mover := a.newUnit(t, c, J{"name": "mover.xml", "olx": "<m/>"}).str("uuid")
		before := a.snap(t, v1+"/collections/"+c+"/units", v1+"/collections/"+c+"/assets", v1+"/units/"+mover+"/versions")
		for _, x := range []struct {
			r      *reply
			holder string
		}{
			{a.post(t, v1+"/units", J{"collection": c, "name": "taken.xml", "olx": "<t2/>"}), holder},
			{a.post(t, v1+"/units", J{"collection": c, "name": "static/taken.png", "olx": "<t3/>"}), asset},
			{a.post(t, v1+"/units", J{"collection": c, "name": "taken.xml", "olx": "<t4/>", "draft": true}), holder},
			{a.post(t, v1+"/units/"+mover+"/versions", J{"olx": "<m2/>", "name": "taken.xml"}), holder},
			{a.put(t, v1+"/units/"+mover+"/draft", J{"olx": "<m3/>", "name": "static/taken.png"}), asset},
			{a.post(t, v1+"/assets?collection="+c+"&name=taken.xml", []byte("y"), "Content-Type", "text/plain"), holder},
		} {
			if x.r.wantError(t, http.StatusConflict) && !strings.Contains(string(x.r.body), x.holder) {
				t.Errorf("the 409 does not name the holder %s: %s", x.holder, x.r)
			}
		}
		a.get(t, v1+"/units/"+mover+"/versions/draft").wantError(t, http.StatusNotFound)
		a.unchanged(t, before, "writes of taken names")
		// Another collection has its own names; a unit may keep its own.
		a.newUnit(t, c2, J{"name": "taken.xml", "olx": "<t/>"})
		eq(t, "keeping one's own name", a.newUnitVersion(t, holder, J{"olx": "<t5/>", "name": "taken.xml"}).str("name"), "taken.xml")
		// A deleted unit's name is free again.
		a.del(t, v1+"/units/"+holder).want(t, http.StatusNoContent)
		a.newUnit(t, c, J{"name": "taken.xml", "olx": "<t6/>"})
	})

	t.Run("links", func(t *testing.T) {
		target := a.newUnit(t, c, J{"olx": "<lt/>"}).str("uuid")
		a.newUnitVersion(t, target, J{"olx": "<lt2/>"})
		asset := a.newAsset(t, c, "static/linked.png", "image/png", []byte("linked png")).str("uuid")
		u := a.newUnit(t, c, J{"olx": "<linker/>", "links": []J{
			link(target, "", 0), link(target, "unit", 1), link(asset, "", 0), link(asset, "asset", 1),
		}})
		sameSet(t, "links as written, kinds filled in", linksOf(u), []string{
			linkStr(target, "unit", 0), linkStr(target, "unit", 1), linkStr(asset, "asset", 0), linkStr(asset, "asset", 1),
		})
		l := a.get(t, v1+"/units/"+u.str("uuid")+"/links")
		items, _ := l.page(t)
		sameSet(t, "/links", linksOf(object{"links": anys(items)}), linksOf(u))
		noLinks := a.newUnit(t, c, J{"olx": "<nolinks/>", "links": nil})
		eq(t, `links of "links": null`, len(noLinks.objs("links")), 0)
		items, _ = a.get(t, v1+"/units/"+noLinks.str("uuid")+"/links").page(t)
		eq(t, "/links of a unit without links", len(items), 0)
		a.get(t, v1+"/units/"+randomUUID(14)+"/links").wantError(t, http.StatusNotFound)

		coll := c
		before := a.snap(t, v1+"/collections/"+c+"/units", v1+"/units/"+target+"/versions")
		for _, bad := range [][]J{
			{link(randomUUID(15), "", 0)},
			{link(randomUUID(15), "unit", 0)},
			{link(target, "asset", 0)},
			{link(asset, "unit", 0)},
			{link(target, "blob", 0)},
			{link(target, "collection", 0)},
			{link(coll, "", 0)},
			{{"target": "not-a-uuid"}},
			{{"target": target, "version": 0}},
			{{"target": target, "version": -1}},
			{{"target": target, "version": 1.5}},
			{{"target": target, "version": "1"}},
			{{"kind": "unit"}},
		} {
			a.post(t, v1+"/units", J{"collection": c, "olx": "<bad/>", "links": bad}).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/units/"+target+"/versions", J{"olx": "<bad/>", "links": bad}).wantError(t, http.StatusBadRequest)
			a.put(t, v1+"/units/"+target+"/draft", J{"olx": "<bad/>", "links": bad}).wantError(t, http.StatusBadRequest)
		}
		a.get(t, v1+"/units/"+target+"/versions/draft").wantError(t, http.StatusNotFound)
		a.unchanged(t, before, "links refused")
	})

	t.Run("cycles are 400", func(t *testing.T) {
		unit := func(olx string, links ...J) string {
			return a.newUnit(t, c, J{"olx": olx, "links": links}).str("uuid")
		}
		refused := func(what, u string, links ...J) {
			t.Helper()
			before := a.snap(t, v1+"/units/"+u, v1+"/units/"+u+"/versions", v1+"/units/"+u+"/versions/draft")
			a.post(t, v1+"/units/"+u+"/versions", J{"olx": "<cycle/>", "links": links}).wantError(t, http.StatusBadRequest)
			a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<cycle/>", "links": links}).wantError(t, http.StatusBadRequest)
			a.unchanged(t, before, what)
		}
		A := unit("<A/>")
		refused("a link to itself", A, link(A, "", 0))
		refused("a pinned link to itself", A, link(A, "unit", 1))
		B := unit("<B/>", link(A, "", 0))
		refused("B→A, A→B", A, link(B, "", 0))
		refused("B→A, A→B@1", A, link(B, "unit", 1))
		C := unit("<C/>", link(B, "unit", 1))
		refused("C→B@1→A, A→C", A, link(C, "", 0))

		// An edge from a draft counts.
		D := unit("<D/>")
		E := unit("<E/>")
		a.put(t, v1+"/units/"+D+"/draft", J{"olx": "<D-draft/>", "links": []J{link(E, "", 0)}}).want(t, http.StatusOK)
		refused("D's draft→E, E→D", E, link(D, "", 0))
		// An edge from a draft-only unit counts.
		F := a.post(t, v1+"/units", J{"collection": c, "olx": "<F/>", "draft": true, "links": []J{link(E, "", 0)}}).want(t, http.StatusCreated).obj(t).str("uuid")
		refused("F(draft only)→E, E→F", E, link(F, "", 0))

		// Only the latest version and the draft make edges, and a pinned
		// version's own links are not followed.
		H := unit("<H1/>")
		I := unit("<I/>")
		a.newUnitVersion(t, H, J{"olx": "<H1/>", "links": []J{link(I, "", 0)}}) // H v2 → I
		J1 := unit("<J/>", link(H, "unit", 2))                                  // J → H@2
		a.newUnitVersion(t, H, J{"olx": "<H3/>", "links": []J{}})               // H v3 → nothing
		// I → J closes no cycle: J → H, and H's latest (v3) links nothing,
		// though the pinned H@2 links I.
		a.newUnitVersion(t, I, J{"olx": "<I2/>", "links": []J{link(J1, "", 0)}})
		// An edge made by a later version counts.
		K := unit("<K/>")
		a.newUnitVersion(t, K, J{"olx": "<K2/>", "links": []J{link(A, "", 0)}})
		refused("K→A, A→K", A, link(K, "", 0))
	})

	t.Run("expand=links", func(t *testing.T) {
		tgt := a.newUnit(t, c, J{"olx": "<x1/>"})
		tgt2 := a.newUnitVersion(t, tgt.str("uuid"), J{"olx": "<x22/>"})
		as := a.newAsset(t, c, "static/expand.txt", "text/plain", []byte("expand me"))
		draftOnly := a.post(t, v1+"/units", J{"collection": c, "olx": "<do/>", "draft": true}).want(t, http.StatusCreated).obj(t)
		links := []J{link(tgt.str("uuid"), "", 0), link(tgt.str("uuid"), "", 1), link(as.str("uuid"), "", 0), link(draftOnly.str("uuid"), "", 0)}
		want := map[string]object{
			linkStr(tgt.str("uuid"), "unit", 0):       tgt2,
			linkStr(tgt.str("uuid"), "unit", 1):       tgt,
			linkStr(as.str("uuid"), "asset", 0):       as,
			linkStr(draftOnly.str("uuid"), "unit", 0): nil,
			linkStr(tgt.str("uuid"), "unit", 99):      nil,
			linkStr(as.str("uuid"), "asset", 99):      nil,
		}
		// A pin to a version the target does not have: API.md does not say
		// whether that is refused; when accepted it must resolve to null.
		for _, extra := range []J{link(tgt.str("uuid"), "unit", 99), link(as.str("uuid"), "asset", 99)} {
			if r := a.post(t, v1+"/units", J{"collection": c, "olx": "<probe/>", "links": []J{extra}}); r.status == http.StatusCreated {
				links = append(links, extra)
			} else {
				r.wantError(t, http.StatusBadRequest)
			}
		}
		u := a.newUnit(t, c, J{"olx": "<expand/>", "links": links}).str("uuid")
		x := a.get(t, v1+"/units/"+u+"?expand=links").want(t, http.StatusOK).obj(t)
		got := x.objs("links")
		eq(t, "expanded links", len(got), len(links))
		for _, l := range got {
			key := linksOf(object{"links": []any{map[string]any(l)}})[0]
			w, known := want[key]
			if !known {
				t.Errorf("unexpected link %s", key)
				continue
			}
			if !l.has("resolved") {
				t.Errorf("link %s lacks resolved", key)
				continue
			}
			if w == nil {
				if !l.isNull("resolved") {
					t.Errorf("link %s resolved = %v, want null", key, l["resolved"])
				}
				continue
			}
			r := l.obj("resolved")
			kind := "unit"
			if w.has("media_type") {
				kind = "asset"
			}
			eq(t, key+" resolved uuid", r.str("uuid"), w.str("uuid"))
			eq(t, key+" resolved kind", r.str("kind"), kind)
			eq(t, key+" resolved version", r.ver(), w.ver())
			eq(t, key+" resolved hash", r.str("hash"), w.str("hash"))
			rs, _ := r.int("size")
			ws, _ := w.int("size")
			eq(t, key+" resolved size", rs, ws)
		}
		// Without expand the unit is the plain object.
		plain := a.get(t, v1+"/units/"+u).want(t, http.StatusOK).obj(t)
		eq(t, "links without expand", len(plain.objs("links")), len(links))
	})

	t.Run("linked-by", func(t *testing.T) {
		tgt := a.newUnit(t, c, J{"olx": "<popular/>"}).str("uuid")
		as := a.newAsset(t, c, "static/popular.png", "image/png", []byte("popular")).str("uuid")
		pinned := a.newUnit(t, c, J{"olx": "<p/>", "links": []J{link(tgt, "unit", 1), link(as, "asset", 1)}})
		follows := a.newUnit(t, c2, J{"olx": "<f/>", "links": []J{link(tgt, "", 0), link(as, "", 0)}})
		draftLinker := a.newUnit(t, c, J{"olx": "<dl/>"}).str("uuid")
		a.put(t, v1+"/units/"+draftLinker+"/draft", J{"olx": "<dl2/>", "links": []J{link(tgt, "", 0), link(as, "", 0)}}).want(t, http.StatusOK)
		former := a.newUnit(t, c, J{"olx": "<former/>", "links": []J{link(tgt, "", 0), link(as, "", 0)}}).str("uuid")
		a.newUnitVersion(t, former, J{"olx": "<former2/>", "links": []J{}})
		later := a.newUnit(t, c, J{"olx": "<later1/>"}).str("uuid")
		later2 := a.newUnitVersion(t, later, J{"olx": "<later2/>", "links": []J{link(tgt, "unit", 1)}})

		for _, target := range []string{v1 + "/units/" + tgt, v1 + "/assets/" + as} {
			items := a.walk(t, target+"/linked-by", 0)
			want := []string{pinned.str("uuid"), follows.str("uuid")}
			if strings.Contains(target, "/units/") {
				want = append(want, later)
			}
			eqSlice(t, target+" linked-by", uuids(items), want)
			for _, it := range items {
				shape(t, "unit", it)
				if !it.has("link_version") {
					t.Errorf("linked-by item lacks link_version: %v", it)
					continue
				}
				switch it.str("uuid") {
				case pinned.str("uuid"), later:
					n, _ := it.int("link_version")
					eq(t, "link_version of a pinned link", n, 1)
				case follows.str("uuid"):
					if !it.isNull("link_version") {
						t.Errorf("link_version of an unpinned link = %v, want null", it["link_version"])
					}
				}
			}
			if len(items) == 3 && items[2].str("uuid") == later {
				eq(t, "linking unit at its latest version", items[2].str("hash"), later2.str("hash"))
			}
		}
		a.get(t, v1+"/units/"+randomUUID(16)+"/linked-by").wantError(t, http.StatusNotFound)
	})

	t.Run("delete", func(t *testing.T) {
		z := a.newUnit(t, c, J{"name": "doomed.xml", "olx": "<z/>"}).str("uuid")
		a.newUnitVersion(t, z, J{"olx": "<z2/>"})
		w := a.newUnit(t, c, J{"olx": "<w/>", "links": []J{link(z, "", 0)}}).str("uuid")
		paths := []string{v1 + "/units/" + z, v1 + "/units/" + z + "/versions", v1 + "/collections/" + c + "/units"}

		before := a.snap(t, paths...)
		a.del(t, v1+"/units/"+z).wantError(t, http.StatusConflict)
		a.unchanged(t, before, "DELETE of a unit a latest version links")

		a.newUnitVersion(t, w, J{"olx": "<w2/>", "links": []J{}})
		a.put(t, v1+"/units/"+w+"/draft", J{"olx": "<w3/>", "links": []J{link(z, "unit", 2)}}).want(t, http.StatusOK)
		before = a.snap(t, paths...)
		a.del(t, v1+"/units/"+z).wantError(t, http.StatusConflict)
		a.unchanged(t, before, "DELETE of a unit a draft links")

		a.del(t, v1+"/units/"+w+"/draft").want(t, http.StatusNoContent)
		// w's version 1 still links z: an old version does not hold it.
		a.del(t, v1+"/units/"+z).expect(t, http.StatusNoContent)
		for _, p := range []string{"", "/versions", "/versions/1", "/versions/2", "/olx", "/versions/1/olx", "/links", "/linked-by"} {
			a.get(t, v1+"/units/"+z+p).wantError(t, http.StatusNotFound)
		}
		a.get(t, v1+"/units/"+z+"/versions/draft").wantError(t, http.StatusNotFound)
		a.post(t, v1+"/units/"+z+"/versions", J{"olx": "<back/>"}).wantError(t, http.StatusNotFound)
		a.put(t, v1+"/units/"+z+"/draft", J{"olx": "<back/>"}).wantError(t, http.StatusNotFound)
		a.del(t, v1+"/units/"+z).wantError(t, http.StatusNotFound)
		if contains(uuids(a.walk(t, v1+"/collections/"+c+"/units", 0)), z) {
			t.Errorf("a deleted unit is still listed")
		}
		// A link to it is now a link to nothing.
		a.post(t, v1+"/units", J{"collection": c, "olx": "<late/>", "links": []J{link(z, "", 0)}}).wantError(t, http.StatusBadRequest)
		// Its name is free.
		a.newUnit(t, c, J{"name": "doomed.xml", "olx": "<reborn/>"})
		// A draft-only unit can be deleted too.
		d := a.post(t, v1+"/units", J{"collection": c, "olx": "<dd/>", "draft": true}).want(t, http.StatusCreated).obj(t).str("uuid")
		a.del(t, v1+"/units/"+d).expect(t, http.StatusNoContent)
		a.get(t, v1+"/units/"+d+"/versions/draft").wantError(t, http.StatusNotFound)
		a.del(t, v1+"/units/"+randomUUID(17)).wantError(t, http.StatusNotFound)
	})

	t.Run("OLX must be valid UTF-8", func(t *testing.T) {
		u := a.newUnit(t, c, J{"name": "utf8.xml", "olx": "<ok/>"}).str("uuid")
		before := a.snap(t, v1+"/collections/"+c+"/units", v1+"/units/"+u+"/versions", v1+"/units/"+u)
		bad := []string{"<a>\xff</a>", "<a>\xc3</a>", "\xed\xa0\x80", "<a>\xc0\xaf</a>"}
		for _, b := range bad {
			body := `{"collection": "` + c + `", "olx": "` + b + `"}`
			a.post(t, v1+"/units", rawJSON(body)).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/units/"+u+"/versions", rawJSON(`{"olx": "`+b+`"}`)).wantError(t, http.StatusBadRequest)
			a.put(t, v1+"/units/"+u+"/draft", rawJSON(`{"olx": "`+b+`"}`)).wantError(t, http.StatusBadRequest)
		}
		a.get(t, v1+"/units/"+u+"/versions/draft").wantError(t, http.StatusNotFound)
		a.unchanged(t, before, "invalid UTF-8")
	})

	t.Run("rejected creates change nothing", func(t *testing.T) {
		before := a.snap(t, v1+"/collections/"+c+"/units", v1+"/collections")
		a.post(t, v1+"/units", J{"collection": randomUUID(18), "olx": "<x/>"}).wantError(t, http.StatusBadRequest, http.StatusNotFound)
		a.post(t, v1+"/units", J{"collection": "nope", "olx": "<x/>"}).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/units", J{"olx": "<x/>"}).wantError(t, http.StatusBadRequest, http.StatusNotFound)
		a.post(t, v1+"/units", J{"collection": c, "olx": 5}).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/units", J{"collection": c, "olx": "<x/>", "garbage_collect": "no"}).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/units", J{"collection": c, "olx": "<x/>", "links": "none"}).wantError(t, http.StatusBadRequest)
		a.unchanged(t, before, "rejected creates")
	})

	t.Run("names with query characters", func(t *testing.T) {
		name := "a&b=c?d#e%f+g h/i.xml"
		u := a.newUnit(t, c, J{"name": name, "olx": "<q/>"}).str("uuid")
		eqSlice(t, "units by an awkward name", uuids(a.walk(t, v1+"/collections/"+c+"/units?name="+url.QueryEscape(name), 0)), []string{u})
	})
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func anys(objs []object) []any {
	out := make([]any, len(objs))
	for i, o := range objs {
		out[i] = map[string]any(o)
	}
	return out
}
