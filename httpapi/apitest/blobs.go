package apitest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// testBlobs: "Blobs: content by hash".
func testBlobs(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	data := pattern("blobs", 10_000)
	h := hashOf(data)
	size := strconv.Itoa(len(data))

	t.Run("absent blob", func(t *testing.T) {
		r := a.head(t, v1+"/blobs/"+h)
		r.wantError(t, http.StatusNotFound)
		a.get(t, v1+"/blobs/"+h).wantError(t, http.StatusNotFound)
	})

	t.Run("PUT: 201 when new, 200 when already stored", func(t *testing.T) {
		a.put(t, v1+"/blobs/"+h, data).expect(t, http.StatusCreated)
		a.put(t, v1+"/blobs/"+h, data).expect(t, http.StatusOK)
		// Upper case in, the same blob.
		a.put(t, v1+"/blobs/"+strings.ToUpper(h), data).expect(t, http.StatusOK)
		other := pattern("blobs upper", 333)
		a.put(t, v1+"/blobs/"+strings.ToUpper(hashOf(other)), other).expect(t, http.StatusCreated)
		r := a.get(t, v1+"/blobs/"+hashOf(other))
		if r.expect(t, http.StatusOK) {
			eq(t, "bytes stored under an upper-case hash", string(r.body), string(other))
		}
		// A streamed body with no Content-Length.
		s := pattern("blobs chunked", 300_000)
		a.put(t, v1+"/blobs/"+hashOf(s), chunked{strings.NewReader(string(s))}).expect(t, http.StatusCreated)
		if r := a.get(t, v1+"/blobs/"+hashOf(s)); r.expect(t, http.StatusOK) {
			eq(t, "chunked upload stored", hashOf(r.body), hashOf(s))
		}
	})

	t.Run("HEAD: 200 with Content-Length, no body", func(t *testing.T) {
		r := a.head(t, v1+"/blobs/"+h)
		if r.expect(t, http.StatusOK) {
			eq(t, "Content-Length", r.header.Get("Content-Length"), size)
			eq(t, "HEAD body length", len(r.body), 0)
		}
	})

	t.Run("GET: bytes, ETag, immutable caching", func(t *testing.T) {
		r := a.get(t, v1+"/blobs/"+h)
		if !r.expect(t, http.StatusOK) {
			return
		}
		eq(t, "body hash", hashOf(r.body), h)
		eq(t, "ETag", r.header.Get("ETag"), `"`+h+`"`)
		eq(t, "Cache-Control", r.header.Get("Cache-Control"), "public, max-age=31536000, immutable")
		eq(t, "Content-Length", r.header.Get("Content-Length"), size)
	})

	t.Run("If-None-Match", func(t *testing.T) {
		r := a.get(t, v1+"/blobs/"+h, "If-None-Match", `"`+h+`"`)
		if r.expect(t, http.StatusNotModified) {
			eq(t, "304 body length", len(r.body), 0)
		}
		r = a.get(t, v1+"/blobs/"+h, "If-None-Match", `"`+hashOf([]byte("other"))+`"`)
		if r.expect(t, http.StatusOK) {
			eq(t, "body with a non-matching If-None-Match", hashOf(r.body), h)
		}
	})

	t.Run("Range", func(t *testing.T) {
		checkRanges(t, a, v1+"/blobs/"+h, data)
	})

	t.Run("hash_mismatch stores nothing", func(t *testing.T) {
		body := pattern("mismatch body", 5000)
		claimed := pattern("mismatch claimed", 5000)
		for _, target := range []string{hashOf(claimed), strings.ToUpper(hashOf(claimed))} {
			r := a.put(t, v1+"/blobs/"+target, body)
			r.wantError(t, http.StatusUnprocessableEntity)
		}
		// Streamed, too.
		a.put(t, v1+"/blobs/"+hashOf(claimed), chunked{strings.NewReader(string(body))}).wantError(t, http.StatusUnprocessableEntity)
		a.head(t, v1+"/blobs/"+hashOf(claimed)).wantError(t, http.StatusNotFound)
		a.head(t, v1+"/blobs/"+hashOf(body)).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/blobs/"+hashOf(claimed)).wantError(t, http.StatusNotFound)
		m := a.post(t, v1+"/blobs/missing", J{"hashes": []string{hashOf(claimed), hashOf(body)}}).want(t, http.StatusOK).obj(t)
		sameSet(t, "missing after a hash mismatch", m.strs("missing"), []string{hashOf(claimed), hashOf(body)})
		// A truncated body mismatches too.
		a.put(t, v1+"/blobs/"+hashOf(claimed), claimed[:len(claimed)-1]).wantError(t, http.StatusUnprocessableEntity)
		a.head(t, v1+"/blobs/"+hashOf(claimed)).wantError(t, http.StatusNotFound)
	})

	t.Run("POST: 201 with hash and size", func(t *testing.T) {
		body := pattern("posted", 4321)
		r := a.post(t, v1+"/blobs", body, "Content-Type", "application/octet-stream")
		r.want(t, http.StatusCreated)
		o := r.obj(t)
		eq(t, "hash", o.str("hash"), hashOf(body))
		n, _ := o.int("size")
		eq(t, "size", n, int64(len(body)))
		if g := a.get(t, v1+"/blobs/"+hashOf(body)); g.expect(t, http.StatusOK) {
			eq(t, "posted bytes", hashOf(g.body), hashOf(body))
		}
		// The same bytes again: API.md only says 201 for POST; 200 would
		// match PUT's rule for a blob already stored.
		r = a.post(t, v1+"/blobs", body)
		if r.expect(t, http.StatusCreated, http.StatusOK) {
			eq(t, "hash of a repeated POST", r.obj(t).str("hash"), hashOf(body))
		}
		// A JSON body is bytes like any other.
		js := []byte(`{"hashes": ["not", "a", "request"]}`)
		o = a.post(t, v1+"/blobs", js, "Content-Type", "application/json").want(t, http.StatusCreated).obj(t)
		eq(t, "hash of a JSON blob", o.str("hash"), hashOf(js))
		// Streamed.
		s := pattern("posted chunked", 200_000)
		o = a.post(t, v1+"/blobs", chunked{strings.NewReader(string(s))}).want(t, http.StatusCreated).obj(t)
		eq(t, "hash of a chunked POST", o.str("hash"), hashOf(s))
	})

	t.Run("the empty blob", func(t *testing.T) {
		e := hashOf(nil)
		a.put(t, v1+"/blobs/"+e, []byte{}).expect(t, http.StatusCreated, http.StatusOK)
		r := a.head(t, v1+"/blobs/"+e)
		if r.expect(t, http.StatusOK) {
			eq(t, "Content-Length of the empty blob", r.header.Get("Content-Length"), "0")
		}
		r = a.get(t, v1+"/blobs/"+e)
		if r.expect(t, http.StatusOK) {
			eq(t, "empty blob length", len(r.body), 0)
		}
		o := a.post(t, v1+"/blobs", []byte{}).want(t, http.StatusCreated, http.StatusOK).obj(t)
		eq(t, "hash of an empty POST", o.str("hash"), e)
		n, _ := o.int("size")
		eq(t, "size of an empty POST", n, 0)
	})

	t.Run("missing", func(t *testing.T) {
		absent := []string{hashOf([]byte("absent 1")), hashOf([]byte("absent 2"))}
		ask := []string{absent[0], h, strings.ToUpper(absent[1]), strings.ToUpper(h)}
		m := a.post(t, v1+"/blobs/missing", J{"hashes": ask}).want(t, http.StatusOK).obj(t)
		sameSet(t, "missing", m.strs("missing"), absent)
		m = a.post(t, v1+"/blobs/missing", J{"hashes": []string{h}}).want(t, http.StatusOK).obj(t)
		if l, ok := m.list("missing"); !ok || len(l) != 0 {
			t.Errorf(`missing of stored blobs = %v, want []`, m["missing"])
		}
		m = a.post(t, v1+"/blobs/missing", J{"hashes": []string{}}).want(t, http.StatusOK).obj(t)
		if l, ok := m.list("missing"); !ok || len(l) != 0 {
			t.Errorf(`missing of no hashes = %v, want []`, m["missing"])
		}
	})

	t.Run("missing: at most 10,000 hashes", func(t *testing.T) {
		many := make([]string, 10_001)
		for i := range many {
			many[i] = hashOf([]byte(fmt.Sprintf("many %d", i)))
		}
		many[0] = h
		m := a.post(t, v1+"/blobs/missing", J{"hashes": many[:10_000]}).want(t, http.StatusOK).obj(t)
		eq(t, "missing of 10,000 (one stored)", len(m.strs("missing")), 9_999)
		a.post(t, v1+"/blobs/missing", J{"hashes": many}).wantError(t, http.StatusRequestEntityTooLarge)
	})

	t.Run("malformed hashes are 400", func(t *testing.T) {
		bad := []string{"abc", h[:63], h + "0", strings.Repeat("g", 64), " " + h[1:], h[:32] + "-" + h[33:], strings.Repeat("0", 128)}
		for _, b := range bad {
			p := v1 + "/blobs/" + escapePath(b)
			a.get(t, p).wantError(t, http.StatusBadRequest)
			a.head(t, p).wantError(t, http.StatusBadRequest)
			a.put(t, p, []byte("x")).wantError(t, http.StatusBadRequest)
			a.post(t, v1+"/blobs/missing", J{"hashes": []string{h, b}}).wantError(t, http.StatusBadRequest)
		}
		a.post(t, v1+"/blobs/missing", J{"hashes": "not a list"}).wantError(t, http.StatusBadRequest)
		a.post(t, v1+"/blobs/missing", J{"hashes": []any{1, 2}}).wantError(t, http.StatusBadRequest)
		a.head(t, v1+"/blobs/"+hashOf([]byte("x"))).wantError(t, http.StatusNotFound)
	})
}

