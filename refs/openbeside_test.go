package refs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
)

// countingBackend counts the opens of a backend and the closes of what
// they returned; missOnce makes the next open of a hash answer not found
// (an open that ran before the upload committed).
type countingBackend struct {
	cas.Backend
	mu       sync.Mutex
	opens    int
	closes   int
	missOnce map[cas.Hash]bool
}

func (b *countingBackend) Open(ctx context.Context, h cas.Hash) (cas.Reader, error) {
	b.mu.Lock()
	miss := b.missOnce[h]
	delete(b.missOnce, h)
	b.mu.Unlock()
	if miss {
		return nil, cas.ErrNotFound
	}
	r, err := b.Backend.Open(ctx, h)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.opens++
	b.mu.Unlock()
	return &countedReader{Reader: r, b: b}, nil
}

type countedReader struct {
	cas.Reader
	b    *countingBackend
	once sync.Once
}

func (r *countedReader) Close() error {
	r.once.Do(func() {
		r.b.mu.Lock()
		r.b.closes++
		r.b.mu.Unlock()
	})
	return r.Reader.Close()
}

// allClosed waits a little for every reader opened to be closed.
func (b *countingBackend) allClosed(t *testing.T) {
	t.Helper()
	for range 200 {
		b.mu.Lock()
		ok := b.opens == b.closes
		b.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("%d readers opened, %d closed", b.opens, b.closes)
}

// TestOpenBeside: with the blob store's open beside the index lookup, the
// registry still decides (a blob not live is not found, whatever the blob
// store holds), what was opened for nothing is closed, and an open that
// missed bytes committed meanwhile is asked again.
func TestOpenBeside(t *testing.T) {
	ctx := context.Background()
	idx, err := pebbleindex.Open("", pebbleindex.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := dirstore.Open(t.TempDir(), dirstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	backend := &countingBackend{Backend: dir, missOnce: map[cas.Hash]bool{}}
	blobs := cas.New(backend, cas.Options{})
	t.Cleanup(func() {
		idx.Close()
		blobs.Close()
	})
	svc := New(idx, blobs, Options{OpenBeside: true, InlineMaxBytes: 1024})

	read := func(h cas.Hash) ([]byte, error) {
		r, err := svc.OpenBlob(ctx, h)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	for _, size := range []int{100, 300 << 10, 2 << 20} { // verified at open, and while read
		data := bytes.Repeat([]byte{byte(size)}, size)
		h := cas.Sum(data)
		if _, _, err := svc.PutBlob(ctx, h, bytes.NewReader(data), int64(size)); err != nil {
			t.Fatal(err)
		}
		if got, err := read(h); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes, %v", size, len(got), err)
		}
		backend.mu.Lock()
		backend.missOnce[h] = true
		backend.mu.Unlock()
		if got, err := read(h); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes, the open beside missed them: read back %d bytes, %v", size, len(got), err)
		}
	}

	// In the blob store but not in the registry, and pending: not found.
	stray := []byte("stray bytes, never registered")
	sh := cas.Sum(stray)
	if _, err := blobs.Put(ctx, bytes.NewReader(stray), cas.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := read(sh); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("a blob the registry does not know: %v, want not found", err)
	}
	if st, _, err := idx.BeginBlob(ctx, sh); err != nil || st == index.BlobLive {
		t.Fatalf("begin: %v %v", st, err)
	}
	if _, err := read(sh); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("a pending blob: %v, want not found", err)
	}
	// Absent everywhere.
	if _, err := read(cas.Sum([]byte("absent"))); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("an absent blob: %v, want not found", err)
	}
	// Inline: served from the index.
	var c index.Collection
	if _, err := svc.CreateCollection(ctx, index.NewCollection{}, Request[index.Collection]{Render: asIs(&c)}); err != nil {
		t.Fatal(err)
	}
	olx := []byte("<problem>inline</problem>")
	if _, err := svc.CreateUnit(ctx, NewUnit{Collection: c.ID, OLX: olx}, Request[index.Unit]{Render: asIs(new(index.Unit))}); err != nil {
		t.Fatal(err)
	}
	svc.cache.remove(cas.Sum(olx))
	if got, err := read(cas.Sum(olx)); err != nil || !bytes.Equal(got, olx) {
		t.Errorf("inline OLX: %q, %v", got, err)
	}
	backend.allClosed(t)
}
