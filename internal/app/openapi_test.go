package app

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var routeParam = regexp.MustCompile(`:([a-z]+)`)

// TestOpenAPI fails when a route exists in the router but not in the OpenAPI
// document, or the other way round, and checks that the server serves the
// document and that every documented operation reaches a handler.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	a := openApp(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	routed := map[string]bool{}
	for _, e := range a.Endpoints() {
		routed[e.Method+" "+routeParam.ReplaceAllString(e.Pattern, "{$1}")] = true
	}
	for _, k := range keys(routed) {
		if !documented[k] {
			t.Errorf("route %s is served but not in openapi.json", k)
		}
	}
	for _, k := range keys(documented) {
		if !routed[k] {
			t.Errorf("operation %s is in openapi.json but not served", k)
		}
	}

	// Every documented operation reaches a handler: the router's own 404 and
	// 405 answers say "no route", which a handler never does.
	base := serve(t, a)
	for _, k := range keys(documented) {
		method, path, _ := strings.Cut(k, " ")
		path = strings.NewReplacer("{uuid}", "00000000-0000-4000-8000-000000000000", "{n}", "1",
			"{hash}", strings.Repeat("ab", 32), "{id}", "none").Replace(path)
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(body), "no route") {
			t.Errorf("%s %s: %d %s: the router has no handler", method, path, resp.StatusCode, body)
		}
	}

	resp, err := http.Get(base + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || string(body) != string(OpenAPI()) {
		t.Fatalf("GET /api/v1/openapi.json: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
