package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// fake is an httptest server whose handler the test writes, with a client
// whose waits are recorded instead of slept.
type fake struct {
	srv   *httptest.Server
	c     *Client
	mu    sync.Mutex
	waits []time.Duration
}

func newFake(t *testing.T, opt Options, h http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{srv: httptest.NewServer(h)}
	t.Cleanup(f.srv.Close)
	c, err := New(f.srv.URL, opt)
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.waits = append(f.waits, d)
		f.mu.Unlock()
		return ctx.Err()
	}
	f.c = c
	return f
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// breakConn closes the connection without an answer: a connection error.
func breakConn(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("no hijacker")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}

func TestNewRejectsBadBaseURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "http://h/?q=1", "://"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	c, err := New("http://127.0.0.1:1/prefix/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.url("/api/v1/blobs/x", nil); got != "http://127.0.0.1:1/prefix/api/v1/blobs/x" {
		t.Errorf("url = %q", got)
	}
}

func TestRetry503ReusesIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	var bodies []string
	f := newFake(t, Options{Retries: 5, Backoff: 10 * time.Millisecond, Token: "s3cret", UserAgent: "ua-test"}, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		bodies = append(bodies, string(b))
		n := len(keys)
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("User-Agent") != "ua-test" {
			writeError(w, 401, "unauthorized", "bad headers")
			return
		}
		if n < 3 {
			writeError(w, 503, "unavailable", "try later")
			return
		}
		writeJSON(w, 201, map[string]any{"uuid": uuid.New(), "version": 1, "name": "c"})
	})
	col, err := f.c.CreateCollection(context.Background(), NewCollection{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if col.Name != "c" || col.Version != 1 {
		t.Errorf("collection = %+v", col)
	}
	if len(keys) != 3 {
		t.Fatalf("attempts = %d, want 3", len(keys))
	}
	if keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("idempotency keys across retries: %q", keys)
	}
	if bodies[0] != bodies[2] || !strings.Contains(bodies[0], `"name":"c"`) {
		t.Errorf("bodies differ across retries: %q", bodies)
	}
	if len(f.waits) != 2 {
		t.Fatalf("waits = %v", f.waits)
	}
	// Jitter keeps each wait within [d/2, d] of its exponential step.
	for i, w := range f.waits {
		d := 10 * time.Millisecond << i
		if w < d/2 || w > d {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, w, d/2, d)
		}
	}
	// A second logical call gets another key.
	mu.Lock()
	keys = nil
	mu.Unlock()
	if _, err := f.c.CreateCollection(context.Background(), NewCollection{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if keys[0] == "" {
		t.Fatal("no key")
	}
	if _, err := f.c.CreateCollection(context.Background(), NewCollection{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if keys[len(keys)-1] == keys[0] {
		t.Errorf("two calls shared the key %q", keys[0])
	}
}

func TestRetriesAreBounded(t *testing.T) {
	var n int
	f := newFake(t, Options{Retries: 3, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Retry-After", "1")
		writeError(w, 503, "unavailable", "down")
	})
	_, err := f.c.Collection(context.Background(), uuid.New(), Latest)
	if !errors.Is(err, ErrUnavailable) || StatusOf(err) != 503 || !IsTemporary(err) {
		t.Fatalf("err = %v", err)
	}
	if n != 4 {
		t.Errorf("attempts = %d, want 4", n)
	}
	for _, w := range f.waits {
		if w > 4*time.Millisecond {
			t.Errorf("wait %v over MaxBackoff (Retry-After must be capped)", w)
		}
	}
	// Negative Retries: one attempt only.
	n = 0
	c, _ := New(f.srv.URL, Options{Retries: -1})
	if _, err := c.Collection(context.Background(), uuid.New(), Latest); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("attempts with Retries -1 = %d", n)
	}
}

func TestNoRetryOnOtherErrorsAndDecoding(t *testing.T) {
	var n int
	f := newFake(t, Options{Retries: 3}, func(w http.ResponseWriter, r *http.Request) {
		n++
		switch {
		case strings.HasSuffix(r.URL.Path, "/plain"):
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
		case r.Method == http.MethodHead:
			w.WriteHeader(404)
		case strings.HasPrefix(r.URL.Path, "/api/v1/units"):
			writeError(w, 409, "conflict", "name taken by 6a0c9d5e-0000-4000-8000-000000000000")
		default:
			writeError(w, 500, "internal", "boom")
		}
	})
	ctx := context.Background()
	_, err := f.c.Collection(ctx, uuid.New(), Latest)
	var e *Error
	if !errors.As(err, &e) || e.Status != 500 || e.Code != "internal" || e.Message != "boom" || !errors.Is(err, ErrInternal) {
		t.Fatalf("err = %#v", err)
	}
	if n != 1 {
		t.Errorf("500 was retried: %d attempts", n)
	}
	_, err = f.c.CreateUnit(ctx, NewUnit{Collection: uuid.New(), OLX: "<x/>"})
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "POST /api/v1/units: 409 conflict: name taken") {
		t.Errorf("message = %q", err)
	}
	_, err = f.c.StatBlob(ctx, cas.Sum([]byte("x")))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("HEAD err = %v", err)
	}
	err = f.c.get(ctx, "/plain", nil, nil)
	if !errors.As(err, &e) || e.Status != 502 || !strings.Contains(e.Message, "bad gateway") {
		t.Fatalf("non-JSON error = %#v", err)
	}
}

