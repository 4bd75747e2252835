package app

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Tokens: Tokens{Write: "write-token", Read: "read-token"}}
	base := serve(t, openApp(t, cfg))
	type call struct {
		method, path, body string
	}
	reads := []call{
		{"GET", "/api/v1/collections", ""},
		{"HEAD", "/api/v1/collections", ""},
		{"GET", "/api/v1/openapi.json", ""},
		{"POST", "/api/v1/resolve", `{"refs":[]}`},
		{"POST", "/api/v1/blobs/missing", `{"hashes":[]}`},
	}
	writes := []call{
		{"POST", "/api/v1/collections", `{"name":"x"}`},
		{"POST", "/api/v1/blobs", "bytes"},
		{"DELETE", "/api/v1/units/00000000-0000-4000-8000-000000000000", ""},
		{"POST", "/api/v1/gc", `{"dry_run":true}`},
	}
	open := []call{{"GET", "/healthz", ""}, {"GET", "/readyz", ""}, {"GET", "/metrics", ""}}
	do := func(c call, auth string) (int, string) {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		if c.body != "" && c.body[0] == '{' {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	ok := func(code int) bool { return code != 401 && code != 403 }
	for _, c := range append(append([]call{}, reads...), writes...) {
		for _, auth := range []string{"", "Bearer wrong", "Basic d3JpdGUtdG9rZW4=", "Bearer ", "bearer"} {
			if code, body := do(c, auth); code != 401 || (c.method != "HEAD" && !strings.Contains(body, `"unauthorized"`)) {
				t.Errorf("%s %s with %q: %d %s, want 401 unauthorized", c.method, c.path, auth, code, body)
			}
		}
		if code, body := do(c, "Bearer write-token"); !ok(code) {
			t.Errorf("%s %s with the write token: %d %s", c.method, c.path, code, body)
		}
		if code, body := do(c, "bearer write-token"); !ok(code) {
			t.Errorf("%s %s with a lower-case scheme: %d %s", c.method, c.path, code, body)
		}
	}
	for _, c := range reads {
		if code, body := do(c, "Bearer read-token"); !ok(code) {
			t.Errorf("%s %s with the read token: %d %s", c.method, c.path, code, body)
		}
	}
	for _, c := range writes {
		if code, body := do(c, "Bearer read-token"); code != 403 || !strings.Contains(body, `"forbidden"`) {
			t.Errorf("%s %s with the read token: %d %s, want 403 forbidden", c.method, c.path, code, body)
		}
	}
	for _, c := range open {
		if code, body := do(c, ""); code != 200 {
			t.Errorf("%s %s without a token: %d %s, want 200", c.method, c.path, code, body)
		}
	}
	// Only the two writes with the write token created collections; the
	// refused ones changed nothing.
	if _, body := do(call{"GET", "/api/v1/collections", ""}, "Bearer read-token"); strings.Count(body, `"uuid"`) != 2 {
		t.Errorf("collections after refused writes: %s", body)
	}
}
