package apitest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// testConventions: the "Conventions" part of API.md that holds across
// endpoints: the JSON error shape for unknown paths and methods, no
// redirects, HEAD beside every GET, JSON content types, hash case, uuids,
// times and the garbage_collect default.
func testConventions(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	coll := a.newCollection(t, J{"name": "conventions"})
	c := coll.str("uuid")
	olx := "<problem>conventions</problem>"
	unit := a.newUnit(t, c, J{"name": "u.xml", "olx": olx})
	u := unit.str("uuid")
	a.put(t, v1+"/units/"+u+"/draft", J{"olx": "<problem>draft</problem>"}).want(t, http.StatusOK)
	asset := a.newAsset(t, c, "a.txt", "text/plain", []byte("conventions asset"))
	as := asset.str("uuid")
	blob := []byte("a blob for conventions")
	h := a.putBlob(t, blob)

	t.Run("unknown paths are 404 in the JSON shape", func(t *testing.T) {
		// "/" is not among them: the server may serve a page there (the
		// operators' console does).
		for _, p := range []string{
			"/nope", "/api", "/api/v1", "/api/v1/", "/api/v1/nope", "/api/v2/collections",
			"/api/v1/units/" + u + "/nope", "/api/v1/blobs/" + h + "/extra", "/api/v1/collections/" + c + "/versions/1/x",
		} {
			a.get(t, p).wantError(t, http.StatusNotFound)
			a.head(t, p).wantError(t, http.StatusNotFound)
			a.post(t, p, J{}).wantError(t, http.StatusNotFound, http.StatusMethodNotAllowed)
		}
	})

	t.Run("unknown methods are 405 in the JSON shape", func(t *testing.T) {
		before := a.snap(t, v1+"/blobs/"+h, v1+"/collections", v1+"/collections/"+c, v1+"/units/"+u, v1+"/units/"+u+"/versions", v1+"/assets/"+as)
		defer a.unchanged(t, before, "requests with unknown methods")
		for _, m := range []struct{ method, target string }{
			{http.MethodDelete, v1 + "/blobs/" + h},
			{http.MethodPatch, v1 + "/blobs/" + h},
			{http.MethodPut, v1 + "/collections"},
			{http.MethodDelete, v1 + "/collections"},
			{http.MethodPut, v1 + "/collections/" + c},
			{http.MethodPatch, v1 + "/units/" + u},
			{http.MethodPut, v1 + "/units/" + u},
			{http.MethodGet, v1 + "/resolve"},
			{http.MethodGet, v1 + "/blobs/missing"},
			{http.MethodDelete, v1 + "/units/" + u + "/versions/1"},
			{http.MethodPost, v1 + "/assets/" + as + "/content"},
			{http.MethodPost, "/healthz"},
		} {
			a.do(t, m.method, m.target, nil).wantError(t, http.StatusMethodNotAllowed)
		}
	})

	t.Run("the server never redirects", func(t *testing.T) {
		for _, p := range []string{
			v1 + "/collections/",
			v1 + "/collections/" + c + "/",
			v1 + "/units/" + u + "/versions/",
			v1 + "/blobs/" + h + "/",
			"/API/V1/collections",
			"/api/v1//collections",
			"/api/v1/./collections",
			"/api/v1/units/../collections",
			"/api//v1/units/" + u,
			"/healthz/",
		} {
			for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
				r := a.do(t, method, p, nil)
				if r.sane(t) && r.status < 400 {
					t.Errorf("a path not in API.md answered %d: %s", r.status, r)
				}
			}
		}
	})

	// Every GET route, with entities that exist and with ones that do not.
	gets := []string{
		v1 + "/blobs/" + h,
		v1 + "/collections",
		v1 + "/collections/" + c,
		v1 + "/collections/" + c + "/versions",
		v1 + "/collections/" + c + "/versions/1",
		v1 + "/collections/" + c + "/units",
		v1 + "/collections/" + c + "/units?name=u.xml",
		v1 + "/collections/" + c + "/assets",
		v1 + "/units/" + u,
		v1 + "/units/" + u + "?expand=links",
		v1 + "/units/" + u + "/versions",
		v1 + "/units/" + u + "/versions/1",
		v1 + "/units/" + u + "/versions/draft",
		v1 + "/units/" + u + "/olx",
		v1 + "/units/" + u + "/versions/1/olx",
		v1 + "/units/" + u + "/versions/draft/olx",
		v1 + "/units/" + u + "/links",
		v1 + "/units/" + u + "/linked-by",
		v1 + "/assets/" + as,
		v1 + "/assets/" + as + "/versions",
		v1 + "/assets/" + as + "/versions/1",
		v1 + "/assets/" + as + "/content",
		v1 + "/assets/" + as + "/versions/1/content",
		v1 + "/assets/" + as + "/linked-by",
		v1 + "/gc/runs",
		"/healthz",
		"/readyz",
		"/metrics",
	}
	t.Run("every GET answers with its documented type", func(t *testing.T) {
		for _, p := range gets {
			r := a.get(t, p)
			if strings.HasPrefix(p, v1+"/gc") {
				// A later issue builds GC: only the shape is checked here.
				if r.status != http.StatusOK {
					r.errorShape(t)
				}
				continue
			}
			if !r.sane(t) {
				continue
			}
			if !r.expect(t, http.StatusOK) {
				continue
			}
			ct := r.header.Get("Content-Type")
			switch {
			case strings.HasPrefix(p, v1+"/blobs/"), strings.HasSuffix(p, "/content"),
				strings.HasSuffix(p, "/olx"), !strings.HasPrefix(p, v1):
			default:
				if !isJSONType(ct) {
					t.Errorf("GET %s: Content-Type %q, want application/json", p, ct)
				} else {
					r.value(t)
				}
			}
		}
	})

	t.Run("HEAD beside every GET", func(t *testing.T) {
		missing := randomUUID(1)
		absent := hashOf([]byte("never stored"))
		all := append([]string{
			v1 + "/blobs/" + absent,
			v1 + "/collections/" + missing,
			v1 + "/collections/" + missing + "/versions",
			v1 + "/collections/" + c + "/versions/9",
			v1 + "/units/" + missing,
			v1 + "/units/" + u + "/versions/9",
			v1 + "/units/" + u + "/versions/9/olx",
			v1 + "/assets/" + missing,
			v1 + "/assets/" + as + "/versions/9/content",
		}, gets...)
		for _, p := range all {
			g := a.get(t, p)
			h := a.head(t, p)
			if h.status == http.StatusMethodNotAllowed {
				t.Errorf("HEAD %s is 405 beside GET %d", p, g.status)
				continue
			}
			if h.status != g.status {
				t.Errorf("HEAD %s → %d, GET → %d", p, h.status, g.status)
			}
			if len(h.body) != 0 {
				t.Errorf("HEAD %s answered with a body", p)
			}
			if h.status < 400 {
				// HEAD tells the same type and, for bytes, the same length.
				if hc, gc := mediaType(h.header.Get("Content-Type")), mediaType(g.header.Get("Content-Type")); hc != gc {
					t.Errorf("HEAD %s Content-Type %q, GET %q", p, hc, gc)
				}
				if strings.HasPrefix(p, v1+"/blobs/") || strings.HasSuffix(p, "/content") || strings.HasSuffix(p, "/olx") {
					if cl := h.header.Get("Content-Length"); cl != strconv.Itoa(len(g.body)) {
						t.Errorf("HEAD %s Content-Length %q, GET has %d bytes", p, cl, len(g.body))
					}
				}
			}
		}
	})

	t.Run("hashes are lower case out, either case in", func(t *testing.T) {
		up := strings.ToUpper(h)
		r := a.get(t, v1+"/blobs/"+up)
		if r.expect(t, http.StatusOK) {
			eq(t, "GET by upper-case hash: body", string(r.body), string(blob))
			eq(t, "ETag of GET by upper-case hash", r.header.Get("ETag"), `"`+h+`"`)
		}
		a.head(t, v1+"/blobs/"+up).expect(t, http.StatusOK)
		for _, o := range []object{unit, asset} {
			eq(t, "hash in a response", o.str("hash"), strings.ToLower(o.str("hash")))
		}
		m := a.post(t, v1+"/blobs/missing", J{"hashes": []string{up, strings.ToUpper(hashOf([]byte("nope")))}}).want(t, http.StatusOK).obj(t)
		eqSlice(t, "missing (asked in upper case)", m.strs("missing"), []string{hashOf([]byte("nope"))})
	})

	t.Run("uuids, versions and times", func(t *testing.T) {
		shape(t, "collection", coll)
		shape(t, "unit", unit)
		shape(t, "asset", asset)
		eq(t, "collection version", coll.ver(), 1)
		eq(t, "unit version", unit.ver(), 1)
		eq(t, "asset version", asset.ver(), 1)
		d := a.get(t, v1+"/units/"+u+"/versions/draft").want(t, http.StatusOK).obj(t)
		shape(t, "unit", d)
		if !d.isNull("version") {
			t.Errorf("draft version %v, want null", d["version"])
		}
		if coll.str("uuid") == unit.str("uuid") || unit.str("uuid") == asset.str("uuid") {
			t.Errorf("the server gave two entities one uuid")
		}
	})

	t.Run("garbage_collect defaults to false", func(t *testing.T) {
		for _, o := range []object{coll, unit, asset} {
			if v, ok := o.bool("garbage_collect"); !ok || v {
				t.Errorf("garbage_collect = %v, want false when not given: %v", o["garbage_collect"], o)
			}
		}
		d := a.get(t, v1+"/units/"+u+"/versions/draft").want(t, http.StatusOK).obj(t)
		if v, ok := d.bool("garbage_collect"); !ok || v {
			t.Errorf("draft garbage_collect = %v, want false", d["garbage_collect"])
		}
	})

	t.Run("bad JSON bodies are 400", func(t *testing.T) {
		before := a.snap(t, v1+"/collections", v1+"/units/"+u+"/versions", v1+"/collections/"+c+"/units")
		for _, body := range []string{``, `{`, `nope`, `[]`, `"x"`, `{"a": 1} {"b": 2}`} {
			a.post(t, v1+"/collections", rawJSON(body)).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/units", rawJSON(body)).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/units/"+u+"/versions", rawJSON(body)).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/resolve", rawJSON(body)).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/blobs/missing", rawJSON(body)).wantError(t, http.StatusBadRequest)
		}
		a.post(t, v1+"/collections", rawJSON(`{"name": 1}`)).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/units", rawJSON(`{"collection": "`+c+`", "olx": 5}`)).wantError(t, http.StatusBadRequest)
		a.unchanged(t, before, "bad JSON bodies")
	})
}
