package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

func TestErrorMapping(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("refs: doing something: %w", err) }
	h := cas.Sum([]byte("x"))
	holder := uuid.New()
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{wrap(index.ErrNotFound), 404, "not_found"},
		{wrap(cas.ErrNotFound), 404, "not_found"},
		{wrap(gc.ErrNotFound), 404, "not_found"},
		{wrap(&index.BlobMissingError{Hash: h}), 404, "not_found"},
		{wrap(index.ErrInvalid), 400, "bad_request"},
		{wrap(refs.ErrInvalid), 400, "bad_request"},
		{wrap(cas.ErrInvalidHash), 400, "bad_request"},
		{wrap(gc.ErrInvalid), 400, "bad_request"},
		{badRequest("x"), 400, "bad_request"},
		{wrap(ErrSlowClient), 400, "bad_request"},
		{wrap(io.ErrUnexpectedEOF), 400, "bad_request"},
		{wrap(&index.ConflictError{Reason: "name taken", Holder: holder}), 409, "conflict"},
		{wrap(refs.ErrKeyReused), 409, "conflict"},
		{wrap(gc.ErrRunning), 409, "conflict"},
		{wrap(&http.MaxBytesError{Limit: 10}), 413, "too_large"},
		{wrap(cas.ErrTooLarge), 413, "too_large"},
		{tooLarge("x"), 413, "too_large"},
		{wrap(&cas.MismatchError{Want: h}), 422, "hash_mismatch"},
		{wrap(index.ErrBlobBusy), 503, "unavailable"},
		{wrap(index.ErrUnavailable), 503, "unavailable"},
		{wrap(refs.ErrRetry), 503, "unavailable"},
		{wrap(index.ErrClosed), 503, "unavailable"},
		{wrap(cas.ErrClosed), 503, "unavailable"},
		{ErrGCNotConfigured, 503, "unavailable"},
		{fmt.Errorf("%w: %w", ErrNotReady, errors.New("dial tcp: refused")), 503, "unavailable"},
		{wrap(context.DeadlineExceeded), 503, "unavailable"},
		{errMethodNotAllowed, 405, "method_not_allowed"},
		{errors.New("disk on fire"), 500, "internal"},
	} {
		got := errorOf(c.err)
		if got.Status != c.status || got.Code != c.code {
			t.Errorf("%v → %d %s, want %d %s", c.err, got.Status, got.Code, c.status, c.code)
		}
		if got.Message == "" || strings.Contains(got.Message, "refs: ") {
			t.Errorf("%v → message %q", c.err, got.Message)
		}
	}
	if e := errorOf(errors.New("secret detail")); strings.Contains(e.Message, "secret") {
		t.Errorf("a 500 shows its cause: %q", e.Message)
	}
	if e := errorOf(&index.BlobMissingError{Hash: h}); e.Hash == nil || *e.Hash != h {
		t.Errorf("missing blob error lacks its hash: %+v", e)
	}
	if e := errorOf(&index.ConflictError{Reason: "name taken", Holder: holder}); e.Holder == nil || *e.Holder != holder.String() || !strings.Contains(e.Message, holder.String()) {
		t.Errorf("conflict lacks its holder: %+v", e)
	}
}

// fakeGC records what the API asks of the collector.
type fakeGC struct {
	mu   sync.Mutex
	reqs []gc.Request
}

func (f *fakeGC) Sweep(ctx context.Context, req gc.Request) (gc.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if len(f.reqs) > 1 {
		return gc.Report{}, gc.ErrRunning
	}
	return gc.Report{ID: "run-1", DryRun: req.DryRun, StartedAt: time.Now().UTC(), Status: gc.StatusSucceeded}, nil
}

func (f *fakeGC) Start(ctx context.Context, req gc.Request) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return "run-2", nil
}

func (f *fakeGC) Runs(ctx context.Context, limit int, cursor string) (gc.RunsPage, error) {
	return gc.RunsPage{Items: []gc.Report{{ID: "run-2"}, {ID: "run-1"}}}, nil
}

func (f *fakeGC) Run(ctx context.Context, id string) (gc.Report, error) {
	if id != "run-1" {
		return gc.Report{}, fmt.Errorf("%w: %q", gc.ErrNotFound, id)
	}
	return gc.Report{ID: id}, nil
}