func TestRetryConnectionErrorResendsSeekableBody(t *testing.T) {
	var mu sync.Mutex
	var got []string
	f := newFake(t, Options{Retries: 2}, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		n := len(got)
		mu.Unlock()
		if n == 1 {
			breakConn(t, w)
			return
		}
		w.WriteHeader(201)
	})
	data := []byte("hello blob")
	h := cas.Sum(data)
	r := bytes.NewReader(append([]byte("skip:"), data...))
	r.Seek(5, io.SeekStart)
	created, err := f.c.PutBlob(context.Background(), h, ReaderBody(r, int64(len(data))))
	if err != nil || !created {
		t.Fatalf("PutBlob = %v, %v", created, err)
	}
	if len(got) != 2 || got[1] != string(data) {
		t.Errorf("bodies = %q", got)
	}
}

func TestPlainReaderIsNotResent(t *testing.T) {
	var n int
	f := newFake(t, Options{Retries: 3}, func(w http.ResponseWriter, r *http.Request) {
		n++
		io.Copy(io.Discard, r.Body)
		writeError(w, 503, "unavailable", "busy")
	})
	_, err := f.c.PutBlob(context.Background(), cas.Sum([]byte("abc")), ReaderBody(io.MultiReader(strings.NewReader("abc")), 3))
	if !errors.Is(err, ErrNotRewindable) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n != 1 {
		t.Errorf("attempts = %d", n)
	}
}

func TestOpenBodyIsReopenedPerAttempt(t *testing.T) {
	var n, opened int
	f := newFake(t, Options{Retries: 3}, func(w http.ResponseWriter, r *http.Request) {
		n++
		b, _ := io.ReadAll(r.Body)
		if string(b) != "bytes" || r.ContentLength != 5 {
			t.Errorf("body %q length %d", b, r.ContentLength)
		}
		if n < 3 {
			writeError(w, 503, "unavailable", "busy")
			return
		}
		writeJSON(w, 201, StoredBlob{Hash: cas.Sum(b), Size: int64(len(b))})
	})
	body := OpenBody(5, func() (io.ReadCloser, error) {
		opened++
		return io.NopCloser(strings.NewReader("bytes")), nil
	})
	sb, err := f.c.PostBlob(context.Background(), body)
	if err != nil || sb.Hash != cas.Sum([]byte("bytes")) || sb.Size != 5 {
		t.Fatalf("PostBlob = %+v, %v", sb, err)
	}
	if opened != 3 {
		t.Errorf("opened %d times", opened)
	}
}

func TestContextCancelStopsBackoff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 503, "unavailable", "busy")
	}))
	defer srv.Close()
	c, _ := New(srv.URL, Options{Retries: 10, Backoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Collections(ctx, ListOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("backoff ignored the context")
	}
}

func TestAssetOverMissingBlobReuploads(t *testing.T) {
	data := []byte("video bytes")
	h := cas.Sum(data)
	var mu sync.Mutex
	stored := false
	var postKeys []string
	var log []string
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/assets":
			postKeys = append(postKeys, r.Header.Get("Idempotency-Key"))
			q := r.URL.Query()
			if q.Get("hash") != h.String() || q.Get("media_type") != "video/mp4" || q.Get("name") != "static/v.mp4" {
				writeError(w, 400, "bad_request", "query "+r.URL.RawQuery)
				return
			}
			if !stored {
				writeError(w, 404, "not_found", "blob not stored")
				return
			}
			writeJSON(w, 201, Asset{UUID: uuid.New(), Version: Int64(1), Name: q.Get("name"), MediaType: "video/mp4", Hash: h, Size: int64(len(data))})
		case r.Method == http.MethodHead:
			if !stored {
				w.WriteHeader(404)
				return
			}
			w.WriteHeader(200)
		case r.Method == http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			if cas.Sum(b) != h {
				writeError(w, 422, "hash_mismatch", "no")
				return
			}
			stored = true
			w.WriteHeader(201)
		default:
			writeError(w, 404, "not_found", "no route")
		}
	})
	ctx := context.Background()
	a, err := f.c.CreateAsset(ctx, NewAsset{Collection: uuid.New(), Name: "static/v.mp4", MediaType: "video/mp4"},
		Content{Hash: h, Body: BytesBody(data)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != h || *a.Version != 1 {
		t.Errorf("asset = %+v", a)
	}
	want := []string{"POST /api/v1/assets", "HEAD /api/v1/blobs/" + h.String(), "PUT /api/v1/blobs/" + h.String(), "POST /api/v1/assets"}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Errorf("requests = %v\nwant %v", log, want)
	}
	if len(postKeys) != 2 || postKeys[0] == postKeys[1] {
		t.Errorf("a 404 answer must not be replayed under the same key: %q", postKeys)
	}

	// Without a body to upload from, the 404 is returned.
	stored = false
	log = nil
	_, err = f.c.CreateAsset(ctx, NewAsset{Collection: uuid.New(), Name: "static/v.mp4", MediaType: "video/mp4"}, Content{Hash: h})
	if !errors.Is(err, ErrNotFound) || len(log) != 1 {
		t.Fatalf("err = %v, requests %v", err, log)
	}
}

