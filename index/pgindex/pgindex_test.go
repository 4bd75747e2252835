package pgindex

import (
	"context"
	"testing"
	"time"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
	"github.com/blockstore/blockstore/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// openTest opens a Store over a fresh database of tb's own.
func openTest(tb testing.TB, opt index.Options) *Store {
	tb.Helper()
	url := testenv.NewDatabase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, url, opt)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	// Registered after NewDatabase's cleanup, so it runs first: the pool is
	// closed before the database is dropped.
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	indextest.Run(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, opt)
	})
}

func BenchmarkIndex(b *testing.B) {
	indextest.RunBenchmarks(b, func(b *testing.B, opt index.Options) index.Store {
		return openTest(b, opt)
	})
}
