package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testserver"
)

func readAll(t *testing.T) func(d *client.Download, err error) string {
	return func(d *client.Download, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		b, err := io.ReadAll(d.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestEveryEndpoint calls each endpoint of API.md once or more through the
// client against the real server.
func TestEveryEndpoint(t *testing.T) {
	srv := testserver.Start(t)
	c := srv.Client(t, client.Options{UserAgent: "client-test"})
	ctx := context.Background()

	// Operations.
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Readyz(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Metrics(ctx); err != nil || !strings.Contains(m, "blockstore_http_requests_total") {
		t.Fatalf("metrics: %v %.80q", err, m)
	}

	// Blobs.
	data := []byte("some bytes of a blob")
	h := cas.Sum(data)
	if created, err := c.PutBlob(ctx, h, client.BytesBody(data)); err != nil || !created {
		t.Fatalf("PutBlob = %v %v", created, err)
	}
	if created, err := c.PutBlob(ctx, h, client.ReaderBody(bytes.NewReader(data), int64(len(data)))); err != nil || created {
		t.Fatalf("PutBlob again = %v %v", created, err)
	}
	if n, err := c.StatBlob(ctx, h); err != nil || n != int64(len(data)) {
		t.Fatalf("StatBlob = %d %v", n, err)
	}
	if _, err := c.StatBlob(ctx, cas.Sum([]byte("absent"))); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("StatBlob absent: %v", err)
	}
	if got := readAll(t)(c.GetBlob(ctx, h, client.GetOptions{})); got != string(data) {
		t.Fatalf("GetBlob = %q", got)
	}
	if got := readAll(t)(c.GetBlob(ctx, h, client.GetOptions{Offset: 5, Length: 5})); got != "bytes" {
		t.Fatalf("GetBlob range = %q", got)
	}
	d, err := c.GetBlob(ctx, h, client.GetOptions{IfNoneMatch: `"` + h.String() + `"`})
	if err != nil || !d.NotModified() {
		t.Fatalf("If-None-Match: %v", err)
	}
	d.Close()
	if _, err := c.PutBlob(ctx, cas.Sum([]byte("other")), client.BytesBody(data)); !errors.Is(err, client.ErrHashMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	sb := must[client.StoredBlob](t)(c.PostBlob(ctx, client.BytesBody([]byte("posted"))))
	if sb.Hash != cas.Sum([]byte("posted")) || sb.Size != 6 {
		t.Fatalf("PostBlob = %+v", sb)
	}
	absent := cas.Sum([]byte("absent"))
	missing := must[[]cas.Hash](t)(c.MissingBlobs(ctx, []cas.Hash{h, absent, sb.Hash}))
	if len(missing) != 1 || missing[0] != absent {
		t.Fatalf("missing = %v", missing)
	}

	// Collections.
	col := must[client.Collection](t)(c.CreateCollection(ctx, client.NewCollection{Name: "course", Owner: "me"}))
	if col.Version != 1 || col.Name != "course" {
		t.Fatalf("collection = %+v", col)
	}
	col2 := must[client.Collection](t)(c.UpdateCollection(ctx, col.UUID, client.CollectionPatch{Description: client.String("about")}))
	if col2.Version != 2 || col2.Description != "about" || col2.Owner != "me" {
		t.Fatalf("patched = %+v", col2)
	}
	if v1 := must[client.Collection](t)(c.Collection(ctx, col.UUID, client.Version(1))); v1.Description != "" {
		t.Fatalf("version 1 = %+v", v1)
	}
	if vs := must[client.Page[client.Collection]](t)(c.CollectionVersions(ctx, col.UUID, client.ListOptions{})); len(vs.Items) != 2 || vs.Items[0].Version != 2 {
		t.Fatalf("versions = %+v", vs)
	}
	other := must[client.Collection](t)(c.CreateCollection(ctx, client.NewCollection{Name: "other"}))
	var names []string
	for cl, err := range c.AllCollections(ctx, client.ListOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, cl.Name)
	}
	if strings.Join(names, ",") != "course,other" {
		t.Fatalf("collections = %v", names)
	}

	// Assets: streamed, then over a stored hash.
	img := []byte("\x89PNG fake image")
	a := must[client.Asset](t)(c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "static/a.png", MediaType: "image/png"},
		client.Content{Body: client.BytesBody(img)}))
	if a.Version == nil || *a.Version != 1 || a.Hash != cas.Sum(img) || a.MediaType != "image/png" || a.Size != int64(len(img)) {
		t.Fatalf("asset = %+v", a)
	}
	b := must[client.Asset](t)(c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "static/b.bin"}, client.Content{Hash: h}))
	if b.MediaType != client.DefaultMediaType || b.Hash != h {
		t.Fatalf("asset by hash = %+v", b)
	}
	if _, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "static/b.bin"}, client.Content{Hash: h}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("taken name: %v", err)
	}
	b2, created, err := c.NewAssetVersion(ctx, b.UUID, client.AssetChange{MediaType: client.String("text/plain")}, client.Content{Hash: h})
	if err != nil || !created || *b2.Version != 2 || b2.MediaType != "text/plain" || b2.Name != "static/b.bin" {
		t.Fatalf("new asset version = %+v %v %v", b2, created, err)
	}
	if _, created, err := c.NewAssetVersion(ctx, b.UUID, client.AssetChange{}, client.Content{Hash: h}); err != nil || created {
		t.Fatalf("identical asset version: created %v, %v", created, err)
	}
	dr := must[client.Asset](t)(c.PutAssetDraft(ctx, b.UUID, client.AssetChange{}, client.Content{Body: client.BytesBody([]byte("draft bytes"))}))
	if dr.Version != nil {
		t.Fatalf("draft = %+v", dr)
	}
	if got := readAll(t)(c.AssetContent(ctx, b.UUID, client.Draft, client.GetOptions{})); got != "draft bytes" {
		t.Fatalf("draft content = %q", got)
	}
	if err := c.DeleteAssetDraft(ctx, b.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Asset(ctx, b.UUID, client.Draft); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted draft: %v", err)
	}
	must[client.Asset](t)(c.PutAssetDraft(ctx, b.UUID, client.AssetChange{}, client.Content{Body: client.BytesBody([]byte("draft 2"))}))
	pub := must[client.Asset](t)(c.PublishAssetDraft(ctx, b.UUID))
	if *pub.Version != 3 {
		t.Fatalf("published = %+v", pub)
	}
	if hs := must[client.Page[client.Asset]](t)(c.AssetVersions(ctx, b.UUID, client.ListOptions{})); len(hs.Items) != 3 {
		t.Fatalf("asset versions = %d", len(hs.Items))
	}
	if got := readAll(t)(c.AssetContent(ctx, b.UUID, client.Version(1), client.GetOptions{Offset: 5})); got != string(data[5:]) {
		t.Fatalf("v1 content range = %q", got)
	}
	if got := must[client.Asset](t)(c.Asset(ctx, a.UUID, client.Latest)); got.Name != "static/a.png" {
		t.Fatalf("asset = %+v", got)
	}

	// Units with links.
	leaf := must[client.Unit](t)(c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "html/leaf.xml", OLX: `<html><img src="/static/a.png"/></html>`,
		Links: []client.Link{{Target: a.UUID}}}))
	if *leaf.Version != 1 || len(leaf.Links) != 1 || leaf.Links[0].Kind != client.KindAsset {
		t.Fatalf("unit = %+v", leaf)
	}
	top := must[client.Unit](t)(c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "vertical/top.xml", OLX: `<vertical><html url_name="leaf"/></vertical>`,
		Links: []client.Link{{Target: leaf.UUID, Kind: client.KindUnit, Version: client.Int64(1)}}}))
	exp := must[client.Unit](t)(c.UnitExpanded(ctx, top.UUID, client.Latest))
	if len(exp.Links) != 1 || exp.Links[0].Resolved == nil || exp.Links[0].Resolved.Hash != leaf.Hash {
		t.Fatalf("expanded = %+v", exp)
	}
	if _, _, err := c.NewUnitVersion(ctx, leaf.UUID, client.UnitChange{OLX: "<html/>", Links: []client.Link{{Target: top.UUID}}}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("cycle: %v", err)
	}
	l2, created, err := c.NewUnitVersion(ctx, leaf.UUID, client.UnitChange{OLX: "<html>v2</html>"})
	if err != nil || !created || *l2.Version != 2 || len(l2.Links) != 1 {
		t.Fatalf("unit version = %+v %v %v", l2, created, err)
	}
	if _, created, err := c.NewUnitVersion(ctx, leaf.UUID, client.UnitChange{OLX: "<html>v2</html>"}); err != nil || created {
		t.Fatalf("identical unit version: %v %v", created, err)
	}
	l3, _, err := c.NewUnitVersion(ctx, leaf.UUID, client.UnitChange{OLX: "<html>v3</html>", Links: []client.Link{}})
	if err != nil || len(l3.Links) != 0 {
		t.Fatalf("links removed = %+v %v", l3, err)
	}
	if got := readAll(t)(c.UnitOLX(ctx, leaf.UUID, client.Version(2), client.GetOptions{})); got != "<html>v2</html>" {
		t.Fatalf("olx v2 = %q", got)
	}
	if got := readAll(t)(c.UnitOLX(ctx, leaf.UUID, client.Latest, client.GetOptions{})); got != "<html>v3</html>" {
		t.Fatalf("olx = %q", got)
	}
	must[client.Unit](t)(c.PutUnitDraft(ctx, top.UUID, client.UnitChange{OLX: "<vertical/>"}))
	if u := must[client.Unit](t)(c.Unit(ctx, top.UUID, client.Draft)); u.Version != nil || len(u.Links) != 1 {
		t.Fatalf("unit draft = %+v", u)
	}
	if err := c.DeleteUnitDraft(ctx, top.UUID); err != nil {
		t.Fatal(err)
	}
	must[client.Unit](t)(c.PutUnitDraft(ctx, top.UUID, client.UnitChange{OLX: "<vertical>2</vertical>"}))
	if u := must[client.Unit](t)(c.PublishUnitDraft(ctx, top.UUID)); *u.Version != 2 {
		t.Fatalf("published unit = %+v", u)
	}
	if vs := must[client.Page[client.Unit]](t)(c.UnitVersions(ctx, leaf.UUID, client.ListOptions{Limit: 2})); len(vs.Items) != 2 || vs.NextCursor == "" || *vs.Items[0].Version != 3 {
		t.Fatalf("unit versions = %+v", vs)
	}
	if ls := must[[]client.Link](t)(c.UnitLinks(ctx, top.UUID)); len(ls) != 1 || ls[0].Target != leaf.UUID || *ls[0].Version != 1 {
		t.Fatalf("links = %+v", ls)
	}
	if lb := must[client.Page[client.LinkingUnit]](t)(c.UnitLinkedBy(ctx, leaf.UUID, client.ListOptions{})); len(lb.Items) != 1 || lb.Items[0].UUID != top.UUID || *lb.Items[0].LinkVersion != 1 {
		t.Fatalf("linked-by = %+v", lb)
	}
	if lb := must[client.Page[client.LinkingUnit]](t)(c.AssetLinkedBy(ctx, a.UUID, client.ListOptions{})); len(lb.Items) != 0 {
		t.Fatalf("asset linked-by after links removed = %+v", lb)
	}
	name := "html/leaf.xml"
	if us := must[client.Page[client.Unit]](t)(c.CollectionUnits(ctx, col.UUID, client.ListOptions{Name: &name})); len(us.Items) != 1 || us.Items[0].UUID != leaf.UUID {
		t.Fatalf("units by name = %+v", us)
	}
	if as := must[client.Page[client.Asset]](t)(c.CollectionAssets(ctx, col.UUID, client.ListOptions{})); len(as.Items) != 2 {
		t.Fatalf("assets = %+v", as)
	}

	// Resolve.
	res := must[client.Resolution](t)(c.Resolve(ctx, []string{client.Ref(leaf.UUID, client.Version(2)), a.UUID.String(), col.UUID.String(), uuid.NewString()}, true))
	if len(res.Items) != 3 || res.Items[0].Unit == nil || *res.Items[0].OLX != "<html>v2</html>" || res.Items[1].Asset == nil || res.Items[2].Collection == nil || len(res.Missing) != 1 {
		t.Fatalf("resolve = %+v", res)
	}

	// Deletion.
	if err := c.DeleteUnit(ctx, leaf.UUID); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("delete linked unit: %v", err)
	}
	if err := c.DeleteCollection(ctx, col.UUID, false); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("delete non-empty collection: %v", err)
	}
	if err := c.DeleteUnit(ctx, top.UUID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUnit(ctx, leaf.UUID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAsset(ctx, a.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Asset(ctx, a.UUID, client.Latest); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted asset: %v", err)
	}
	if err := c.DeleteCollection(ctx, col.UUID, true); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCollection(ctx, other.UUID, false); err != nil {
		t.Fatal(err)
	}

	// Garbage collection.
	rep := must[client.Report](t)(c.GC(ctx, client.GCRequest{DryRun: true, Grace: time.Nanosecond}))
	if !rep.DryRun || rep.ID == "" || rep.FinishedAt == nil {
		t.Fatalf("report = %+v", rep)
	}
	id := must[string](t)(c.StartGC(ctx, client.GCRequest{Grace: time.Nanosecond, Retention: time.Nanosecond}))
	var final client.Report
	for i := 0; i < 500; i++ {
		final = must[client.Report](t)(c.GCRun(ctx, id))
		if final.FinishedAt != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if final.FinishedAt == nil || final.BlobsDeleted == 0 {
		t.Fatalf("sweep = %+v", final)
	}
	if runs := must[client.Page[client.Report]](t)(c.GCRuns(ctx, client.ListOptions{})); len(runs.Items) != 2 || runs.Items[0].ID != id {
		t.Fatalf("runs = %+v", runs)
	}
	if _, err := c.StatBlob(ctx, h); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("swept blob: %v", err)
	}
}

// TestRetriedCreateIsNotDuplicated: the server commits a create but the
// answer is lost (connection cut); the retry with the same Idempotency-Key
// gets the first answer and nothing is created twice.
func TestRetriedCreateIsNotDuplicated(t *testing.T) {
	srv := testserver.Start(t)
	c := srv.Client(t, client.Options{})
	ctx := context.Background()
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Bool
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/units" || !cut.CompareAndSwap(false, true) {
			return false
		}
		// Let the server commit, then drop its answer on the floor.
		rec := &discardWriter{h: http.Header{}}
		srv.Handler().ServeHTTP(rec, r)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "u.xml", OLX: "<u/>"})
	if err != nil {
		t.Fatal(err)
	}
	if !cut.Load() {
		t.Fatal("the hook did not run")
	}
	page, err := c.CollectionUnits(ctx, col.UUID, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].UUID != u.UUID {
		t.Fatalf("units after a retried create: %+v", page.Items)
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }

// TestAssetOverSweptBlob: the blob a version names was swept after the
// client checked it; the create answers 404, the client uploads the bytes
// again and the retry succeeds.
func TestAssetOverSweptBlob(t *testing.T) {
	srv := testserver.Start(t)
	c := srv.Client(t, client.Options{})
	ctx := context.Background()
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("bytes that a sweep takes")
	h := cas.Sum(data)
	if _, err := c.PutBlob(ctx, h, client.BytesBody(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GC(ctx, client.GCRequest{Grace: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StatBlob(ctx, h); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the sweep kept the blob: %v", err)
	}
	var mu sync.Mutex
	var seen []string
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		seen = append(seen, r.Method)
		mu.Unlock()
		return false
	})
	a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "x"}, client.Content{Hash: h, Body: client.BytesBody(data)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != h || strings.Join(seen, " ") != "POST HEAD PUT POST" {
		t.Fatalf("asset %+v after requests %v", a, seen)
	}
}
