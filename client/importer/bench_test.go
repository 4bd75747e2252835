package importer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testserver"
)

// Benchmarks of the importer over loopback, against the embedded server
// (Pebble index, blob directory, both fsyncing as in production).
//
//	BLOCKSTORE_BENCH_IMPORT_MIB=2048 go test -run '^$' -bench 'BLAKE3|DiskWrite|ImportNew' -benchtime 1x ./importer/
//	BLOCKSTORE_BENCH_FULL=1 go test -run '^$' -bench 'Reimport|LocalReadHash' -benchtime 3x ./importer/
//
// ImportNew imports a tree of new files: a few large and many small
// (BLOCKSTORE_BENCH_IMPORT_MIB in total, 64 by default). Reimport imports a
// fixed tree again (16 × 64 MiB and 1,024 × 1 MiB with BLOCKSTORE_BENCH_FULL=1;
// 16 × 4 MiB and 1,024 × 64 KiB by default) and reports its time beside
// reading and hashing the same tree locally with the same number of
// workers, page cache warm.

// benchJobs is the number of workers: one per core.
func benchJobs() int { return runtime.NumCPU() }

type treeSpec struct {
	large, largeSize int
	small, smallSize int
}

func (s treeSpec) total() int64 {
	return int64(s.large)*int64(s.largeSize) + int64(s.small)*int64(s.smallSize)
}

func importSpec() treeSpec {
	mib := 64
	if v, err := strconv.Atoi(os.Getenv("BLOCKSTORE_BENCH_IMPORT_MIB")); err == nil && v >= 8 {
		mib = v
	}
	total := mib << 20
	// Three quarters in 4 large files, a quarter in 256 KiB files.
	return treeSpec{large: 4, largeSize: total * 3 / 4 / 4, small: total / 4 / (256 << 10), smallSize: 256 << 10}
}

func reimportSpec() treeSpec {
	if os.Getenv("BLOCKSTORE_BENCH_FULL") == "1" {
		return treeSpec{large: 16, largeSize: 64 << 20, small: 1024, smallSize: 1 << 20}
	}
	return treeSpec{large: 16, largeSize: 4 << 20, small: 1024, smallSize: 64 << 10}
}

var (
	treesMu sync.Mutex
	trees   = map[string]string{}
)

// benchTree writes (once per process and spec) a tree of random files.
// The trees live under a temporary directory removed by the last
// benchmark's cleanup.
func benchTree(b *testing.B, tag string, s treeSpec) string {
	b.Helper()
	treesMu.Lock()
	defer treesMu.Unlock()
	key := fmt.Sprintf("%s-%+v", tag, s)
	if dir, ok := trees[key]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "blockstore-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		treesMu.Lock()
		delete(trees, key)
		treesMu.Unlock()
		os.RemoveAll(dir)
	})
	seed := [32]byte{byte(len(tag)), byte(s.large), byte(s.small)}
	rng := rand.NewChaCha8(seed)
	write := func(name string, size int) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rng, int64(size)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	for i := range s.large {
		write(fmt.Sprintf("video/large-%02d.mp4", i), s.largeSize)
	}
	for i := range s.small {
		write(fmt.Sprintf("static/%02d/small-%04d.bin", i%32, i), s.smallSize)
	}
	trees[key] = dir
	return dir
}

// localReadHash reads and hashes every file under dir with jobs workers,
// each file on one worker: what an import cannot beat.
func localReadHash(b *testing.B, dir string, jobs int) int64 {
	b.Helper()
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	work := make(chan string)
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			buf := make([]byte, hashBufferSize)
			var n int64
			for p := range work {
				f, err := os.Open(p)
				if err != nil {
					b.Error(err)
					continue
				}
				h := cas.NewHasher()
				k, err := io.CopyBuffer(h, onlyReader{f}, buf)
				f.Close()
				if err != nil {
					b.Error(err)
				}
				_ = h.Sum()
				n += k
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	return total
}

// BenchmarkBLAKE3 is the raw hash rate of one core over memory.
func BenchmarkBLAKE3(b *testing.B) {
	buf := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{1}).Read(buf)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		cas.Sum(buf)
	}
}

