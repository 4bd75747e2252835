package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/app"
	"github.com/blockstore/blockstore/refs"
)

// exposureWarnings says what is risky about where and how the server listens.
func exposureWarnings(addr net.Addr, tokens, tls bool) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return nil
	}
	switch {
	case !tokens:
		return []string{"listening beyond loopback without --auth-token: anyone who reaches " + addr.String() + " can read, write and delete"}
	case !tls:
		return []string{"listening beyond loopback with tokens but without --tls-cert: tokens and content cross the network in clear text"}
	}
	return nil
}

// startCPUProfile profiles the process into path until the returned func is
// called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [flags]")
	sf := addStoreFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (loopback by default: Blockstore belongs on a private network)")
	maxUpload := fs.Int64("max-upload-bytes", 0, "largest blob or asset body accepted, in bytes (0: unlimited)")
	cacheBytes := fs.Int64("cache-bytes", 0, "memory for the cache of small blobs such as OLX, in bytes (0: 64 MiB; negative: off)")
	inlineMax := fs.Int64("inline-max-bytes", refs.DefaultInlineMaxBytes, "largest OLX kept in the index rather than the blob store, in bytes (0: none; larger blobs and those stored before stay where they are)")
	noLatestCache := fs.Bool("no-latest-cache", false, "on PostgreSQL, do not keep the latest version of units read by uuid in memory (a read answered from it first reads the change feed, so it reflects every commit acknowledged before it); every OLX read then asks the database")
	gcInterval := fs.Duration("gc-interval", 0, "run a garbage collection sweep this often (0: never; e.g. 24h)")
	changesRetention := fs.Duration("changes-retention", index.DefaultChangeRetention, "how long the change feed keeps its history (at least 168h, 7 days); sweeps prune older changes")
	shutdownTimeout := fs.PositiveDuration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for requests in flight")
	authToken := fs.Secret("auth-token", "require 'Authorization: Bearer TOKEN' on every route but /healthz, /readyz and /metrics")
	readToken := fs.Secret("read-token", "a read-only token: GET and HEAD, POST /api/v1/resolve and /api/v1/blobs/missing")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM), with --tls-key")
	tlsKey := fs.String("tls-key", "", "the certificate's private key (PEM)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile (pprof) of the whole run to this file when the server stops: for diagnosing, not for production")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %q", fs.Args())}
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg := sf.config()
	if cfg.GCMaxDeleteShare, err = sf.gcMaxDeleteShare(); err != nil {
		return err
	}
	cfg.MaxUploadBytes = *maxUpload
	cfg.CacheBytes = *cacheBytes
	cfg.InlineMaxBytes = *inlineMax
	cfg.NoLatestCache = *noLatestCache
	if *inlineMax <= 0 {
		cfg.InlineMaxBytes = -1 // the flag's 0 is off; the Config's 0 is the default
	}
	if *changesRetention < index.DefaultChangeRetention {
		return usageError{fmt.Errorf("--changes-retention %s: the change feed keeps at least %s", *changesRetention, index.DefaultChangeRetention)}
	}
	cfg.ChangeRetention = *changesRetention
	cfg.Logger = log
	cfg.Tokens = app.Tokens{Write: *authToken, Read: *readToken}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usageError{fmt.Errorf("--tls-cert and --tls-key go together")}
	}
	if *readToken != "" && *authToken == "" {
		return usageError{fmt.Errorf("--read-token needs --auth-token: without it every client could write")}
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	a, err := app.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := httpapi.NewServer(*addr, a.Handler(), httpapi.ServerOptions{Logger: log})
	served := make(chan error, 1)
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
		go func() { served <- srv.ServeTLS(ln, *tlsCert, *tlsKey) }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	log.Info("listening", "addr", scheme+"://"+ln.Addr().String(), "deployment", cfg.Describe(), "version", version)
	for _, w := range exposureWarnings(ln.Addr(), cfg.Tokens.Enabled(), *tlsCert != "") {
		log.Warn(w)
	}

	if *gcInterval > 0 {
		go a.GC.Schedule(ctx, *gcInterval)
		log.Info("garbage collection scheduled", "interval", gcInterval.String(),
			"retention", cfg.GCRetention.String(), "grace", cfg.GCGrace.String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests in flight", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
