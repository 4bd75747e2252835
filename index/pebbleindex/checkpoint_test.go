package pebbleindex

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// checkpointAsset writes an asset over a registered blob and returns it.
func checkpointAsset(t *testing.T, s *Store, col uuid.UUID, name string) index.Asset {
	t.Helper()
	ctx := context.Background()
	h := cas.Sum([]byte(name))
	_, tk, err := s.BeginBlob(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishBlob(ctx, h, int64(len(name)), tk); err != nil {
		t.Fatal(err)
	}
	var a index.Asset
	err = s.Update(ctx, func(tx index.Tx) error {
		var err error
		a, err = tx.CreateAsset(index.NewAsset{Collection: col, Name: name, MediaType: "text/plain", Hash: h})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func createCollection(t *testing.T, s *Store, name string) uuid.UUID {
	t.Helper()
	var c index.Collection
	err := s.Update(context.Background(), func(tx index.Tx) error {
		var err error
		c, err = tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: name}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// TestCheckpoint: a checkpoint holds what was committed before it and
// nothing after, opens as an index of its own, and leaves the store
// serving.
func TestCheckpoint(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	col := createCollection(t, s, "c")
	before := checkpointAsset(t, s, col, "before")

	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := s.Checkpoint(ctx, dir); err != nil {
		t.Fatal(err)
	}
	after := checkpointAsset(t, s, col, "after")
	if err := s.Checkpoint(ctx, dir); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Checkpoint into an existing directory: %v, want an error wrapping os.ErrExist", err)
	}

	c := openDir(t, dir)
	got, err := c.Asset(ctx, index.Ref{ID: before.ID})
	if err != nil || got.Hash != before.Hash {
		t.Fatalf("asset written before the checkpoint: %+v, %v", got, err)
	}
	if _, err := c.Asset(ctx, index.Ref{ID: after.ID}); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("asset written after the checkpoint: %v, want not found", err)
	}
	b, err := c.Blob(ctx, before.Hash)
	if err != nil || b.State != index.BlobLive {
		t.Fatalf("blob row in the checkpoint: %+v, %v", b, err)
	}
	var refs []cas.Hash
	if err := c.ReferencedHashes(ctx, func(h cas.Hash) error { refs = append(refs, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0] != before.Hash {
		t.Fatalf("referenced hashes of the checkpoint: %v, want [%s]", refs, before.Hash)
	}
	// The store still serves, and the checkpoint is its own database.
	if _, err := s.Asset(ctx, index.Ref{ID: after.ID}); err != nil {
		t.Fatal(err)
	}
	checkpointAsset(t, c, col, "only in the copy")
	if _, err := s.Blob(ctx, cas.Sum([]byte("only in the copy"))); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a write to the checkpoint reached the store: %v", err)
	}
}

// TestCheckpointUnderLoad: while writers commit, every commit acknowledged
// before Checkpoint was called is in the checkpoint.
func TestCheckpointUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := openTest(t, Options{})

	var (
		mu    sync.Mutex
		acked []uuid.UUID
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000 && !stop.Load() && ctx.Err() == nil; i++ {
				var c index.Collection
				err := s.Update(ctx, func(tx index.Tx) error {
					var err error
					c, err = tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: fmt.Sprintf("w%d-%d", w, i)}})
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, c.ID)
				mu.Unlock()
			}
		}()
	}
	// Let the writers get going.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
	}
	mu.Lock()
	before := append([]uuid.UUID(nil), acked...)
	mu.Unlock()
	dir := filepath.Join(t.TempDir(), "checkpoint")
	err := s.Checkpoint(ctx, dir)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 {
		t.Fatal("no commit was acknowledged before the checkpoint")
	}
	c := openDir(t, dir)
	for _, id := range before {
		if _, err := c.Collection(ctx, id, 0); err != nil {
			t.Fatalf("collection %s acknowledged before the checkpoint: %v", id, err)
		}
	}
	t.Logf("%d commits acknowledged before the checkpoint, %d in all", len(before), len(acked))
}

func TestCheckpointRefusals(t *testing.T) {
	s := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := s.Checkpoint(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("Checkpoint with a cancelled context: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a cancelled checkpoint left %s: %v", dir, err)
	}
	closed, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := closed.Checkpoint(context.Background(), dir); !errors.Is(err, index.ErrClosed) {
		t.Fatalf("Checkpoint of a closed store: %v, want index.ErrClosed", err)
	}
}

// openDir opens the index in dir, closed at the end of the test.
func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
