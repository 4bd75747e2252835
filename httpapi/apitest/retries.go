package apitest

import (
	"net/http"
	"strings"
	"testing"
)

// testRetries: "Retries" (Idempotency-Key) of Conventions.
func testRetries(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	const hdr = "Idempotency-Key"

	// replayed checks that a repeat of a keyed request answers the first
	// answer and that the GETs in after did not change.
	replayed := func(t *testing.T, first *reply, again func() *reply, after snapshot) {
		t.Helper()
		r := again()
		if r.status != first.status {
			t.Errorf("replay status %d, first %d: %s", r.status, first.status, r)
			return
		}
		if eq(t, "replayed object", r.obj(t).String(), first.obj(t).String()) {
			a.unchanged(t, after, "a replayed request")
		}
	}

	t.Run("collections", func(t *testing.T) {
		body := J{"name": "retried", "owner": "importer"}
		first := a.post(t, v1+"/collections", body, hdr, "coll-1").want(t, http.StatusCreated)
		after := a.snap(t, v1+"/collections")
		replayed(t, first, func() *reply { return a.post(t, v1+"/collections", body, hdr, "coll-1") }, after)
		replayed(t, first, func() *reply { return a.post(t, v1+"/collections", body, hdr, "coll-1") }, after)
		a.post(t, v1+"/collections", J{"name": "retried", "owner": "someone else"}, hdr, "coll-1").wantError(t, http.StatusConflict)
		a.unchanged(t, after, "a reused key with another body")
		replayed(t, first, func() *reply { return a.post(t, v1+"/collections", body, hdr, "coll-1") }, after)
		eq(t, "collections after retries", len(a.walk(t, v1+"/collections", 0)), 1)
		// Without a key every POST creates.
		a.post(t, v1+"/collections", body).want(t, http.StatusCreated)
		a.post(t, v1+"/collections", body).want(t, http.StatusCreated)
		eq(t, "collections after unkeyed POSTs", len(a.walk(t, v1+"/collections", 0)), 3)
	})

	c := a.newCollection(t, J{"name": "retries"}).str("uuid")

	t.Run("units, versions and publish", func(t *testing.T) {
		body := J{"collection": c, "name": "retried.xml", "olx": "<retried/>"}
		first := a.post(t, v1+"/units", body, hdr, "unit-1").want(t, http.StatusCreated)
		u := first.obj(t).str("uuid")
		after := a.snap(t, v1+"/collections/"+c+"/units")
		replayed(t, first, func() *reply { return a.post(t, v1+"/units", body, hdr, "unit-1") }, after)
		a.post(t, v1+"/units", J{"collection": c, "name": "other.xml", "olx": "<other/>"}, hdr, "unit-1").wantError(t, http.StatusConflict)
		a.unchanged(t, after, "a reused key with another body")

		// A replayed new version answers 201 and the version it made, not
		// the 200 of an identical version.
		vbody := J{"olx": "<retried v2/>"}
		vfirst := a.post(t, v1+"/units/"+u+"/versions", vbody, hdr, "version-1").want(t, http.StatusCreated)
		eq(t, "keyed version", vfirst.obj(t).ver(), 2)
		after = a.snap(t, v1+"/units/"+u+"/versions", v1+"/units/"+u)
		replayed(t, vfirst, func() *reply { return a.post(t, v1+"/units/"+u+"/versions", vbody, hdr, "version-1") }, after)
		a.post(t, v1+"/units/"+u+"/versions", J{"olx": "<retried v3/>"}, hdr, "version-1").wantError(t, http.StatusConflict)
		a.unchanged(t, after, "a reused key with another body")
		// Versions made since do not change the replay.
		a.newUnitVersion(t, u, J{"olx": "<retried v3/>"})
		after = a.snap(t, v1+"/units/"+u+"/versions", v1+"/units/"+u)
		replayed(t, vfirst, func() *reply { return a.post(t, v1+"/units/"+u+"/versions", vbody, hdr, "version-1") }, after)

		// Publishing is a POST that creates a version.
		a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<retried draft/>"}).want(t, http.StatusOK)
		pfirst := a.post(t, v1+"/units/"+u+"/draft/publish", nil, hdr, "publish-1").want(t, http.StatusCreated)
		eq(t, "published version", pfirst.obj(t).ver(), 4)
		after = a.snap(t, v1+"/units/"+u+"/versions", v1+"/units/"+u)
		replayed(t, pfirst, func() *reply { return a.post(t, v1+"/units/"+u+"/draft/publish", nil, hdr, "publish-1") }, after)

		// A draft-only unit.
		dbody := J{"collection": c, "olx": "<retried draft only/>", "draft": true}
		dfirst := a.post(t, v1+"/units", dbody, hdr, "unit-draft-1").want(t, http.StatusCreated)
		after = a.snap(t, v1+"/units/"+dfirst.obj(t).str("uuid")+"/versions/draft")
		replayed(t, dfirst, func() *reply { return a.post(t, v1+"/units", dbody, hdr, "unit-draft-1") }, after)
	})

	t.Run("assets and blobs", func(t *testing.T) {
		target := v1 + "/assets?collection=" + c + "&name=retried.bin"
		data := []byte("retried asset bytes")
		first := a.post(t, target, data, "Content-Type", "text/plain", hdr, "asset-1").want(t, http.StatusCreated)
		id := first.obj(t).str("uuid")
		after := a.snap(t, v1+"/collections/"+c+"/assets")
		replayed(t, first, func() *reply {
			return a.post(t, target, chunked{strings.NewReader(string(data))}, "Content-Type", "text/plain", hdr, "asset-1")
		}, after)
		a.post(t, target, []byte("other bytes"), "Content-Type", "text/plain", hdr, "asset-1").wantError(t, http.StatusConflict)
		a.unchanged(t, after, "a reused key with other bytes")

		vt := v1 + "/assets/" + id + "/versions"
		vfirst := a.post(t, vt, []byte("retried asset v2"), "Content-Type", "text/plain", hdr, "asset-version-1").want(t, http.StatusCreated)
		after = a.snap(t, vt)
		replayed(t, vfirst, func() *reply {
			return a.post(t, vt, []byte("retried asset v2"), "Content-Type", "text/plain", hdr, "asset-version-1")
		}, after)
		h := a.putBlob(t, []byte("retried by hash"))
		hfirst := a.post(t, vt+"?hash="+h, nil, hdr, "asset-version-2").want(t, http.StatusCreated)
		after = a.snap(t, vt)
		replayed(t, hfirst, func() *reply { return a.post(t, vt+"?hash="+h, nil, hdr, "asset-version-2") }, after)

		bfirst := a.post(t, v1+"/blobs", []byte("retried blob"), hdr, "blob-1").want(t, http.StatusCreated)
		replayed(t, bfirst, func() *reply { return a.post(t, v1+"/blobs", []byte("retried blob"), hdr, "blob-1") }, a.snap(t))
		a.post(t, v1+"/blobs", []byte("another blob"), hdr, "blob-1").wantError(t, http.StatusConflict)
		a.head(t, v1+"/blobs/"+hashOf([]byte("another blob"))).wantError(t, http.StatusNotFound)
	})

	t.Run("keys are scoped to the method and path", func(t *testing.T) {
		const key = "shared-key"
		before := len(a.walk(t, v1+"/collections", 0))
		coll := a.post(t, v1+"/collections", J{"name": "scoped"}, hdr, key).want(t, http.StatusCreated).obj(t)
		eq(t, "collections", len(a.walk(t, v1+"/collections", 0)), before+1)
		x := a.post(t, v1+"/units", J{"collection": c, "olx": "<x/>"}, hdr, key).want(t, http.StatusCreated).obj(t)
		y := a.post(t, v1+"/units", J{"collection": c, "olx": "<y/>"}, hdr, key+"-y").want(t, http.StatusCreated).obj(t)
		if x.str("uuid") == coll.str("uuid") {
			t.Errorf("a key on /units replayed the answer of /collections")
		}
		vx := a.post(t, v1+"/units/"+x.str("uuid")+"/versions", J{"olx": "<x2/>"}, hdr, key).want(t, http.StatusCreated).obj(t)
		vy := a.post(t, v1+"/units/"+y.str("uuid")+"/versions", J{"olx": "<x2/>"}, hdr, key).want(t, http.StatusCreated).obj(t)
		eq(t, "x's version", vx.str("uuid"), x.str("uuid"))
		eq(t, "y's version (same key, other path)", vy.str("uuid"), y.str("uuid"))
		a.post(t, v1+"/assets?collection="+c+"&name=scoped.bin", []byte("s"), "Content-Type", "text/plain", hdr, key).want(t, http.StatusCreated)
		a.post(t, v1+"/blobs", []byte("scoped"), hdr, key).want(t, http.StatusCreated)
	})

	t.Run("keys up to 255 characters", func(t *testing.T) {
		key := strings.Repeat("k", 255)
		body := J{"name": "long key"}
		first := a.post(t, v1+"/collections", body, hdr, key).want(t, http.StatusCreated)
		replayed(t, first, func() *reply { return a.post(t, v1+"/collections", body, hdr, key) }, a.snap(t, v1+"/collections"))
		// A key of 255 characters with punctuation.
		key = strings.Repeat("a-/_:.", 42) + "a=b"
		first = a.post(t, v1+"/collections", J{"name": "odd key"}, hdr, key).want(t, http.StatusCreated)
		replayed(t, first, func() *reply { return a.post(t, v1+"/collections", J{"name": "odd key"}, hdr, key) }, a.snap(t, v1+"/collections"))
		// Over 255 characters API.md does not say; only sanity is checked.
		a.post(t, v1+"/collections", body, hdr, strings.Repeat("k", 256)).sane(t)
	})
}