func TestGCEndpoints(t *testing.T) {
	f := &fakeGC{}
	e := newEnv(t, envOptions{api: Options{GC: f}})
	var rep struct {
		ID     string
		DryRun bool `json:"dry_run"`
	}
	e.call(t, "POST", "/api/v1/gc", object{"dry_run": true, "retention": "1h", "grace": "0s"}).want(t, http.StatusOK, &rep)
	if rep.ID != "run-1" || !rep.DryRun {
		t.Fatalf("report %+v", rep)
	}
	if r := f.reqs[0]; !r.DryRun || r.Retention == nil || *r.Retention != time.Hour || r.Grace == nil || *r.Grace != 0 {
		t.Fatalf("request %+v", r)
	}
	e.call(t, "POST", "/api/v1/gc", nil).wantError(t, http.StatusConflict, "conflict")
	var started struct{ ID string }
	e.call(t, "POST", "/api/v1/gc", object{"wait": false}).want(t, http.StatusAccepted, &started)
	if started.ID != "run-2" {
		t.Fatalf("started %+v", started)
	}
	e.call(t, "POST", "/api/v1/gc", object{"grace": "soon"}).wantError(t, http.StatusBadRequest, "bad_request")
	var runs struct{ Items []struct{ ID string } }
	e.call(t, "GET", "/api/v1/gc/runs", nil).want(t, http.StatusOK, &runs)
	if len(runs.Items) != 2 || runs.Items[0].ID != "run-2" {
		t.Fatalf("runs %+v", runs)
	}
	e.call(t, "GET", "/api/v1/gc/runs/run-1", nil).want(t, http.StatusOK, nil)
	e.call(t, "GET", "/api/v1/gc/runs/nope", nil).wantError(t, http.StatusNotFound, "not_found")
}

func TestEndpointsMatchTheRouter(t *testing.T) {
	e := newEnv(t, envOptions{})
	seen := map[string]bool{}
	for _, ep := range Endpoints() {
		k := ep.Method + " " + ep.Pattern
		if seen[k] {
			t.Errorf("%s listed twice", k)
		}
		seen[k] = true
		path := strings.NewReplacer(":uuid", uuid.NewString(), ":hash", cas.Sum(nil).String(), ":n", "1", ":id", "x").Replace(ep.Pattern)
		r := e.call(t, ep.Method, path, nil)
		if r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotFound && strings.Contains(string(r.body), "no such path") {
			t.Errorf("%s: the router does not serve it: %d %s", k, r.status, r.body)
		}
	}
	if !seen["HEAD /api/v1/units/:uuid/olx"] || !seen["HEAD /api/v1/blobs/:hash"] {
		t.Error("HEAD routes are missing from Endpoints")
	}
}

// TestUnavailableMessagesSayWhat: a 503 says which part cannot answer and
// none of what the cause names (hosts, users, database names, buckets).
func TestUnavailableMessagesSayWhat(t *testing.T) {
	detail := errors.New("failed to connect to `user=postgres database=secretdb`: 10.0.0.7:5432 bucket-x")
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("pgindex: commit: %w: %w", index.ErrUnavailable, detail), "the index is unavailable"},
		{fmt.Errorf("%w: refs: ping index: %w: %w", ErrNotReady, index.ErrUnavailable, detail), "not ready: the index is unavailable"},
		{fmt.Errorf("%w: refs: ping blob store: %w: %w", ErrNotReady, refs.ErrBlobStoreUnavailable, detail), "not ready: the blob store is unavailable"},
		{fmt.Errorf("cas: open: %w: %w", context.DeadlineExceeded, detail), "the blob store is unavailable"},
		{fmt.Errorf("cas: put: %w: %w", syscall.ENOSPC, detail), "out of space"},
		{fmt.Errorf("%w: blob being deleted: %w", refs.ErrRetry, detail), "send the request again"},
		// A PostgreSQL connection dropped mid-answer (a server restart):
		// the index's fault, not the request's.
		{fmt.Errorf("pgindex: commit: %w: %w", index.ErrUnavailable, io.ErrUnexpectedEOF), "the index is unavailable"},
	} {
		got := errorOf(c.err)
		if got.Status != http.StatusServiceUnavailable || !strings.Contains(got.Message, c.want) {
			t.Errorf("%v → %d %q, want 503 saying %q", c.err, got.Status, got.Message, c.want)
		}
		for _, s := range []string{"postgres", "secretdb", "10.0.0.7", "bucket-x"} {
			if strings.Contains(got.Message, s) {
				t.Errorf("%v → message %q shows %q", c.err, got.Message, s)
			}
		}
	}
}
