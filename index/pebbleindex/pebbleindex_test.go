package pebbleindex

import (
	"testing"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
)

func TestConformanceOnDisk(t *testing.T) {
	indextest.Run(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, Options{Options: opt})
	})
}

func TestConformanceInMemory(t *testing.T) {
	indextest.Run(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, Options{Options: opt, InMemory: true})
	})
}

func BenchmarkIndex(b *testing.B) {
	indextest.RunBenchmarks(b, func(b *testing.B, opt index.Options) index.Store {
		return openTest(b, Options{Options: opt})
	})
}

// openTest opens a store in a new temporary directory, closed at the end of
// the test.
func openTest(tb testing.TB, opt Options) *Store {
	tb.Helper()
	s, err := Open(tb.TempDir(), opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// BenchmarkIndexNoSync runs the same benchmarks without waiting for WAL
// syncs: the ceiling the writer's own work sets, to compare with the
// durable figures.
func BenchmarkIndexNoSync(b *testing.B) {
	indextest.RunBenchmarks(b, func(b *testing.B, opt index.Options) index.Store {
		return openTest(b, Options{Options: opt, NoSync: true})
	})
}
