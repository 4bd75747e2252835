package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// rawRequest sends method path with Content-Length announced, then body
// (which may be shorter or longer than announced), and returns the status of
// the first answer. A body shorter than announced is ended by a half-close
// of the connection (as a client that stops sending does), which also
// cancels the request's context.
func (e *env) rawRequest(t *testing.T, method, path string, announced int, body []byte) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		method, path, announced)
	go func() {
		// Written beside the read: the server may answer (and stop
		// reading) before the whole body is sent.
		_, _ = c.Write(append([]byte(head), body...))
		if len(body) < announced {
			_ = c.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAnnouncedSizeOverHTTP: a body whose length differs from its
// Content-Length is refused and stores nothing, on every upload route, at
// sizes held in one chunk and past it.
func TestAnnouncedSizeOverHTTP(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, size := range []int{1000, 3<<20 + 17} {
		coll := e.newCollection(t)
		data := bytes.Repeat([]byte("announced size "), size/15+1)[:size]
		short := data[:size-1]
		h := cas.Sum(data)
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			// Shorter than announced: the body ends early (io.ErrUnexpectedEOF,
			// and the client is gone: 400 or 503).
			for _, route := range []struct{ method, path string }{
				{"PUT", "/api/v1/blobs/" + h.String()},
				{"PUT", "/api/v1/blobs/" + cas.Sum(short).String()},
				{"POST", "/api/v1/blobs"},
				{"POST", "/api/v1/assets?collection=" + coll + "&name=short"},
			} {
				if st := e.rawRequest(t, route.method, route.path, size, short); st != http.StatusBadRequest && st != http.StatusServiceUnavailable {
					t.Errorf("%s %s with a short body: %d, want 400 or 503", route.method, route.path, st)
				}
			}
			// Longer than announced: the server reads what was announced,
			// whose hash is not the one claimed (the rest is no request).
			if st := e.rawRequest(t, "PUT", "/api/v1/blobs/"+cas.Sum(append(data, '!')).String(), size, append(data, '!')); st != http.StatusUnprocessableEntity {
				t.Errorf("PUT with a longer body: %d, want 422", st)
			}
			for _, b := range [][]byte{data, short, append(data, '!')} {
				e.call(t, "HEAD", "/api/v1/blobs/"+cas.Sum(b).String(), nil).want(t, http.StatusNotFound, nil)
			}
			var page struct{ Items []any }
			e.call(t, "GET", "/api/v1/collections/"+coll+"/assets", nil).want(t, http.StatusOK, &page)
			if len(page.Items) != 0 {
				t.Errorf("%d assets after refused uploads", len(page.Items))
			}
			e.noTempFiles(t)

			// The same bodies, announced right, are stored.
			e.call(t, "PUT", "/api/v1/blobs/"+h.String(), data).want(t, http.StatusCreated, nil)
			if st := e.rawRequest(t, "PUT", "/api/v1/blobs/"+h.String(), size, data); st != http.StatusOK {
				t.Errorf("PUT of a stored blob with its length announced: %d, want 200", st)
			}
			// A stored blob sent again short is still refused.
			if st := e.rawRequest(t, "PUT", "/api/v1/blobs/"+h.String(), size, short); st != http.StatusBadRequest && st != http.StatusServiceUnavailable {
				t.Errorf("PUT of a stored blob with a short body: %d, want 400 or 503", st)
			}
			if st := e.rawRequest(t, "POST", "/api/v1/assets?collection="+coll+"&name=ok"+fmt.Sprint(size), size, data); st != http.StatusCreated {
				t.Errorf("POST /assets with its length announced: %d, want 201", st)
			}
			e.noTempFiles(t)
		})
	}
}

// noTempFiles fails when the blob store's temporary directory holds a file.
func (e *env) noTempFiles(t *testing.T) {
	t.Helper()
	names, err := os.ReadDir(filepath.Join(e.dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		t.Errorf("left behind: %s", n.Name())
	}
}

// sizeRecorder records the size announced to every Create.
type sizeRecorder struct {
	cas.Backend
	mu    sync.Mutex
	sizes []int64
}

func (r *sizeRecorder) Create(ctx context.Context, opt cas.CreateOptions) (cas.Writer, error) {
	r.mu.Lock()
	r.sizes = append(r.sizes, opt.Size)
	r.mu.Unlock()
	return r.Backend.Create(ctx, opt)
}

func (r *sizeRecorder) take() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sizes
	r.sizes = nil
	return s
}

// TestContentLengthReachesTheBackend: the Content-Length of every upload
// route is the size the backend is told (CreateOptions.Size); a chunked
// body is of unknown size (-1).
func TestContentLengthReachesTheBackend(t *testing.T) {
	rec := &sizeRecorder{}
	e := newEnv(t, envOptions{backend: func(b cas.Backend) cas.Backend { rec.Backend = b; return rec }})
	coll := e.newCollection(t)
	data := bytes.Repeat([]byte("x"), 300<<10)
	for i, route := range []struct{ method, path string }{
		{"PUT", "/api/v1/blobs/" + cas.Sum(append(data, 0)).String()},
		{"POST", "/api/v1/blobs"},
		{"POST", "/api/v1/assets?collection=" + coll + "&name=a"},
	} {
		body := append(append([]byte(nil), data...), byte(i))
		e.call(t, route.method, route.path, body).want(t, http.StatusCreated, nil)
		if got := rec.take(); !slices.Equal(got, []int64{int64(len(body))}) {
			t.Errorf("%s %s: sizes announced to the backend %v, want [%d]", route.method, route.path, got, len(body))
		}
	}
	// Chunked: no Content-Length (io.MultiReader hides the length from
	// net/http's client).
	body := append(append([]byte(nil), data...), 9)
	e.call(t, "POST", "/api/v1/blobs", io.MultiReader(bytes.NewReader(body))).want(t, http.StatusCreated, nil)
	if got := rec.take(); !slices.Equal(got, []int64{-1}) {
		t.Errorf("chunked POST /blobs: sizes announced %v, want [-1]", got)
	}
}
