package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockstore/blockstore/cas/s3store"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// deployment opens one kind of App for a test.
type deployment struct {
	name string
	cfg  func(t *testing.T) Config
}

func deployments() []deployment {
	return []deployment{
		{"embedded", func(t *testing.T) Config { return Config{DataDir: filepath.Join(t.TempDir(), "data")} }},
		{"postgres+s3", productionConfig},
	}
}

// productionConfig is a fresh PostgreSQL database and a fresh bucket on
// the package's MinIO server.
func productionConfig(t *testing.T) Config {
	t.Helper()
	url := testenv.NewDatabase(t)
	s3 := testenv.MinIO(t)
	return Config{DatabaseURL: url, S3: s3Config(s3, "t-"+randomHex(6))}
}

func s3Config(s *testenv.S3Server, bucket string) s3store.Config {
	return s3store.Config{
		Endpoint: s.Endpoint, Bucket: bucket, AccessKey: s.AccessKey, SecretKey: s.SecretKey,
		Insecure: true, CreateBucket: true,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// openApp opens cfg for t and closes it when t ends.
func openApp(t *testing.T, cfg Config) *App {
	t.Helper()
	if os.Getenv("BLOCKSTORE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Describe(), err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a
}

// serve serves a's API on a loopback port until t ends.
func serve(t *testing.T, a *App) string {
	t.Helper()
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestEmbeddedKeepsRoomForTheIndex: the blob directory keeps space free
// for the Pebble index on the same filesystem; on PostgreSQL it need not.
func TestEmbeddedKeepsRoomForTheIndex(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "index"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := keepFreeForIndex(Config{DataDir: data}, filepath.Join(data, "blobs")); got <= 0 {
		t.Fatalf("embedded keep-free = %d, want > 0", got)
	}
	if got := keepFreeForIndex(Config{DataDir: data, DatabaseURL: "postgres://x"}, filepath.Join(data, "blobs")); got != 0 {
		t.Fatalf("keep-free with the index in PostgreSQL = %d, want 0", got)
	}
}