func TestAsset404NotAboutTheBlob(t *testing.T) {
	var puts int
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodHead:
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(200)
		case http.MethodPut:
			puts++
			w.WriteHeader(200)
		default:
			writeError(w, 404, "not_found", "no such asset")
		}
	})
	_, _, err := f.c.NewAssetVersion(context.Background(), uuid.New(), AssetChange{}, Content{Hash: cas.Sum([]byte("abc")), Body: BytesBody([]byte("abc"))})
	if !errors.Is(err, ErrNotFound) || puts != 0 {
		t.Fatalf("err = %v, puts = %d", err, puts)
	}
}

func TestDeleteAfterLostAnswer(t *testing.T) {
	var n int
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			breakConn(t, w) // as if it had been deleted and the answer lost
			return
		}
		writeError(w, 404, "not_found", "gone")
	})
	if err := f.c.DeleteAsset(context.Background(), uuid.New()); err != nil {
		t.Fatalf("delete after lost answer: %v", err)
	}
	n = 1
	if err := f.c.DeleteAsset(context.Background(), uuid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("plain 404 delete: %v", err)
	}
}

func TestIteratorFollowsCursors(t *testing.T) {
	ids := make([]uuid.UUID, 7)
	for i := range ids {
		ids[i] = uuid.New()
	}
	var limits []string
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limits = append(limits, q.Get("limit"))
		start := 0
		if c := q.Get("cursor"); c != "" {
			start, _ = strconv.Atoi(c)
		}
		if q.Get("name") != "n" {
			writeError(w, 400, "bad_request", "no name")
			return
		}
		end := min(start+3, len(ids))
		p := Page[Unit]{Items: []Unit{}}
		for _, id := range ids[start:end] {
			p.Items = append(p.Items, Unit{UUID: id, Name: "n"})
		}
		if end < len(ids) {
			p.NextCursor = strconv.Itoa(end)
		}
		writeJSON(w, 200, p)
	})
	var got []uuid.UUID
	for u, err := range f.c.AllUnits(context.Background(), uuid.New(), ListOptions{Limit: 3, Name: String("n")}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.UUID)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) || len(limits) != 3 || limits[0] != "3" {
		t.Errorf("got %v (limits %v)", got, limits)
	}
	// Breaking early fetches no more pages.
	limits = nil
	for range f.c.AllUnits(context.Background(), uuid.New(), ListOptions{Limit: 3, Name: String("n")}) {
		break
	}
	if len(limits) != 1 {
		t.Errorf("pages fetched after break: %d", len(limits))
	}
}

