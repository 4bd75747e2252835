package indextest

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// BenchVersionsEnv names the environment variable that sets how many
// versions the ReferencedHashes benchmark loads (default 100,000; 10,000
// with -short; the figure is for 1,000,000).
const BenchVersionsEnv = "BLOCKSTORE_BENCH_VERSIONS"

// RunBenchmarks runs the index benchmarks against the stores open returns
// (opened with the wall clock):
//
//   - CommitUnitVersion/writers=1 and /writers=8: durable commits of unit
//     versions (a small OLX hash, 5 links), each writer on its own unit;
//     reports commits/s.
//   - ReferencedHashes/versions=N: streams the referenced hashes of N unit
//     versions with N distinct hashes; reports seconds per stream and the
//     peak heap while streaming (peak-heap-MiB, sampled with
//     runtime.ReadMemStats).
func RunBenchmarks(b *testing.B, open func(b *testing.B, opt index.Options) index.Store) {
	b.Run("CommitUnitVersion", func(b *testing.B) {
		s := open(b, index.Options{})
		for _, writers := range []int{1, 8} {
			b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
				benchCommit(b, s, writers)
			})
		}
	})
	b.Run("ReferencedHashes", func(b *testing.B) {
		n := benchVersions(b)
		s := open(b, index.Options{})
		loadVersions(b, s, n)
		b.Run("versions="+strconv.Itoa(n), func(b *testing.B) {
			benchReferencedHashes(b, s, n)
		})
	})
}

func benchVersions(b *testing.B) int {
	if v := os.Getenv(BenchVersionsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive integer", BenchVersionsEnv, v)
		}
		return n
	}
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// benchHash is the hash of the i-th synthetic OLX document of a benchmark.
func benchHash(prefix string, i int) cas.Hash {
	return cas.Sum(fmt.Appendf(nil, "<vertical id=\"%s-%d\"/>", prefix, i))
}

// registerBlobs makes hs live blobs of a few KB, through BlobLoader when the
// store has it, else BeginBlob and FinishBlob from several goroutines.
func registerBlobs(tb testing.TB, s index.Store, hs []cas.Hash) {
	tb.Helper()
	ctx := context.Background()
	if l, ok := s.(BlobLoader); ok {
		const batch = 10_000
		for i := 0; i < len(hs); i += batch {
			blobs := make([]index.Blob, 0, batch)
			for _, h := range hs[i:min(i+batch, len(hs))] {
				blobs = append(blobs, index.Blob{Hash: h, Size: 2048})
			}
			if err := l.LoadBlobs(ctx, blobs); err != nil {
				tb.Fatalf("LoadBlobs: %v", err)
			}
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(hs) {
					return
				}
				_, tk, err := s.BeginBlob(ctx, hs[i])
				if err != nil {
					errs <- err
					return
				}
				if err := s.FinishBlob(ctx, hs[i], 2048, tk); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("register blobs: %v", err)
	}
}

// benchTargets creates a collection and 5 link targets (3 assets, 2 units).
func benchTargets(b *testing.B, s index.Store, prefix string) (uuid.UUID, []index.Link) {
	b.Helper()
	ctx := context.Background()
	hs := []cas.Hash{benchHash(prefix+"-target", 0)}
	registerBlobs(b, s, hs)
	var coll uuid.UUID
	var links []index.Link
	err := s.Update(ctx, func(tx index.Tx) error {
		links = links[:0]
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: prefix}})
		if err != nil {
			return err
		}
		coll = c.ID
		for range 3 {
			a, err := tx.CreateAsset(index.NewAsset{Collection: c.ID, MediaType: "image/png", Hash: hs[0]})
			if err != nil {
				return err
			}
			links = append(links, index.Link{Target: a.ID, Kind: index.KindAsset})
		}
		for i := range 2 {
			u, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: hs[0]})
			if err != nil {
				return err
			}
			links = append(links, index.Link{Target: u.ID, Kind: index.KindUnit, Version: int64(i)})
		}
		return nil
	})
	if err != nil {
		b.Fatalf("create link targets: %v", err)
	}
	return coll, links
}

func benchCommit(b *testing.B, s index.Store, writers int) {
	ctx := context.Background()
	prefix := fmt.Sprintf("commit-w%d-n%d-%s", writers, b.N, uuid.NewString())
	coll, links := benchTargets(b, s, prefix)
	// Each writer alternates between two blobs: every commit differs from
	// the latest version, so every commit creates one.
	hs := make([]cas.Hash, 2*writers)
	for i := range hs {
		hs[i] = benchHash(prefix, i)
	}
	registerBlobs(b, s, hs)
	units := make([]uuid.UUID, writers)
	err := s.Update(ctx, func(tx index.Tx) error {
		for w := range writers {
			u, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: hs[2*w], Links: links})
			if err != nil {
				return err
			}
			units[w] = u.ID
		}
		return nil
	})
	if err != nil {
		b.Fatalf("create units: %v", err)
	}

	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := 1; ; i++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				ls := links
				err := s.Update(ctx, func(tx index.Tx) error {
					_, _, err := tx.CommitUnit(units[w], index.UnitChange{Hash: hs[2*w+i%2], Links: &ls}, false)
					return err
				})
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("CommitUnit: %v", err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
}

// loadVersions stores n unit versions with n distinct live hashes: units of
// 100 versions each, committed in transactions of 1,000 versions.
func loadVersions(b *testing.B, s index.Store, n int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	hs := make([]cas.Hash, n)
	for i := range hs {
		hs[i] = benchHash("referenced", i)
	}
	registerBlobs(b, s, hs)
	var coll uuid.UUID
	err := s.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "referenced"}})
		coll = c.ID
		return err
	})
	if err != nil {
		b.Fatalf("create collection: %v", err)
	}
	// Loaders work on disjoint ranges of units in parallel (PostgreSQL
	// overlaps their round trips; Pebble groups their commits).
	const perUnit, perTx, loaders = 100, 1000, 4
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range loaders {
		wg.Go(func() {
			for {
				i := int(next.Add(perTx)) - perTx
				if i >= n || failed.Load() != nil {
					return
				}
				err := s.Update(ctx, func(tx index.Tx) error {
					var unit uuid.UUID
					for j := i; j < min(i+perTx, n); j++ {
						if j%perUnit == 0 {
							u, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: hs[j]})
							if err != nil {
								return err
							}
							unit = u.ID
							continue
						}
						if _, _, err := tx.CommitUnit(unit, index.UnitChange{Hash: hs[j]}, false); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					failed.CompareAndSwap(nil, fmt.Errorf("load versions %d..: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d versions in %s", n, time.Since(start).Round(time.Millisecond))
}

func benchReferencedHashes(b *testing.B, s index.Store, n int) {
	ctx := context.Background()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		count := 0
		var prev cas.Hash
		err := s.ReferencedHashes(ctx, func(h cas.Hash) error {
			if count > 0 && string(h[:]) <= string(prev[:]) {
				return fmt.Errorf("hash %s after %s: not ascending and distinct", h, prev)
			}
			prev = h
			count++
			return nil
		})
		if err != nil {
			b.Fatalf("ReferencedHashes: %v", err)
		}
		if count != n {
			b.Fatalf("ReferencedHashes streamed %d hashes, want %d", count, n)
		}
		// One more sample at the end: the garbage a stream leaves counts.
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > peak.Load() {
			peak.Store(m.HeapAlloc)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	<-sampled
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/stream")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(base.HeapAlloc)/(1<<20), "base-heap-MiB")
}
