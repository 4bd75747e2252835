package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
)

// methodCounter counts the requests a client sends, by method.
type methodCounter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *methodCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[req.Method]++
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

func (c *methodCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// A read of a whole blob is one GET: no HEAD for its size first, none
// after http.ServeContent's seeks to the end and back, and also when the
// blob is missing (the GET's 404 says so).
func TestOpenIsOneGET(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.CreateBucket = true
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := cas.New(s, cas.Options{})
	defer store.Close()
	data := castest.NewContent(3, 3<<20).Bytes()
	info, err := store.Put(ctx, bytes.NewReader(data), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}

	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	count := &methodCounter{base: tr, n: map[string]int{}}
	host, secure, err := parseEndpoint(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: secure, Region: "us-east-1", Transport: count}) // a region: no location lookup
	if err != nil {
		t.Fatal(err)
	}
	s.client, s.core = c, minio.Core{Client: c}

	r, err := store.Open(ctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	// http.ServeContent seeks to the end for the size, and back.
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("seek to the end: %d, %v", end, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; want the %d stored", len(got), err, len(data))
	}
	if n := count.take(); n[http.MethodGet] != 1 || len(n) != 1 {
		t.Errorf("a whole read sent %v, want one GET", n)
	}
	if _, err := store.Open(ctx, castest.NewContent(4, 10).Hash()); !errors.Is(err, cas.ErrNotFound) {
		t.Fatalf("open a missing blob: %v, want ErrNotFound", err)
	}
	if n := count.take(); n[http.MethodGet] != 1 || len(n) != 1 {
		t.Errorf("opening a missing blob sent %v, want one GET", n)
	}
}
