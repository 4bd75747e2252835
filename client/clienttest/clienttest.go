// Package clienttest runs a real Blockstore server for tests of code that
// uses package client: the HTTP API of package httpapi over refs, a Pebble
// index in memory and a blob directory in the test's temporary directory,
// on a 127.0.0.1 port. A hook sees (and may answer or refuse) every request,
// to inject faults.
package clienttest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/refs"
)

// Options configure a Server.
type Options struct {
	// NoSync skips fsyncs in the index and the blob directory (benchmarks:
	// the figures then measure the client, not the disk's flushes).
	NoSync bool
	// BlobDir holds the blobs; "" is a directory under tb.TempDir().
	BlobDir string
}

// Server is a running embedded server.
type Server struct {
	// URL is the base URL ("http://127.0.0.1:port").
	URL   string
	Index index.Store
	Blobs *cas.Store
	Refs  *refs.Service
	GC    *gc.Collector

	api  http.Handler
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

// Handler is the API itself, without the hook: a hook may pass a request
// on to it and then do something with the answer.
func (s *Server) Handler() http.Handler { return s.api }

// Start starts a server that lives until tb's cleanup.
func Start(tb testing.TB, opt Options) *Server {
	tb.Helper()
	idx, err := pebbleindex.Open("", pebbleindex.Options{InMemory: true, NoSync: opt.NoSync})
	if err != nil {
		tb.Fatal(err)
	}
	dir := opt.BlobDir
	if dir == "" {
		dir = tb.TempDir()
	}
	backend, err := dirstore.Open(dir, dirstore.Options{NoSync: opt.NoSync})
	if err != nil {
		idx.Close()
		tb.Fatal(err)
	}
	blobs := cas.New(backend, cas.Options{})
	svc := refs.New(idx, blobs, refs.Options{})
	// Test stores are mostly garbage: the mass-delete guard would stop
	// every sweep.
	collector := gc.New(idx, blobs, gc.Options{TempDir: tb.TempDir(), MaxDeleteShare: 1})
	s := &Server{Index: idx, Blobs: blobs, Refs: svc, GC: collector}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	api := httpapi.New(svc, httpapi.Options{
		GC:    collector,
		Extra: []httpapi.Route{{Method: http.MethodGet, Pattern: "/metrics", Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}},
	})
	s.api = api
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		collector.Close()
		idx.Close()
		blobs.Close()
		tb.Fatal(err)
	}
	srv := httpapi.NewServer(l.Addr().String(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		api.ServeHTTP(w, r)
	}), httpapi.ServerOptions{})
	go srv.Serve(l)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		collector.Close()
		idx.Close()
		blobs.Close()
	})
	s.URL = "http://" + l.Addr().String()
	return s
}

// SetHook installs fn in front of the API: it sees every request first and
// returns true when it has answered it itself. nil removes the hook.
func (s *Server) SetHook(fn func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = fn
	s.mu.Unlock()
}

// Client returns a client of the server with opt (short backoffs unless
// opt says otherwise). Its idle connections are closed at tb's cleanup,
// before the server stops: the server's graceful shutdown waits 5 seconds
// for a connection that never sent a request, which Go's transport leaves
// behind when it dials one more connection than it ends up using.
func (s *Server) Client(tb testing.TB, opt client.Options) *client.Client {
	tb.Helper()
	if opt.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		opt.HTTPClient = &http.Client{Transport: t}
		tb.Cleanup(t.CloseIdleConnections)
	}
	if opt.Backoff == 0 {
		opt.Backoff = 5 * time.Millisecond
	}
	if opt.MaxBackoff == 0 {
		opt.MaxBackoff = 50 * time.Millisecond
	}
	c, err := client.New(s.URL, opt)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