func TestDownloadRange(t *testing.T) {
	data := []byte("0123456789")
	h := cas.Sum(data)
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"`+h.String()+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
	ctx := context.Background()
	d, err := f.c.GetBlob(ctx, h, GetOptions{Offset: 2, Length: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d.Body)
	d.Close()
	if string(b) != "234" || d.Status != 206 || d.Start != 2 || d.Total != 10 || d.Size != 3 {
		t.Errorf("range = %q %+v", b, d)
	}
	d, err = f.c.GetBlob(ctx, h, GetOptions{Offset: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(d.Body)
	d.Close()
	if string(b) != "789" {
		t.Errorf("open range = %q", b)
	}
	d, err = f.c.GetBlob(ctx, h, GetOptions{IfNoneMatch: `"` + h.String() + `"`})
	if err != nil || !d.NotModified() {
		t.Fatalf("If-None-Match: %v %+v", err, d)
	}
	d.Close()
	_, err = f.c.GetBlob(ctx, h, GetOptions{Offset: 20})
	if !errors.Is(err, ErrRangeNotSatisfiable) {
		t.Fatalf("unsatisfiable range: %v", err)
	}
}

func TestDecodingNullVersionsAndResolve(t *testing.T) {
	id, target := uuid.New(), uuid.New()
	h := cas.Sum([]byte("<x/>"))
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/units/" + id.String() + "/versions/draft":
			fmt.Fprintf(w, `{"uuid":%q,"version":null,"hash":%q,"size":4,"links":[{"target":%q,"kind":"asset","version":null}]}`, id, h, target)
		case "/api/v1/units/" + id.String():
			if r.URL.Query().Get("expand") != "links" {
				writeError(w, 400, "bad_request", "expand")
				return
			}
			fmt.Fprintf(w, `{"uuid":%q,"version":3,"links":[{"target":%q,"kind":"unit","version":2,"resolved":null}]}`, id, target)
		case "/api/v1/resolve":
			var req struct {
				Refs       []string `json:"refs"`
				IncludeOLX bool     `json:"include_olx"`
			}
			json.NewDecoder(r.Body).Decode(&req)
			fmt.Fprintf(w, `{"items":[{"kind":"unit","ref":%q,"uuid":%q,"version":null,"olx":"<x/>"},{"kind":"collection","ref":"c","uuid":%q,"version":2}],"missing":["m"]}`, req.Refs[0], id, target)
		case "/api/v1/units/" + id.String() + "/links":
			fmt.Fprintf(w, `{"items":[{"target":%q,"kind":"asset","version":null}]}`, target)
		}
	})
	ctx := context.Background()
	u, err := f.c.Unit(ctx, id, Draft)
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != nil || u.Hash != h || len(u.Links) != 1 || u.Links[0].Version != nil || u.Links[0].Kind != KindAsset {
		t.Errorf("draft = %+v", u)
	}
	u, err = f.c.UnitExpanded(ctx, id, Latest)
	if err != nil || *u.Version != 3 || *u.Links[0].Version != 2 || u.Links[0].Resolved != nil {
		t.Errorf("expanded = %+v %v", u, err)
	}
	res, err := f.c.Resolve(ctx, []string{Ref(id, Draft), "c", "m"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 2 || res.Items[0].Unit == nil || res.Items[0].Ref != id.String()+"@draft" || *res.Items[0].OLX != "<x/>" ||
		res.Items[1].Collection == nil || res.Items[1].Collection.Version != 2 || fmt.Sprint(res.Missing) != "[m]" {
		t.Errorf("resolve = %+v", res)
	}
	links, err := f.c.UnitLinks(ctx, id)
	if err != nil || len(links) != 1 || links[0].Target != target {
		t.Errorf("links = %+v %v", links, err)
	}
	if _, err := f.c.Unit(ctx, id, Version(-1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative version: %v", err)
	}
}

func TestInvalidOLXIsRefusedLocally(t *testing.T) {
	var n int
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) { n++ })
	_, err := f.c.CreateUnit(context.Background(), NewUnit{Collection: uuid.New(), OLX: "<a>\xff</a>"})
	if !errors.Is(err, ErrInvalid) || n != 0 {
		t.Fatalf("err = %v, requests = %d", err, n)
	}
}

func TestMissingBlobsBatches(t *testing.T) {
	var sizes []int
	f := newFake(t, Options{}, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Hashes []cas.Hash `json:"hashes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, 400, "bad_request", err.Error())
			return
		}
		sizes = append(sizes, len(req.Hashes))
		writeJSON(w, 200, map[string]any{"missing": req.Hashes[:1]})
	})
	hs := make([]cas.Hash, MaxMissingBatch+5)
	for i := range hs {
		hs[i] = cas.Sum([]byte(strconv.Itoa(i)))
	}
	missing, err := f.c.MissingBlobs(context.Background(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{MaxMissingBatch, 5}) || len(missing) != 2 || missing[1] != hs[MaxMissingBatch] {
		t.Errorf("batches %v missing %d", sizes, len(missing))
	}
}

func TestErrorNeverShowsToken(t *testing.T) {
	c, _ := New("http://127.0.0.1:1", Options{Token: "tok-very-secret", Retries: -1})
	_, err := c.Collections(context.Background(), ListOptions{})
	if err == nil || strings.Contains(err.Error(), "tok-very-secret") {
		t.Fatalf("err = %v", err)
	}
	if !IsTemporary(err) {
		t.Errorf("connection refused is not temporary: %v", err)
	}
}
