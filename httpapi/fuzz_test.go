package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/refs"
)

// jsonEndpoints are the routes whose body is JSON; {c}, {u} stand for the
// uuid of a collection and a unit the fuzz target creates first.
var jsonEndpoints = []struct{ method, path string }{
	{"POST", "/api/v1/collections"},
	{"PATCH", "/api/v1/collections/{c}"},
	{"POST", "/api/v1/units"},
	{"POST", "/api/v1/units/{u}/versions"},
	{"PUT", "/api/v1/units/{u}/draft"},
	{"POST", "/api/v1/resolve"},
	{"POST", "/api/v1/blobs/missing"},
}

// FuzzJSONBodies sends arbitrary bodies to every JSON endpoint: the server
// never answers 5xx, and every refusal has the API's error shape.
func FuzzJSONBodies(f *testing.F) {
	seeds := []string{
		`{"name":"a","description":"d","garbage_collect":true}`,
		`{"collection":"{c}","olx":"<p/>","links":[{"target":"{u}","kind":"unit","version":null}]}`,
		`{"olx":"<p>x</p>","links":[],"name":"n.xml"}`,
		`{"refs":["{u}","{u}@1","{u}@draft","{c}"],"include_olx":true}`,
		`{"hashes":["` + strings.Repeat("a", 64) + `"]}`,
		`{"olx":"\ud800"}`, `{"name":"\u0000"}`, `[]`, `null`, `{"links":[{"target":1}]}`,
		`{"version":-1}`, `{"refs":[null]}`, `{"olx":"` + strings.Repeat("x", 5000) + `"}`,
	}
	for i, s := range seeds {
		for e := range jsonEndpoints {
			if (i+e)%3 == 0 {
				f.Add(uint8(e), []byte(s))
			}
		}
	}
	idx, err := pebbleindex.Open("", pebbleindex.Options{InMemory: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { idx.Close() })
	backend, err := dirstore.Open(f.TempDir(), dirstore.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	blobs := cas.New(backend, cas.Options{})
	f.Cleanup(func() { blobs.Close() })
	h := New(refs.New(idx, blobs, refs.Options{}), Options{})
	call := func(method, path string, body []byte) (int, []byte) {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	uuidOf := func(code int, body []byte) string {
		var v struct {
			UUID string `json:"uuid"`
		}
		if code != 201 || json.Unmarshal(body, &v) != nil {
			f.Fatalf("setup: %d %s", code, body)
		}
		return v.UUID
	}
	col := uuidOf(call("POST", "/api/v1/collections", []byte(`{"name":"fuzz"}`)))
	unit := uuidOf(call("POST", "/api/v1/units", []byte(`{"collection":"`+col+`","olx":"<p/>"}`)))
	fill := strings.NewReplacer("{c}", col, "{u}", unit)

	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e := jsonEndpoints[int(which)%len(jsonEndpoints)]
		body = []byte(fill.Replace(string(body)))
		code, out := call(e.method, fill.Replace(e.path), body)
		if code >= 500 {
			t.Fatalf("%s %s %q: %d %s", e.method, e.path, body, code, out)
		}
		if code >= 400 {
			var er struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(out, &er); err != nil || er.Error.Code == "" || er.Error.Message == "" {
				t.Fatalf("%s %s %q: %d with a body not in the error shape: %s", e.method, e.path, body, code, out)
			}
		}
	})
}
