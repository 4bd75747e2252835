package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// redirectWorld is a served deployment with one asset whose bytes are known.
type redirectWorld struct {
	base    string
	hash    cas.Hash
	body    []byte
	asset   string // the asset's content path
	version string // its version 1 content path
}

func newRedirectWorld(t *testing.T, cfg Config) redirectWorld {
	t.Helper()
	cfg.Tokens = Tokens{Write: "write-token", Read: "read-token"}
	base := serve(t, openApp(t, cfg))
	c, err := client.New(base, client.Options{Token: "write-token"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	coll, err := c.CreateCollection(ctx, client.NewCollection{Name: "redirects"})
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("presigned bytes "), 70000) // > 1 MiB: not a cached small blob
	a, err := c.CreateAsset(ctx, client.NewAsset{Collection: coll.UUID, Name: "video.mp4", MediaType: "video/mp4"},
		client.Content{Body: client.BytesBody(body)})
	if err != nil {
		t.Fatal(err)
	}
	p := "/api/v1/assets/" + a.UUID.String()
	return redirectWorld{base: base, hash: a.Hash, body: body, asset: p + "/content", version: p + "/versions/1/content"}
}

// get sends method path with the token (none when empty) and Prefer (none
// when empty), not following redirects.
func (w redirectWorld) get(t *testing.T, method, path, token, prefer string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, w.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if prefer != "" {
		req.Header.Set("Prefer", prefer)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestPreferRedirect: on S3, a GET of a blob or of an asset's content
// with `Prefer: redirect` is a 307 to a presigned URL that serves the
// right bytes; HEAD, a GET without the header and an absent blob are
// answered as always, and the token check comes first.
func TestPreferRedirect(t *testing.T) {
	w := newRedirectWorld(t, productionConfig(t))
	blob := "/api/v1/blobs/" + w.hash.String()
	for _, path := range []string{blob, w.asset, w.version} {
		for _, prefer := range []string{"redirect", "respond-async, redirect", "wait=5; x, Redirect"} {
			resp := w.get(t, "GET", path, "read-token", prefer)
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Preference-Applied") != "redirect" {
				t.Fatalf("GET %s with Prefer %q: %d, Preference-Applied %q; want 307, redirect", path, prefer, resp.StatusCode, resp.Header.Get("Preference-Applied"))
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || loc.Query().Get("X-Amz-Signature") == "" {
				t.Fatalf("GET %s: Location %q is not a presigned URL (%v)", path, resp.Header.Get("Location"), err)
			}
			got, err := http.Get(loc.String())
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil || got.StatusCode != http.StatusOK || !bytes.Equal(b, w.body) {
				t.Fatalf("GET %s: the Location answered %d with %d bytes (%v), want the asset's %d", path, got.StatusCode, len(b), err, len(w.body))
			}
			if path != blob && got.Header.Get("Content-Type") != "video/mp4" {
				t.Errorf("GET %s: the Location answered Content-Type %q, want the asset's video/mp4", path, got.Header.Get("Content-Type"))
			}
		}
		if resp := w.get(t, "GET", path, "read-token", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Errorf("GET %s without Prefer: %d, Location %q; want 200 and the bytes", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp := w.get(t, "GET", path, "read-token", "return=minimal"); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with another preference: %d, want 200", path, resp.StatusCode)
		}
		if resp := w.get(t, "HEAD", path, "read-token", "redirect"); resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Errorf("HEAD %s with Prefer redirect: %d, Location %q; want 200 without a redirect", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp := w.get(t, "GET", path, "", "redirect"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Errorf("GET %s with Prefer redirect and no token: %d, want 401", path, resp.StatusCode)
		}
	}
	absent := "/api/v1/blobs/" + cas.Sum([]byte("never stored")).String()
	if resp := w.get(t, "GET", absent, "read-token", "redirect"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an absent blob with Prefer redirect: %d, want 404", resp.StatusCode)
	}
	if resp := w.get(t, "GET", "/api/v1/assets/00000000-0000-4000-8000-000000000000/content", "read-token", "redirect"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an absent asset with Prefer redirect: %d, want 404", resp.StatusCode)
	}
}

// TestPreferRedirectDirectory: a blob directory cannot sign URLs, so the
// bytes are served as usual.
func TestPreferRedirectDirectory(t *testing.T) {
	w := newRedirectWorld(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	for _, path := range []string{"/api/v1/blobs/" + w.hash.String(), w.asset, w.version} {
		resp := w.get(t, "GET", path, "read-token", "redirect")
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Preference-Applied") != "" || err != nil || !bytes.Equal(b, w.body) {
			t.Errorf("GET %s with Prefer redirect on a directory: %d, Preference-Applied %q, %d bytes (%v); want 200 and the bytes",
				path, resp.StatusCode, resp.Header.Get("Preference-Applied"), len(b), err)
		}
	}
}

// countingTransport counts the requests that go to each host, and those
// that carried a token there.
type countingTransport struct {
	next   http.RoundTripper
	hosts  map[string]*atomic.Int64
	leaked *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if n, ok := c.hosts[r.URL.Host]; ok {
		n.Add(1)
		if r.Header.Get("Authorization") != "" {
			c.leaked.Add(1)
		}
	}
	return c.next.RoundTrip(r)
}

// TestClientPreferRedirect: the Go client asked to prefer redirects
// fetches blobs, ranges and asset content from the bucket, without its
// token, and the bytes are right.
func TestClientPreferRedirect(t *testing.T) {
	cfg := productionConfig(t)
	w := newRedirectWorld(t, cfg)
	bucketHost := cfg.S3.Endpoint
	var toBucket, leaked atomic.Int64
	tr := countingTransport{next: http.DefaultTransport, hosts: map[string]*atomic.Int64{bucketHost: &toBucket}, leaked: &leaked}
	c, err := client.New(w.base, client.Options{Token: "read-token", PreferRedirect: true, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	read := func(d *client.Download, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		b, err := io.ReadAll(d.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := read(c.GetBlob(ctx, w.hash, client.GetOptions{})); !bytes.Equal(b, w.body) {
		t.Fatalf("GetBlob through the redirect: %d bytes, want %d", len(b), len(w.body))
	}
	if b := read(c.GetBlob(ctx, w.hash, client.GetOptions{Offset: 16, Length: 32})); !bytes.Equal(b, w.body[16:48]) {
		t.Fatalf("GetBlob of a range through the redirect: %q", b)
	}
	d, err := c.GetBlob(ctx, w.hash, client.GetOptions{Offset: int64(len(w.body)) + 10})
	if err == nil {
		d.Close()
		t.Fatal("a range past the end through the redirect: no error")
	}
	if got := toBucket.Load(); got < 2 {
		t.Fatalf("%d requests went to the bucket, want the downloads' (the client did not follow the redirects itself)", got)
	}
	before := toBucket.Load()
	id, err := uuid.Parse(strings.Split(w.asset, "/")[4])
	if err != nil {
		t.Fatal(err)
	}
	if b := read(c.AssetContent(ctx, id, client.Version(1), client.GetOptions{})); !bytes.Equal(b, w.body) {
		t.Fatalf("AssetContent through the redirect: %d bytes, want %d", len(b), len(w.body))
	}
	if toBucket.Load() == before {
		t.Fatal("AssetContent did not go to the bucket")
	}
	if n := leaked.Load(); n > 0 {
		t.Fatalf("%d requests to the bucket carried the token", n)
	}
}
