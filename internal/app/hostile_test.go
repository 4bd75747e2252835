package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/index"
)

// TestHostileRequests is the table of hostile requests against the
// server as `blockstore serve` builds it: each gets its 4xx, nothing is
// stored, and the service keeps answering. Path traversal in every path
// parameter, malformed uuids, hashes, refs and versions, NUL and invalid
// UTF-8 are in the contract suite (httpapi/apitest, "hostile"), and slow
// bodies in httpapi's TestMinimumRate.
func TestHostileRequests(t *testing.T) {
	a := openApp(t, Config{DataDir: filepath.Join(t.TempDir(), "data")})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(l.Addr().String(), a.Handler(), httpapi.ServerOptions{
		ReadHeaderTimeout: 500 * time.Millisecond, MaxHeaderBytes: 64 << 10,
	})
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + l.Addr().String()
	ctx := context.Background()

	// Something to read ranges of.
	content := bytes.Repeat([]byte("0123456789"), 100)
	h := cas.Sum(content)
	req, _ := http.NewRequest("PUT", base+"/api/v1/blobs/"+h.String(), bytes.NewReader(content))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("setup: %v %v", resp, err)
	}
	before := snapshot(t, a)

	refs := make([]string, 1001)
	for i := range refs {
		refs[i] = "00000000-0000-4000-8000-000000000000"
	}
	hugeRefs, _ := json.Marshal(map[string]any{"refs": refs})
	hashes := make([]string, 10001)
	for i := range hashes {
		hashes[i] = strings.Repeat("a", 64)
	}
	hugeHashes, _ := json.Marshal(map[string]any{"hashes": hashes})

	tests := []struct {
		name    string
		method  string
		path    string
		body    []byte
		headers map[string]string
		want    int
	}{
		{"oversized header", "GET", "/api/v1/collections", nil, map[string]string{"X-Big": strings.Repeat("x", 128<<10)}, 431},
		{"JSON endpoint with a form body", "POST", "/api/v1/collections", []byte("name=x"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400},
		{"JSON endpoint with XML", "POST", "/api/v1/units", []byte("<x/>"), map[string]string{"Content-Type": "application/xml"}, 400},
		{"resolve with 1,001 refs", "POST", "/api/v1/resolve", hugeRefs, map[string]string{"Content-Type": "application/json"}, 413},
		{"missing with 10,001 hashes", "POST", "/api/v1/blobs/missing", hugeHashes, map[string]string{"Content-Type": "application/json"}, 413},
		{"JSON over 16 MiB", "POST", "/api/v1/collections", bytes.Repeat([]byte(" "), 16<<20+1), map[string]string{"Content-Type": "application/json"}, 413},
		{"range past the end", "GET", "/api/v1/blobs/" + h.String(), nil, map[string]string{"Range": "bytes=5000-6000"}, 416},
		{"huge range start", "GET", "/api/v1/blobs/" + h.String(), nil, map[string]string{"Range": "bytes=99999999999999999999-"}, 416},
		{"negative range", "GET", "/api/v1/blobs/" + h.String(), nil, map[string]string{"Range": "bytes=-5-10"}, 416},
		{"inverted range", "GET", "/api/v1/blobs/" + h.String(), nil, map[string]string{"Range": "bytes=10-5"}, 416},
		{"blob body that is not its hash", "PUT", "/api/v1/blobs/" + cas.Sum([]byte("other")).String(), []byte("not other"), nil, 422},
		{"asset in no collection", "POST", "/api/v1/assets?name=x", []byte("bytes"), nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, tt.method, base+tt.path, bytes.NewReader(tt.body))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}

	t.Run("a client that never finishes its headers is cut off", func(t *testing.T) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /api/v1/collections HTTP/1.1\r\nHost: x\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		_, err = bufio.NewReader(c).ReadString('\n')
		if err == nil && time.Since(start) > 5*time.Second {
			t.Fatalf("the connection stayed open for %v", time.Since(start))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("cut off after %v, want about the 500ms header timeout", d)
		}
	})

	if after := snapshot(t, a); after != before {
		t.Fatalf("the store changed:\nbefore %s\nafter  %s", before, after)
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz after the hostile requests: %v %v", resp, err)
	}
}

// snapshot summarizes what is stored: blobs and collections.
func snapshot(t *testing.T, a *App) string {
	t.Helper()
	ctx := context.Background()
	var blobs []string
	if err := a.Blobs.Walk(ctx, func(i cas.Info) error {
		blobs = append(blobs, fmt.Sprintf("%s:%d", i.Hash.String()[:8], i.Size))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cols, err := a.Index.Collections(ctx, indexList())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("blobs %v collections %d", blobs, len(cols.Items))
}

func indexList() index.ListOptions { return index.ListOptions{} }
