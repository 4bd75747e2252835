package apitest

import (
	"net/http"
	"net/url"
	"testing"
)

// testCollections: "Collections".
func testCollections(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	full := J{"name": "Physics 101", "description": "Mechanics", "owner": "MITx", "author": "Ada", "license": "CC-BY-4.0", "garbage_collect": true}
	var c1, c2 object

	t.Run("create", func(t *testing.T) {
		r := a.post(t, v1+"/collections", full)
		r.want(t, http.StatusCreated)
		c1 = r.obj(t)
		shape(t, "collection", c1)
		eq(t, "version", c1.ver(), 1)
		for _, f := range []string{"name", "description", "owner", "author", "license"} {
			eq(t, f, c1.str(f), full[f].(string))
		}
		gc, _ := c1.bool("garbage_collect")
		eq(t, "garbage_collect", gc, true)
		c2 = a.newCollection(t, J{"name": "Chemistry"})
		eq(t, "version", c2.ver(), 1)
		gc, _ = c2.bool("garbage_collect")
		eq(t, "garbage_collect when not given", gc, false)
		for _, f := range []string{"description", "owner", "author", "license"} {
			eq(t, f+" when not given", c2.str(f), "")
		}
	})
	if c1 == nil || c2 == nil {
		t.Fatal("cannot go on without collections")
	}
	id1, id2 := c1.str("uuid"), c2.str("uuid")

	t.Run("get", func(t *testing.T) {
		g := a.get(t, v1+"/collections/"+id1).want(t, http.StatusOK).obj(t)
		eq(t, "GET = POST answer", g.String(), c1.String())
		a.get(t, v1+"/collections/"+randomUUID(2)).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/not-a-uuid").wantError(t, http.StatusBadRequest, http.StatusNotFound)
	})

	t.Run("list in creation order", func(t *testing.T) {
		items := a.walk(t, v1+"/collections", 0)
		eqSlice(t, "collections", uuids(items), []string{id1, id2})
		for _, it := range items {
			shape(t, "collection", it)
		}
	})

	t.Run("patch makes a new version", func(t *testing.T) {
		before := a.snap(t, v1+"/collections/"+id1+"/versions/1")
		r := a.patch(t, v1+"/collections/"+id1, J{"description": "Mechanics and waves"})
		r.want(t, http.StatusOK)
		p := r.obj(t)
		shape(t, "collection", p)
		eq(t, "uuid", p.str("uuid"), id1)
		eq(t, "version", p.ver(), 2)
		eq(t, "description", p.str("description"), "Mechanics and waves")
		for _, f := range []string{"name", "owner", "author", "license"} {
			eq(t, f+" kept", p.str(f), full[f].(string))
		}
		gc, _ := p.bool("garbage_collect")
		eq(t, "garbage_collect kept", gc, true)
		p = a.patch(t, v1+"/collections/"+id1, J{"name": "Physics I", "garbage_collect": false}).want(t, http.StatusOK).obj(t)
		eq(t, "version", p.ver(), 3)
		eq(t, "name", p.str("name"), "Physics I")
		eq(t, "description kept", p.str("description"), "Mechanics and waves")
		gc, _ = p.bool("garbage_collect")
		eq(t, "garbage_collect", gc, false)
		g := a.get(t, v1+"/collections/"+id1).want(t, http.StatusOK).obj(t)
		eq(t, "GET after PATCH", g.String(), p.String())
		// The list shows the latest version of each.
		items := a.walk(t, v1+"/collections", 0)
		if len(items) == 2 {
			eq(t, "listed version", items[0].ver(), 3)
			eq(t, "listed name", items[0].str("name"), "Physics I")
		}
		a.unchanged(t, before, "PATCH (old versions never change)")
	})

	t.Run("history", func(t *testing.T) {
		vs := a.walk(t, v1+"/collections/"+id1+"/versions", 0)
		eqSlice(t, "versions, newest first", versions(vs), []int64{3, 2, 1})
		v1o := a.get(t, v1+"/collections/"+id1+"/versions/1").want(t, http.StatusOK).obj(t)
		eq(t, "version 1 as created", v1o.String(), c1.String())
		v2o := a.get(t, v1+"/collections/"+id1+"/versions/2").want(t, http.StatusOK).obj(t)
		eq(t, "version 2 description", v2o.str("description"), "Mechanics and waves")
		eq(t, "version 2 name", v2o.str("name"), "Physics 101")
		a.get(t, v1+"/collections/"+id1+"/versions/4").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+id1+"/versions/draft").wantError(t, http.StatusNotFound, http.StatusBadRequest)
		a.get(t, v1+"/collections/"+randomUUID(3)+"/versions").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+randomUUID(3)+"/versions/1").wantError(t, http.StatusNotFound)
	})

	t.Run("rejected patches change nothing", func(t *testing.T) {
		before := a.snap(t, v1+"/collections", v1+"/collections/"+id1+"/versions")
		a.patch(t, v1+"/collections/"+randomUUID(4), J{"name": "x"}).wantError(t, http.StatusNotFound)
		a.patch(t, v1+"/collections/"+id1, rawJSON(`{"name": `)).wantError(t, http.StatusBadRequest)
		a.patch(t, v1+"/collections/"+id1, rawJSON(`{"name": 7}`)).wantError(t, http.StatusBadRequest)
		a.patch(t, v1+"/collections/"+id1, rawJSON(`{"garbage_collect": "yes"}`)).wantError(t, http.StatusBadRequest)
		a.unchanged(t, before, "rejected PATCHes")
	})

	// Fill c1 with units and an asset.
	uA := a.newUnit(t, id1, J{"name": "a.xml", "olx": "<a/>"})
	uB := a.newUnit(t, id1, J{"name": "b.xml", "olx": "<b/>", "links": []J{link(uA.str("uuid"), "unit", 0)}})
	as := a.newAsset(t, id1, "static/c.png", "image/png", []byte("png bytes"))
	uB2 := a.newUnitVersion(t, uB.str("uuid"), J{"olx": "<b>2</b>"})

	t.Run("units and assets of a collection", func(t *testing.T) {
		units := a.walk(t, v1+"/collections/"+id1+"/units", 0)
		eqSlice(t, "units", uuids(units), []string{uA.str("uuid"), uB.str("uuid")})
		if len(units) == 2 {
			eq(t, "a unit is listed at its latest version", units[1].String(), uB2.String())
		}
		assets := a.walk(t, v1+"/collections/"+id1+"/assets", 0)
		eqSlice(t, "assets", uuids(assets), []string{as.str("uuid")})
		if len(assets) == 1 {
			eq(t, "listed asset", assets[0].String(), as.String())
		}
		byName := a.walk(t, v1+"/collections/"+id1+"/units?name=b.xml", 0)
		eqSlice(t, "units named b.xml", uuids(byName), []string{uB.str("uuid")})
		byName = a.walk(t, v1+"/collections/"+id1+"/assets?name="+url.QueryEscape("static/c.png"), 0)
		eqSlice(t, "assets named static/c.png", uuids(byName), []string{as.str("uuid")})
		// Units and assets share names but not lists.
		eq(t, "units named like the asset", len(a.walk(t, v1+"/collections/"+id1+"/units?name="+url.QueryEscape("static/c.png"), 0)), 0)
		eq(t, "assets named like a unit", len(a.walk(t, v1+"/collections/"+id1+"/assets?name=a.xml", 0)), 0)
		eq(t, "units named nothing known", len(a.walk(t, v1+"/collections/"+id1+"/units?name=nope", 0)), 0)
		eq(t, "units of an empty collection", len(a.walk(t, v1+"/collections/"+id2+"/units", 0)), 0)
		eq(t, "assets of an empty collection", len(a.walk(t, v1+"/collections/"+id2+"/assets", 0)), 0)
		a.get(t, v1+"/collections/"+randomUUID(5)+"/units").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+randomUUID(5)+"/assets").wantError(t, http.StatusNotFound)
	})

	t.Run("delete", func(t *testing.T) {
		// A collection that holds units or assets is 409.
		snapshot := []string{
			v1 + "/collections", v1 + "/collections/" + id1, v1 + "/collections/" + id1 + "/units",
			v1 + "/collections/" + id1 + "/assets", v1 + "/units/" + uA.str("uuid"), v1 + "/assets/" + as.str("uuid"),
		}
		before := a.snap(t, snapshot...)
		a.del(t, v1+"/collections/"+id1).wantError(t, http.StatusConflict)
		a.del(t, v1+"/collections/"+id1+"?recursive=false").wantError(t, http.StatusConflict)
		a.unchanged(t, before, "DELETE of a collection that holds entities")

		// Recursive delete is refused while a unit of another collection
		// links into it, and changes nothing.
		other := a.newUnit(t, id2, J{"name": "outside.xml", "olx": "<o/>", "links": []J{link(uB.str("uuid"), "", 1)}})
		before = a.snap(t, snapshot...)
		a.del(t, v1+"/collections/"+id1+"?recursive=true").wantError(t, http.StatusConflict)
		a.unchanged(t, before, "recursive DELETE refused while linked from another collection")

		// Once the outside link is gone from the latest version, it may go.
		a.newUnitVersion(t, other.str("uuid"), J{"olx": "<o>2</o>", "links": []J{}})
		a.del(t, v1+"/collections/"+id1+"?recursive=true").expect(t, http.StatusNoContent)
		a.get(t, v1+"/collections/"+id1).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+id1+"/versions").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+id1+"/versions/1").wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+id1+"/units").wantError(t, http.StatusNotFound)
		for _, u := range []string{uA.str("uuid"), uB.str("uuid")} {
			a.get(t, v1+"/units/"+u).wantError(t, http.StatusNotFound)
			a.get(t, v1+"/units/"+u+"/versions/1").wantError(t, http.StatusNotFound)
		}
		a.get(t, v1+"/assets/"+as.str("uuid")).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/assets/"+as.str("uuid")+"/content").wantError(t, http.StatusNotFound)
		eqSlice(t, "collections after delete", uuids(a.walk(t, v1+"/collections", 0)), []string{id2})
		a.del(t, v1+"/collections/"+id1).wantError(t, http.StatusNotFound)
		a.del(t, v1+"/collections/"+randomUUID(6)).wantError(t, http.StatusNotFound)

		// An empty collection goes at once; so does its history.
		c3 := a.newCollection(t, J{"name": "empty"})
		a.patch(t, v1+"/collections/"+c3.str("uuid"), J{"name": "still empty"}).want(t, http.StatusOK)
		a.del(t, v1+"/collections/"+c3.str("uuid")).expect(t, http.StatusNoContent)
		a.get(t, v1+"/collections/"+c3.str("uuid")).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/collections/"+c3.str("uuid")+"/versions/2").wantError(t, http.StatusNotFound)
		a.patch(t, v1+"/collections/"+c3.str("uuid"), J{"name": "x"}).wantError(t, http.StatusNotFound)

		// Recursive delete of a collection whose units link each other.
		c4 := a.newCollection(t, J{"name": "self-linked"})
		x := a.newUnit(t, c4.str("uuid"), J{"olx": "<x/>"})
		a.newUnit(t, c4.str("uuid"), J{"olx": "<y/>", "links": []J{link(x.str("uuid"), "unit", 0)}})
		a.newAsset(t, c4.str("uuid"), "z.bin", "application/octet-stream", []byte("z"))
		a.del(t, v1+"/collections/"+c4.str("uuid")+"?recursive=true").expect(t, http.StatusNoContent)
		a.get(t, v1+"/units/"+x.str("uuid")).wantError(t, http.StatusNotFound)
		eqSlice(t, "collections at the end", uuids(a.walk(t, v1+"/collections", 0)), []string{id2})
	})
}
