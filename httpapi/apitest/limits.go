package apitest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// maxJSON is the largest JSON body API.md accepts by default.
const maxJSON = 16 << 20

// testLimits: "A request over a limit is 413: JSON bodies up to 16 MiB …;
// uploads unlimited unless the server sets a limit."
func testLimits(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	c := a.newCollection(t, J{"name": "limits"}).str("uuid")
	u := a.newUnit(t, c, J{"olx": "<small/>"}).str("uuid")

	// unitBody is a JSON body of exactly n bytes that creates a unit.
	unitBody := func(n int) (rawJSON, string) {
		prefix := `{"collection": "` + c + `", "olx": "`
		suffix := `"}`
		olx := strings.Repeat("x", n-len(prefix)-len(suffix))
		return rawJSON(prefix + olx + suffix), olx
	}

	t.Run("a JSON body of 16 MiB is accepted", func(t *testing.T) {
		body, olx := unitBody(maxJSON)
		o := a.post(t, v1+"/units", body).want(t, http.StatusCreated).obj(t)
		eq(t, "hash of the largest OLX", o.str("hash"), hashOf([]byte(olx)))
		n, _ := o.int("size")
		eq(t, "size of the largest OLX", n, int64(len(olx)))
	})

	t.Run("a JSON body over 16 MiB is 413 and changes nothing", func(t *testing.T) {
		before := a.snap(t, v1+"/collections/"+c+"/units", v1+"/units/"+u+"/versions", v1+"/collections/"+c+"/versions")
		body, _ := unitBody(maxJSON + 1)
		a.post(t, v1+"/units", body).wantError(t, http.StatusRequestEntityTooLarge)
		body, _ = unitBody(maxJSON + 3<<20)
		a.post(t, v1+"/units", body).wantError(t, http.StatusRequestEntityTooLarge)
		big := strings.Repeat("y", maxJSON+1)
		a.post(t, v1+"/units/"+u+"/versions", J{"olx": big}).wantError(t, http.StatusRequestEntityTooLarge)
		a.put(t, v1+"/units/"+u+"/draft", J{"olx": big}).wantError(t, http.StatusRequestEntityTooLarge)
		a.patch(t, v1+"/collections/"+c, J{"description": big}).wantError(t, http.StatusRequestEntityTooLarge)
		a.post(t, v1+"/collections", J{"name": "big", "description": big}).wantError(t, http.StatusRequestEntityTooLarge)
		// White space counts: the limit is on the body, not on its values.
		pad := rawJSON(`{"refs": [` + strings.Repeat(" ", maxJSON) + `]}`)
		a.post(t, v1+"/resolve", pad).wantError(t, http.StatusRequestEntityTooLarge)
		a.post(t, v1+"/blobs/missing", rawJSON(`{"hashes": [`+strings.Repeat(" ", maxJSON)+`]}`)).wantError(t, http.StatusRequestEntityTooLarge)
		// Streamed with no Content-Length, too.
		body, _ = unitBody(maxJSON + 1)
		a.post(t, v1+"/units", chunked{bytes.NewReader(body)}, "Content-Type", "application/json").wantError(t, http.StatusRequestEntityTooLarge)
		a.get(t, v1+"/units/"+u+"/versions/draft").wantError(t, http.StatusNotFound)
		a.unchanged(t, before, "bodies over 16 MiB")
	})

	t.Run("uploads are not JSON bodies", func(t *testing.T) {
		// API.md: uploads are unlimited unless the server sets a limit. The
		// suite assumes a server started with its defaults.
		data := pattern("over the JSON limit", maxJSON+(1<<20))
		o := a.post(t, v1+"/assets?collection="+c+"&name=big.bin", chunked{bytes.NewReader(data)}, "Content-Type", "application/octet-stream").want(t, http.StatusCreated).obj(t)
		eq(t, "hash of a 17 MiB upload", o.str("hash"), hashOf(data))
		a.put(t, v1+"/blobs/"+hashOf(data), data).expect(t, http.StatusOK)
		js := append([]byte(`{"olx": "`), data[:maxJSON]...)
		js = append(js, `"}`...)
		o = a.post(t, v1+"/assets?collection="+c+"&name=big.json", js, "Content-Type", "application/json").want(t, http.StatusCreated).obj(t)
		eq(t, "hash of a JSON file over 16 MiB", o.str("hash"), hashOf(js))
	})
}
