package httpapi

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/refs"
)

// env is one embedded service (Pebble in memory, blobs in a temporary
// directory) behind NewServer on a loopback port.
type env struct {
	URL   string
	svc   *refs.Service
	idx   index.Store
	blobs *cas.Store
	dir   string
}

type envOptions struct {
	// onDisk keeps the index in a temporary directory (as `blockstore
	// serve` does) rather than in memory.
	onDisk bool
	api    Options
	refs   refs.Options
	server ServerOptions
	index  index.Options
	// backend, when set, wraps the blob store's backend.
	backend func(cas.Backend) cas.Backend
}

func newEnv(tb testing.TB, opt envOptions) *env {
	tb.Helper()
	idxDir := ""
	if opt.onDisk {
		idxDir = tb.TempDir()
	}
	idx, err := pebbleindex.Open(idxDir, pebbleindex.Options{Options: opt.index, InMemory: !opt.onDisk})
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	backend, err := dirstore.Open(dir, dirstore.Options{})
	if err != nil {
		idx.Close()
		tb.Fatal(err)
	}
	var b cas.Backend = backend
	if opt.backend != nil {
		b = opt.backend(backend)
	}
	blobs := cas.New(b, cas.Options{})
	svc := refs.New(idx, blobs, opt.refs)
	if opt.api.Extra == nil {
		// What `blockstore serve` plugs into the hook: metrics.
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector())
		opt.api.Extra = []Route{{Method: http.MethodGet, Pattern: "/metrics", Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}}
	}
	if opt.api.Changes == nil {
		opt.api.Changes = FeedChanges(idx)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(l.Addr().String(), New(svc, opt.api), opt.server)
	go srv.Serve(l)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		idx.Close()
		blobs.Close()
	})
	return &env{URL: "http://" + l.Addr().String(), svc: svc, idx: idx, blobs: blobs, dir: dir}
}
