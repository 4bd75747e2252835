package pebbleindex

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// syncFS counts the data syncs of the files it creates (the WAL's) and
// times them, so the commit benchmark can say how its commits/s compare
// with what the disk's syncs allow.
type syncFS struct {
	vfs.FS
	syncs atomic.Int64
	nanos atomic.Int64
}

func (fs *syncFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, fs: fs}, nil
}

func (fs *syncFS) ReuseForWrite(old, name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, cat)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, fs: fs}, nil
}

type syncFile struct {
	vfs.File
	fs *syncFS
}

func (f *syncFile) time(sync func() error) error {
	start := time.Now()
	err := sync()
	f.fs.nanos.Add(int64(time.Since(start)))
	f.fs.syncs.Add(1)
	return err
}

func (f *syncFile) Sync() error     { return f.time(f.File.Sync) }
func (f *syncFile) SyncData() error { return f.time(f.File.SyncData) }

// BenchmarkGroupCommit commits unit versions as indextest's
// CommitUnitVersion does (each writer its own unit, a small OLX hash, 5
// links, every commit durable) and reports, beside commits/s, the syncs the
// WAL made per commit and their mean latency: 1/latency is the disk's
// limit for one writer, commits-per-sync what grouping adds.
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 8, 32} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			fs := &syncFS{FS: vfs.Default}
			s := openTest(b, Options{fs: fs})
			ctx := context.Background()
			units, links, hs := commitFixture(b, s, writers)
			syncs0, nanos0 := fs.syncs.Load(), fs.nanos.Load()
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				wg.Go(func() {
					for i := 1; next.Add(1) <= int64(b.N); i++ {
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
				b.Fatal(err)
			}
			syncs, nanos := fs.syncs.Load()-syncs0, fs.nanos.Load()-nanos0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			if syncs > 0 {
				b.ReportMetric(float64(b.N)/float64(syncs), "commits/sync")
				b.ReportMetric(float64(nanos)/float64(syncs)/1e3, "µs/sync")
			}
		})
	}
}

// commitFixture creates a collection, 5 link targets (3 assets, 2 units),
// one unit per writer and two live blobs per writer.
func commitFixture(b *testing.B, s *Store, writers int) ([]uuid.UUID, []index.Link, []cas.Hash) {
	b.Helper()
	ctx := context.Background()
	hs := make([]cas.Hash, 2*writers+1)
	blobs := make([]index.Blob, len(hs))
	for i := range hs {
		hs[i] = cas.Sum(fmt.Appendf(nil, "<vertical id=\"%d\"/>", i))
		blobs[i] = index.Blob{Hash: hs[i], Size: 2048}
	}
	if err := s.LoadBlobs(ctx, blobs); err != nil {
		b.Fatal(err)
	}
	target := hs[len(hs)-1]
	var links []index.Link
	units := make([]uuid.UUID, writers)
	err := s.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "bench"}})
		if err != nil {
			return err
		}
		for range 3 {
			a, err := tx.CreateAsset(index.NewAsset{Collection: c.ID, MediaType: "image/png", Hash: target})
			if err != nil {
				return err
			}
			links = append(links, index.Link{Target: a.ID})
		}
		for i := range 2 {
			u, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: target})
			if err != nil {
				return err
			}
			links = append(links, index.Link{Target: u.ID, Version: int64(i)})
		}
		for w := range writers {
			u, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: hs[2*w], Links: links})
			if err != nil {
				return err
			}
			units[w] = u.ID
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return units, links, hs
}

// TestBeginBlobNeedsNoSyncOfItsOwn: a new pending row is applied without
// a WAL sync of its own (FinishBlob's covers it), while a lease on a row
// that exists is synced before BeginBlob returns.
func TestBeginBlobNeedsNoSyncOfItsOwn(t *testing.T) {
	fs := &syncFS{FS: vfs.Default}
	s, err := Open(t.TempDir(), Options{fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	h := cas.Sum([]byte("a blob"))
	before := fs.syncs.Load()
	state, ticket, err := s.BeginBlob(ctx, h)
	if err != nil || state != index.BlobPending {
		t.Fatalf("BeginBlob: %v, %v", state, err)
	}
	if n := fs.syncs.Load() - before; n != 0 {
		t.Fatalf("BeginBlob of a new row synced the WAL %d times, want 0", n)
	}
	if err := s.FinishBlob(ctx, h, 6, ticket); err != nil {
		t.Fatal(err)
	}
	if n := fs.syncs.Load() - before; n == 0 {
		t.Fatal("FinishBlob did not sync the WAL")
	}
	before = fs.syncs.Load()
	if state, _, err := s.BeginBlob(ctx, h); err != nil || state != index.BlobLive {
		t.Fatalf("BeginBlob of a live blob: %v, %v", state, err)
	}
	if n := fs.syncs.Load() - before; n == 0 {
		t.Fatal("the lease of a live blob was not synced")
	}
}
