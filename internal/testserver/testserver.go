// Package testserver runs the server that `blockstore serve` runs, for the
// tests of code that talks to it over HTTP (package client and the
// importer): app.Open on an embedded deployment in the test's temporary
// directory, and its handler on a 127.0.0.1 port.
//
// Faults are injected in front of the handler, never inside the services: a
// hook sees every request first and may answer it itself, or pass it on to
// the real handler and then change what the client sees. So a test's server
// is always the one operators run, only with a wrapper around it.
package testserver

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/internal/app"
)

// Server is a running embedded server. It lives until the cleanup of the
// test that started it.
type Server struct {
	// URL is the base URL ("http://127.0.0.1:port").
	URL string

	api  http.Handler
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

// Start opens an embedded deployment under tb.TempDir() and serves it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	a, err := app.Open(context.Background(), app.Config{
		DataDir: filepath.Join(tb.TempDir(), "data"),
		// Test stores are mostly garbage: the mass-delete guard would stop
		// every sweep the client tests ask for.
		GCMaxDeleteShare: 1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{api: a.Handler()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		tb.Fatal(err)
	}
	srv := httpapi.NewServer(l.Addr().String(), http.HandlerFunc(s.serveHTTP), httpapi.ServerOptions{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-served
		if err := a.Close(); err != nil {
			tb.Errorf("testserver: close: %v", err)
		}
	})
	s.URL = "http://" + l.Addr().String()
	return s
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	s.api.ServeHTTP(w, r)
}

// Handler is the server's handler without the hook: a hook may pass a
// request on to it and then do something with the answer.
func (s *Server) Handler() http.Handler { return s.api }

// SetHook installs fn in front of the handler: it sees every request first
// and returns true when it has answered it itself. nil removes the hook.
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