// escapePath escapes s as one path segment, every byte outside the
// unreserved set as %XX (so "/" cannot split it).
func escapePath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// checkRanges holds a byte endpoint to Range: 206 for a first, suffix and
// open range, 416 in the JSON shape when unsatisfiable.
func checkRanges(t *testing.T, a *api, target string, data []byte) {
	t.Helper()
	n := len(data)
	if n < 20 {
		t.Fatalf("checkRanges needs at least 20 bytes, got %d", n)
	}
	cases := []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-4", 0, 4},
		{"bytes=5-9", 5, 9},
		{fmt.Sprintf("bytes=%d-", n-7), n - 7, n - 1},
		{"bytes=-5", n - 5, n - 1},
		{"bytes=0-", 0, n - 1},
		{fmt.Sprintf("bytes=%d-%d", n-1, n-1), n - 1, n - 1},
	}
	for _, c := range cases {
		r := a.get(t, target, "Range", c.rng)
		if !r.expect(t, http.StatusPartialContent) {
			continue
		}
		eq(t, c.rng+": body", string(r.body), string(data[c.start:c.end+1]))
		eq(t, c.rng+": Content-Range", r.header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, n))
		eq(t, c.rng+": Content-Length", r.header.Get("Content-Length"), strconv.Itoa(c.end-c.start+1))
	}
	for _, rng := range []string{
		fmt.Sprintf("bytes=%d-", n),
		fmt.Sprintf("bytes=%d-%d", n+10, n+20),
		fmt.Sprintf("bytes=%d-", n*1000),
	} {
		a.get(t, target, "Range", rng).wantError(t, http.StatusRequestedRangeNotSatisfiable)
	}
}
