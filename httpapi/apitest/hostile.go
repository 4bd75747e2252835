package apitest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// testHostile: requests an attacker or a broken client sends. Every one is
// refused with 400 or 404 in the JSON shape: never a 500, never a redirect,
// never a byte of a file outside the store.
func testHostile(t *testing.T, fresh func(*testing.T) *api) {
	a := fresh(t)
	c := a.newCollection(t, J{"name": "hostile"}).str("uuid")
	u := a.newUnit(t, c, J{"name": "h.xml", "olx": "<h/>"}).str("uuid")
	as := a.newAsset(t, c, "h.bin", "application/octet-stream", []byte("hostile asset")).str("uuid")
	canary := []byte("canary blob")
	h := a.putBlob(t, canary)

	refused := func(t *testing.T, r *reply) {
		t.Helper()
		if !r.sane(t) {
			return
		}
		if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
			t.Errorf("want 400 or 404: %s", r)
		}
		if bytes.Contains(r.body, []byte("root:")) || bytes.Contains(r.body, []byte("[boot loader]")) {
			t.Errorf("the answer holds a system file: %s", r)
		}
	}
	everyMethod := func(t *testing.T, target string) {
		t.Helper()
		refused(t, a.get(t, target))
		refused(t, a.head(t, target))
		r := a.put(t, target, []byte("pwned"))
		if r.sane(t) && r.status < 400 {
			t.Errorf("PUT to a hostile path succeeded: %s", r)
		}
		r = a.del(t, target)
		if r.sane(t) && r.status < 400 {
			t.Errorf("DELETE of a hostile path succeeded: %s", r)
		}
	}

	t.Run("path traversal", func(t *testing.T) {
		for _, p := range []string{
			v1 + "/blobs/..%2f..%2fetc%2fpasswd",
			v1 + "/blobs/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
			v1 + "/blobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
			v1 + "/blobs/..%5c..%5cwindows%5cwin.ini",
			v1 + "/blobs/../../../../etc/passwd",
			v1 + "/blobs/%252e%252e%252fetc%252fpasswd",
			v1 + "/blobs/" + h[:2] + "%2f" + h[2:],
			v1 + "/blobs/" + h[:2] + "/" + h[2:],
			v1 + "/blobs/" + h + "%2f..",
			v1 + "/blobs/" + h + "%00",
			v1 + "/blobs/%00",
			v1 + "/blobs/" + h[:63] + "%00",
			v1 + "/blobs/" + strings.Repeat("..%2f", 30) + "etc%2fpasswd",
			v1 + "/units/..%2f..%2fetc%2fpasswd",
			v1 + "/units/" + u + "%2f..%2f..%2fetc%2fpasswd",
			v1 + "/units/" + u + "/versions/..%2f1",
			v1 + "/assets/..%2f" + as + "/content",
			v1 + "/assets/" + as + "%2f..%2f..%2fcontent",
			v1 + "/assets/%2e%2e/content",
			v1 + "/collections/..%2f..%2f",
			"/api/v1/%2e%2e/%2e%2e/etc/passwd",
			"/api/v1/blobs/%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
		} {
			everyMethod(t, p)
		}
	})

	t.Run("malformed uuids", func(t *testing.T) {
		for _, bad := range []string{
			"x", u[:35], u + "0", u + "%00", "%00", strings.ToUpper(u)[:30] + "ZZZZZZ", strings.Repeat("a", 10_000),
			"%7B" + u + "%7D", "urn:uuid:" + u, strings.ReplaceAll(u, "-", ""), u[:8] + "_" + u[9:], "%20" + u, u + "%20",
			"00000000-0000-0000-0000-00000000000g", "%FF%FE", "%F0%9F%8E%89",
		} {
			for _, p := range []string{
				"/collections/" + bad, "/collections/" + bad + "/versions", "/collections/" + bad + "/units",
				"/units/" + bad, "/units/" + bad + "/versions/1", "/units/" + bad + "/olx", "/units/" + bad + "/linked-by",
				"/assets/" + bad, "/assets/" + bad + "/content",
			} {
				refused(t, a.get(t, v1+p))
			}
			refused(t, a.patch(t, v1+"/collections/"+bad, J{"name": "x"}))
			refused(t, a.post(t, v1+"/units/"+bad+"/versions", J{"olx": "<x/>"}))
			refused(t, a.put(t, v1+"/units/"+bad+"/draft", J{"olx": "<x/>"}))
			refused(t, a.post(t, v1+"/units/"+bad+"/draft/publish", nil))
			refused(t, a.del(t, v1+"/units/"+bad))
			refused(t, a.del(t, v1+"/assets/"+bad))
			refused(t, a.del(t, v1+"/collections/"+bad))
			refused(t, a.post(t, v1+"/assets/"+bad+"/versions", []byte("x")))
			refused(t, a.post(t, v1+"/assets?collection="+bad+"&name=x", []byte("x")))
		}
	})

	t.Run("malformed version numbers", func(t *testing.T) {
		for _, n := range []string{
			"0", "-1", "01", "1.5", "99999999999999999999", "9223372036854775808", "18446744073709551616",
			"+1", "1e3", "0x1", "%201", "1%20", "1%00", "%00", "Draft", "DRAFT", "draft%00", "drafts", "%E2%91%A0", "%D9%A1",
			strings.Repeat("9", 5000),
		} {
			for _, p := range []string{
				"/units/" + u + "/versions/" + n, "/units/" + u + "/versions/" + n + "/olx",
				"/assets/" + as + "/versions/" + n, "/assets/" + as + "/versions/" + n + "/content",
				"/collections/" + c + "/versions/" + n,
			} {
				refused(t, a.get(t, v1+p))
				refused(t, a.head(t, v1+p))
			}
		}
	})

	t.Run("malformed hashes", func(t *testing.T) {
		for _, bad := range []string{
			strings.Repeat("٠", 64), strings.Repeat("０", 64), h[:62] + "é", strings.Repeat("f", 10_000), h + h,
		} {
			p := v1 + "/blobs/" + escapePath(bad)
			refused(t, a.get(t, p))
			refused(t, a.put(t, p, []byte("x")))
			refused(t, a.post(t, v1+"/assets?collection="+c+"&name=x&hash="+escapePath(bad), nil))
			refused(t, a.post(t, v1+"/blobs/missing", J{"hashes": []string{bad}}))
		}
	})

	t.Run("hostile query parameters", func(t *testing.T) {
		for _, q := range []string{
			"limit=%00", "limit=1%00", "cursor=%00", "cursor=" + strings.Repeat("A", 20_000), "name=%00", "name=%FF", "limit=1&limit=2",
		} {
			r := a.get(t, v1+"/collections/"+c+"/units?"+q)
			if r.sane(t) && r.status != http.StatusOK && r.status != http.StatusBadRequest {
				t.Errorf("want 200 or 400: %s", r)
			}
		}
		for _, q := range []string{"expand=%00", "expand=everything", "expand=links,links"} {
			a.get(t, v1+"/units/"+u+"?"+q).sane(t)
		}
		for _, q := range []string{"recursive=maybe", "recursive=%00"} {
			r := a.del(t, v1+"/collections/"+c+"?"+q)
			if r.sane(t) && r.status < 400 {
				t.Errorf("a DELETE with recursive=%q succeeded: %s", q, r)
			}
		}
	})

	t.Run("hostile ranges", func(t *testing.T) {
		for _, p := range []string{v1 + "/blobs/" + h, v1 + "/assets/" + as + "/content"} {
			for _, rng := range []string{
				"bytes=99999999999999999999999-", "bytes=-99999999999999999999999", "bytes=--1", "bytes=1-0",
				"bytes=0-1,2-3,4-5", "bytes=" + strings.Repeat("0-0,", 1000) + "0-0", "items=0-1", "bytes=", "bytes=-0",
			} {
				r := a.get(t, p, "Range", rng)
				if r.sane(t) && r.status != http.StatusOK && r.status != http.StatusPartialContent {
					r.wantError(t, http.StatusRequestedRangeNotSatisfiable)
				}
			}
		}
	})

	t.Run("hostile JSON", func(t *testing.T) {
		before := a.snap(t, v1+"/collections", v1+"/collections/"+c+"/units", v1+"/units/"+u+"/versions")
		for _, body := range []string{
			strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000),
			`{"name": ` + strings.Repeat(`{"a":`, 50_000) + `1` + strings.Repeat("}", 50_000) + `}`,
			`{"name": "` + "\x00" + `"}`,
			`{"name": 1e999999}`,
			`{"name": "a", "garbage_collect": 1}`,
			`{"name": "\ud800"`,
		} {
			r := a.post(t, v1+"/collections", rawJSON(body))
			if r.sane(t) && r.status != http.StatusBadRequest && r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("want 400 or 413: %s", r)
			}
			r = a.post(t, v1+"/units/"+u+"/versions", rawJSON(strings.Replace(body, `"name"`, `"olx"`, 1)))
			if r.sane(t) && r.status != http.StatusBadRequest && r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("want 400 or 413: %s", r)
			}
		}
		a.unchanged(t, before, "hostile JSON")
	})

	t.Run("names that look like paths are only names", func(t *testing.T) {
		// API.md does not restrict names; whatever the server decides, it
		// answers sanely and a name never reaches the file system.
		for _, n := range []string{"../../etc/passwd", "/etc/passwd", "a/../../b", "C:\\Windows\\win.ini", "..", "."} {
			a.post(t, v1+"/units", J{"collection": c, "name": n, "olx": "<p/>"}).sane(t)
		}
	})

	t.Run("NUL and invalid UTF-8 in names and keys", func(t *testing.T) {
		// API.md fixes UTF-8 only for OLX. Elsewhere the server may store
		// or refuse such text, but never fail on it (a database that
		// refuses NUL or bad UTF-8 must not turn that into a 500).
		for _, body := range []string{
			`{"collection": "` + c + `", "name": "nul\u0000name.xml", "olx": "<n/>"}`,
			`{"collection": "` + c + `", "name": "bad` + "\xff" + `name.xml", "olx": "<n/>"}`,
			`{"collection": "` + c + `", "olx": "<nul>\u0000</nul>"}`,
		} {
			a.post(t, v1+"/units", rawJSON(body)).sane(t)
		}
		for _, body := range []string{`{"name": "nul\u0000"}`, `{"name": "x", "description": "` + "\xfe\xff" + `"}`} {
			a.post(t, v1+"/collections", rawJSON(body)).sane(t)
			a.patch(t, v1+"/collections/"+c, rawJSON(body)).sane(t)
		}
		for _, n := range []string{"%00", "a%00b", "%FF", "%C0%80", "%ED%A0%80"} {
			a.post(t, v1+"/assets?collection="+c+"&name="+n, []byte("n"), "Content-Type", "text/plain").sane(t)
			a.get(t, v1+"/collections/"+c+"/assets?name="+n).sane(t)
			a.post(t, v1+"/assets/"+as+"/versions?name="+n, []byte("n2"), "Content-Type", "text/plain").sane(t)
		}
		a.post(t, v1+"/assets?collection="+c+"&name=ct.bin", []byte("n"), "Content-Type", "text/plain; x=\"\xff\"").sane(t)
		a.post(t, v1+"/assets?collection="+c+"&name=mt.bin&hash="+h+"&media_type=%00%FF", nil).sane(t)
		a.post(t, v1+"/collections", J{"name": "odd key"}, "Idempotency-Key", "\xff\xfe key").sane(t)
		a.post(t, v1+"/collections", J{"name": "odd key"}, "Idempotency-Key", "\xff\xfe key").sane(t)
	})

	t.Run("a long request-URI", func(t *testing.T) {
		refused(t, a.get(t, v1+"/units/"+strings.Repeat("u", 60_000)))
		r := a.get(t, v1+"/collections?cursor="+strings.Repeat("c", 60_000))
		if r.sane(t) && r.status != http.StatusBadRequest {
			t.Errorf("want 400 for a cursor that does not parse: %s", r)
		}
	})

	t.Run("the store is intact", func(t *testing.T) {
		if r := a.get(t, v1+"/blobs/"+h); r.expect(t, http.StatusOK) {
			eq(t, "canary", string(r.body), string(canary))
		}
		a.head(t, v1+"/blobs/"+hashOf([]byte("pwned"))).wantError(t, http.StatusNotFound)
		a.get(t, v1+"/units/"+u).expect(t, http.StatusOK)
		a.get(t, v1+"/collections/"+c).expect(t, http.StatusOK)
		a.get(t, "/readyz").expect(t, http.StatusOK)
	})
}
