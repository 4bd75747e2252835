package gc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/testenv"
)

// BenchBlobsEnv sets how many blobs (and versions) BenchmarkSweep loads:
// default 100,000 (10,000 with -short); the figure is 1,000,000.
const BenchBlobsEnv = "BLOCKSTORE_BENCH_BLOBS"

func benchBlobs(b *testing.B) int {
	if v := os.Getenv(BenchBlobsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 40 {
			b.Fatalf("%s=%q: want an integer of at least 40", BenchBlobsEnv, v)
		}
		return n
	}
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// BenchmarkSweep measures one sweep over N blobs and N versions of which 10%
// of the blobs are garbage, on the embedded deployment (Pebble) and on
// PostgreSQL, both with the directory blob store. Run it once per size:
//
//	BLOCKSTORE_BENCH_BLOBS=1000000 go test -run '^$' -bench BenchmarkSweep -benchtime 1x -timeout 2h ./gc/
//
// It reports the first sweep's seconds (sweep-s), the resident memory
// before it (rss-before-MiB, after setup's garbage is freed) and the peak
// resident memory during it (peak-rss-MiB: /proc/self/status VmHWM, reset
// through /proc/self/clear_refs before the sweep). Later iterations, if
// any, sweep a store with nothing left to delete.
func BenchmarkSweep(b *testing.B) {
	n := benchBlobs(b)
	b.Run(fmt.Sprintf("embedded/blobs=%d", n), func(b *testing.B) {
		benchSweep(b, n, func(b *testing.B, opt index.Options) index.Store {
			s, err := pebbleindex.Open(b.TempDir(), pebbleindex.Options{Options: opt, NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		})
	})
	b.Run(fmt.Sprintf("postgres/blobs=%d", n), func(b *testing.B) {
		benchSweep(b, n, func(b *testing.B, opt index.Options) index.Store {
			url := testenv.NewDatabase(b)
			s, err := pgindex.Open(context.Background(), url, opt)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// blobLoader is indextest.BlobLoader: both engines load registry rows in bulk.
type blobLoader interface {
	LoadBlobs(ctx context.Context, blobs []index.Blob) error
}

func benchData(kind string, i int) []byte { return []byte(fmt.Sprintf("bench %s blob %d", kind, i)) }

// benchSweep loads the fixture and measures sweeps.
//
// With G = N/10 garbage blobs and R = N - G retained ones:
//   - R assets whose v1 names a retained blob r_i;
//   - E = G/4 of them (flag set) have v1 naming a garbage blob x_i and v2
//     naming r_i: retention deletes v1, and x_i with it;
//   - X = N - R - E more versions (v2 of other assets naming r_{i+1}), so
//     that there are N versions;
//   - U = G/2 registered blobs that nothing names, and S = G - E - U stray
//     bytes with no registry row.
//
// Every lease is older than the grace when the sweep runs.
func benchSweep(b *testing.B, n int, open func(b *testing.B, opt index.Options) index.Store) {
	ctx := context.Background()
	clk := indextest.NewClock(time.Now())
	idx := open(b, index.Options{Now: clk.Now})
	loader, ok := idx.(blobLoader)
	if !ok {
		b.Fatalf("%T cannot load blobs in bulk", idx)
	}
	dir, err := dirstore.Open(b.TempDir(), dirstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	store := cas.New(dir, cas.Options{})
	b.Cleanup(func() { store.Close() })

	g := n / 10
	r := n - g
	e, u := g/4, g/2
	s := g - e - u
	x := n - r - e
	setup := time.Now()

	// Bytes, written straight to their files (set-up only: what a put
	// leaves, without its temporary file, rename and fsyncs), by a few
	// goroutines.
	type item struct {
		kind string
		i    int
	}
	work := make(chan item, 1024)
	var wg sync.WaitGroup
	var putErr error
	var errOnce sync.Once
	var shards sync.Map
	for range 4 {
		wg.Go(func() {
			for it := range work {
				d := benchData(it.kind, it.i)
				p := dir.Path(cas.Sum(d))
				sd := filepath.Dir(p)
				if _, ok := shards.Load(sd); !ok {
					if err := os.MkdirAll(sd, 0o755); err != nil {
						errOnce.Do(func() { putErr = err })
					}
					shards.Store(sd, true)
				}
				if err := os.WriteFile(p, d, 0o444); err != nil {
					errOnce.Do(func() { putErr = err })
				}
			}
		})
	}
	for i := 0; i < r; i++ {
		work <- item{"r", i}
	}
	for i := 0; i < e; i++ {
		work <- item{"x", i}
	}
	for i := 0; i < u; i++ {
		work <- item{"u", i}
	}
	for i := 0; i < s; i++ {
		work <- item{"s", i}
	}
	close(work)
	wg.Wait()
	if putErr != nil {
		b.Fatal(putErr)
	}
	if n, err := countBlobs(ctx, store); err != nil || n != r+e+u+s {
		b.Fatalf("blob store holds %d blobs (%v), want %d", n, err, r+e+u+s)
	}
	b.Logf("bytes written: %s", time.Since(setup).Round(time.Millisecond))
	// Registry rows of the retained, expiring and unreferenced blobs.
	const batch = 10_000
	rows := make([]index.Blob, 0, batch)
	load := func(kind string, count int) {
		for i := 0; i < count; i++ {
			d := benchData(kind, i)
			rows = append(rows, index.Blob{Hash: cas.Sum(d), Size: int64(len(d))})
			if len(rows) == batch || i == count-1 {
				if err := loader.LoadBlobs(ctx, rows); err != nil {
					b.Fatal(err)
				}
				rows = rows[:0]
			}
		}
	}
	load("r", r)
	load("x", e)
	load("u", u)

	b.Logf("rows loaded: %s", time.Since(setup).Round(time.Millisecond))
	// Versions: R assets, E of them with two versions, X extra versions.
	var coll uuid.UUID
	if err := idx.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "bench"}})
		coll = c.ID
		return err
	}); err != nil {
		b.Fatal(err)
	}
	hashOf := func(kind string, i int) cas.Hash { return cas.Sum(benchData(kind, i)) }
	const perTx = 500
	var mu sync.Mutex
	var updErr error
	jobs := make(chan [2]int, 16)
	for range 4 {
		wg.Go(func() {
			for j := range jobs {
				err := idx.Update(ctx, func(tx index.Tx) error {
					for i := j[0]; i < j[1]; i++ {
						first := hashOf("r", i)
						if i < e {
							first = hashOf("x", i)
						}
						a, err := tx.CreateAsset(index.NewAsset{Collection: coll, MediaType: "application/octet-stream", Hash: first, GarbageCollect: i < e})
						if err != nil {
							return err
						}
						if i < e {
							if _, _, err := tx.CommitAsset(a.ID, index.AssetChange{Hash: hashOf("r", i)}, false); err != nil {
								return err
							}
						} else if i < e+x {
							if _, _, err := tx.CommitAsset(a.ID, index.AssetChange{Hash: hashOf("r", (i+1)%r)}, false); err != nil {
								return err
							}
						}
					}
					return nil
				})
				if err != nil {
					mu.Lock()
					updErr = err
					mu.Unlock()
				}
			}
		})
	}
	for i := 0; i < r; i += perTx {
		jobs <- [2]int{i, min(i+perTx, r)}
	}
	close(jobs)
	wg.Wait()
	if updErr != nil {
		b.Fatal(updErr)
	}
	b.Logf("set-up of %d blobs and %d versions: %s", n, r+e+x, time.Since(setup).Round(time.Second))

	clk.Advance(800 * time.Hour) // past retention and grace
	c := New(idx, store, Options{Now: clk.Now, TempDir: b.TempDir()})

	runtime.GC()
	debug.FreeOSMemory()
	rssBefore := procStatusKB(b, "VmRSS")
	resetPeakRSS(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rep, err := c.Sweep(ctx, Request{})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.StopTimer()
			secs := time.Since(start).Seconds()
			peak := procStatusKB(b, "VmHWM")
			if rep.BlobsDeleted != int64(g) || rep.VersionsDeleted != int64(e) || rep.BlobsKept != int64(r) {
				b.Fatalf("sweep deleted %d blobs (want %d) and %d versions (want %d), kept %d (want %d)",
					rep.BlobsDeleted, g, rep.VersionsDeleted, e, rep.BlobsKept, r)
			}
			b.ReportMetric(secs, "sweep-s")
			b.ReportMetric(float64(rssBefore)/1024, "rss-before-MiB")
			b.ReportMetric(float64(peak)/1024, "peak-rss-MiB")
			var phases []string
			for _, p := range rep.Phases {
				phases = append(phases, fmt.Sprintf("%s %.2fs", p.Name, p.Seconds))
			}
			b.Logf("sweep of %d blobs, %d versions: %.1fs (%s); RSS %d MiB before, peak %d MiB",
				n, r+e+x, secs, strings.Join(phases, ", "), rssBefore/1024, peak/1024)
			b.StartTimer()
		}
	}
}

func countBlobs(ctx context.Context, store *cas.Store) (int, error) {
	n := 0
	err := store.Walk(ctx, func(cas.Info) error { n++; return nil })
	return n, err
}

// procStatusKB reads a field of /proc/self/status in KiB (0 where absent).
func procStatusKB(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			b.Fatalf("parse %s: %v", field, err)
		}
		return kb
	}
	return 0
}

// resetPeakRSS makes VmHWM restart from the current RSS (Linux 4.0+), so
// that the peak measured is the sweep's, not the set-up's.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v): peak-rss-MiB includes the set-up", err)
	}
}