// BenchmarkDiskWrite writes the ImportNew tree's bytes to files and fsyncs
// them: the disk's write rate beside which an import stores its blobs.
func BenchmarkDiskWrite(b *testing.B) {
	s := importSpec()
	buf := make([]byte, hashBufferSize)
	rand.NewChaCha8([32]byte{2}).Read(buf)
	b.SetBytes(s.total())
	for b.Loop() {
		dir := b.TempDir()
		write := func(name string, size int) {
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				b.Fatal(err)
			}
			for size > 0 {
				k := min(size, len(buf))
				if _, err := f.Write(buf[:k]); err != nil {
					b.Fatal(err)
				}
				size -= k
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		for i := range s.large {
			write(fmt.Sprintf("l%d", i), s.largeSize)
		}
		for i := range s.small {
			write(fmt.Sprintf("s%d", i), s.smallSize)
		}
	}
}

// BenchmarkImportNew imports a tree of files the server has never seen,
// into a fresh server each time.
func BenchmarkImportNew(b *testing.B) {
	s := importSpec()
	dir := benchTree(b, "new", s)
	localReadHash(b, dir, benchJobs()) // warm the page cache
	b.SetBytes(s.total())
	var uploaded int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv := testserver.Start(b)
		c := srv.Client(b, client.Options{})
		b.StartTimer()
		sum, err := Import(context.Background(), c, dir, ImportOptions{NewCollection: &client.NewCollection{Name: "bench"}, Jobs: benchJobs()})
		if err != nil {
			b.Fatal(err)
		}
		uploaded += sum.BytesUploaded
		if sum.BytesUploaded != s.total() || sum.EntitiesCreated != int64(s.large+s.small) {
			b.Fatalf("summary = %+v", sum)
		}
	}
	b.ReportMetric(float64(uploaded)/float64(b.N)/(1<<20), "MiB-uploaded/op")
	b.ReportMetric(float64(s.large+s.small), "files/op")
}

// BenchmarkReimport imports a tree the server already holds entirely: it
// must upload nothing, and reports its time as a multiple of a local read
// and hash of the same tree with the same workers ("x-local").
func BenchmarkReimport(b *testing.B) {
	s := reimportSpec()
	dir := benchTree(b, "re", s)
	srv := testserver.Start(b)
	c := srv.Client(b, client.Options{})
	opt := ImportOptions{NewCollection: &client.NewCollection{Name: "bench"}, Jobs: benchJobs()}
	if _, err := Import(context.Background(), c, dir, opt); err != nil {
		b.Fatal(err)
	}
	localReadHash(b, dir, benchJobs()) // warm the page cache
	b.SetBytes(s.total())
	var reimport, local time.Duration
	var uploaded int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		sum, err := Import(context.Background(), c, dir, opt)
		reimport += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		uploaded += sum.BytesUploaded
		if sum.BytesUploaded != 0 || sum.EntitiesCreated != 0 || sum.VersionsAdded != 0 {
			b.Fatalf("re-import changed something: %+v", sum)
		}
		b.StopTimer()
		start = time.Now()
		if n := localReadHash(b, dir, benchJobs()); n != s.total() {
			b.Fatalf("read %d bytes, want %d", n, s.total())
		}
		local += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(uploaded), "bytes-uploaded")
	b.ReportMetric(reimport.Seconds()/local.Seconds(), "x-local")
	b.ReportMetric(local.Seconds()/float64(b.N), "local-s/op")
}

// BenchmarkLocalReadHash reads and hashes the Reimport tree locally with
// one worker per core, page cache warm.
func BenchmarkLocalReadHash(b *testing.B) {
	s := reimportSpec()
	dir := benchTree(b, "re", s)
	localReadHash(b, dir, benchJobs())
	b.SetBytes(s.total())
	for b.Loop() {
		localReadHash(b, dir, benchJobs())
	}
}
