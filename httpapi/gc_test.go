package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/gc"
)

// walkGate holds a sweep in its walk of the blob store until released.
type walkGate struct {
	gc.Blobs
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *walkGate) Walk(ctx context.Context, fn func(cas.Info) error) error {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return g.Blobs.Walk(ctx, fn)
}

// lateGC is the API's GC, set once the test's stores exist.
type lateGC struct{ *gc.Collector }

// TestGCOutlivesItsRequest: a client (or a load balancer) that stops
// waiting for POST /api/v1/gc does not stop the sweep halfway: it finishes
// and stores its report.
func TestGCOutlivesItsRequest(t *testing.T) {
	g := &lateGC{}
	e := newEnv(t, envOptions{api: Options{GC: g}})
	gate := &walkGate{Blobs: e.blobs, entered: make(chan struct{}), release: make(chan struct{})}
	g.Collector = gc.New(e.idx, gate, gc.Options{MaxDeleteShare: 1})
	defer g.Close()

	data := []byte("an unreferenced blob the detached sweep collects")
	h := cas.Sum(data)
	req, _ := http.NewRequest(http.MethodPut, e.URL+"/api/v1/blobs/"+h.String(), bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob: %v %v", resp, err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/api/v1/gc", strings.NewReader(`{"grace": "0s"}`))
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case <-gate.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the sweep never reached its walk")
	}
	cancel()
	if err := <-answered; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	close(gate.release)

	page, err := g.Runs(context.Background(), 1, "")
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("runs: %+v, %v", page, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	rep, err := g.Wait(wctx, page.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != gc.StatusSucceeded || rep.BlobsDeleted != 1 {
		t.Fatalf("the sweep whose request was cancelled: status %s, %d blobs deleted, error %q", rep.Status, rep.BlobsDeleted, rep.Error)
	}
}
