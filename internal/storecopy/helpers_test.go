package storecopy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/client/importer"
	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// embedded returns the configuration of a new embedded deployment.
func embedded(t *testing.T) app.Config {
	return app.Config{DataDir: t.TempDir()}
}

// production returns the configuration of a new PostgreSQL + MinIO
// deployment: a database and a bucket of its own.
func production(t *testing.T) app.Config {
	url := testenv.NewDatabase(t)
	s3 := testenv.MinIO(t)
	return app.Config{DatabaseURL: url, S3: s3store.Config{
		Endpoint: s3.Endpoint, Bucket: "copy-" + randomHex(6), AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		Insecure: true, CreateBucket: true,
	}}
}

// open opens cfg for t; it is closed when t ends (or earlier by the test).
func open(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	a, err := app.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Describe(), err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// serve serves a's API on 127.0.0.1 for t and returns its base URL.
func serve(t *testing.T, a *app.App) string {
	t.Helper()
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient(t *testing.T, base string) *client.Client {
	t.Helper()
	c, err := client.New(base, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// course is what fillCourse wrote, for the tests to change further.
type course struct {
	collection uuid.UUID
	units      []uuid.UUID // published units
	draftOnly  uuid.UUID   // a unit with only a draft
}

// fillCourse imports the Open edX course export of client/importer's test
// data, then adds new versions (one with a pinned link), a draft of a
// published unit and a draft-only unit.
func fillCourse(t *testing.T, ctx context.Context, c *client.Client) course {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "client", "importer", "testdata", "olx-course")
	sum, err := importer.Import(ctx, c, dir, importer.ImportOptions{
		NewCollection: &client.NewCollection{Name: "demo course " + randomHex(3)}, Jobs: 2,
	})
	if err != nil {
		t.Fatalf("import the course: %v", err)
	}
	co := course{collection: sum.Collection}
	units, err := c.CollectionUnits(ctx, co.collection, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(units.Items) < 3 {
		t.Fatalf("the course has %d units, want at least 3", len(units.Items))
	}
	for _, u := range units.Items {
		co.units = append(co.units, u.UUID)
	}
	pin := int64(1)
	first, second := co.units[0], co.units[1]
	if _, _, err := c.NewUnitVersion(ctx, first, client.UnitChange{OLX: "<vertical>second version</vertical>"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.NewUnitVersion(ctx, second, client.UnitChange{OLX: "<vertical>pinned</vertical>",
		Links: []client.Link{{Target: first, Version: &pin}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutUnitDraft(ctx, first, client.UnitChange{OLX: "<vertical>a draft</vertical>"}); err != nil {
		t.Fatal(err)
	}
	d, err := c.CreateUnit(ctx, client.NewUnit{Collection: co.collection, Name: "drafts/only.xml", OLX: "<p>draft only</p>", Draft: true})
	if err != nil {
		t.Fatal(err)
	}
	co.draftOnly = d.UUID
	return co
}

// snapshot reads, through the HTTP API at base, everything a client can
// see: every collection with its history, every unit and asset with its
// history, draft, links and linked-by, the latest OLX, and the entities
// extra names (draft-only ones, invisible to lists). Times are cut to the
// microsecond (PostgreSQL's precision: an embedded source keeps
// nanoseconds, which its copy in PostgreSQL cannot).
func snapshot(t *testing.T, base string, extra ...uuid.UUID) string {
	t.Helper()
	var b strings.Builder
	get := func(path string) map[string]any {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			normalize(v)
			out, _ := json.Marshal(v)
			fmt.Fprintf(&b, "GET %s %d %s\n", path, resp.StatusCode, out)
		} else {
			fmt.Fprintf(&b, "GET %s %d %q\n", path, resp.StatusCode, body)
		}
		return v
	}
	items := func(v map[string]any) []string {
		var ids []string
		list, _ := v["items"].([]any)
		for _, it := range list {
			ids = append(ids, it.(map[string]any)["uuid"].(string))
		}
		return ids
	}
	entity := func(kind, id string) {
		get("/api/v1/" + kind + "/" + id + "/versions?limit=1000")
		get("/api/v1/" + kind + "/" + id + "/versions/draft")
		get("/api/v1/" + kind + "/" + id + "/linked-by?limit=1000")
		if kind == "units" {
			get("/api/v1/units/" + id + "/links")
			get("/api/v1/units/" + id + "/olx")
		}
	}
	for _, c := range items(get("/api/v1/collections?limit=1000")) {
		get("/api/v1/collections/" + c + "/versions?limit=1000")
		for _, kind := range []string{"units", "assets"} {
			for _, id := range items(get("/api/v1/collections/" + c + "/" + kind + "?limit=1000")) {
				entity(kind, id)
			}
		}
	}
	for _, id := range extra {
		entity("units", id.String())
		entity("assets", id.String())
	}
	return b.String()
}

// normalize cuts every created_at in v to the microsecond and drops error
// messages (each engine words its own; the code is the contract).
func normalize(v any) {
	switch x := v.(type) {
	case map[string]any:
		if e, ok := x["error"].(map[string]any); ok {
			delete(e, "message")
		}
		for k, e := range x {
			if s, ok := e.(string); ok && k == "created_at" {
				if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
					x[k] = tm.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
				}
				continue
			}
			normalize(e)
		}
	case []any:
		for _, e := range x {
			normalize(e)
		}
	}
}

// wantSame fails unless both APIs read the same.
func wantSame(t *testing.T, what, srcURL, dstURL string, extra ...uuid.UUID) {
	t.Helper()
	s, d := snapshot(t, srcURL, extra...), snapshot(t, dstURL, extra...)
	if s == d {
		return
	}
	sl, dl := strings.Split(s, "\n"), strings.Split(d, "\n")
	for i := 0; i < len(sl) && i < len(dl); i++ {
		if sl[i] != dl[i] {
			t.Fatalf("%s: the copy reads differently at line %d:\nsource      %s\ndestination %s", what, i, sl[i], dl[i])
		}
	}
	t.Fatalf("%s: the copy reads %d lines, the source %d", what, len(dl), len(sl))
}

// verify runs blockstore verify's check on a.
func verify(t *testing.T, a *app.App) {
	t.Helper()
	r, err := a.Verify(context.Background(), app.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !r.OK() {
		t.Fatalf("verify: corrupt %v, missing %v", r.Corrupt, r.Missing)
	}
}
