package castest

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/blockstore/blockstore/cas"
)

// BenchSizes are the blob sizes Bench measures.
var BenchSizes = []int64{1 << 20, 256 << 20}

// Bench measures a backend through cas.Store: Put (hash learned while
// streaming), PutKnown (hash given in advance, as PUT by hash) and Get (Open
// and a verified sequential read), for each of BenchSizes. Each put writes
// new bytes; the bytes are generated on the fly and deleted after the run.
// open returns a fresh, empty backend; Bench closes it.
func Bench(b *testing.B, open func(b *testing.B) cas.Backend) {
	for _, size := range BenchSizes {
		name := sizeName(size)
		b.Run("Put/"+name, func(b *testing.B) { benchPut(b, open, size, false) })
		b.Run("PutKnown/"+name, func(b *testing.B) { benchPut(b, open, size, true) })
		b.Run("Get/"+name, func(b *testing.B) { benchGet(b, open, size) })
	}
}

func sizeName(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

func benchStore(b *testing.B, open func(b *testing.B) cas.Backend) *cas.Store {
	s := cas.New(open(b), cas.Options{})
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchPut(b *testing.B, open func(b *testing.B) cas.Backend, size int64, known bool) {
	ctx := context.Background()
	s := benchStore(b, open)
	var hashes []cas.Hash
	b.Cleanup(func() {
		if err := s.DeleteMany(ctx, hashes); err != nil {
			b.Errorf("delete: %v", err)
		}
	})
	// The contents and (when known) their hashes are prepared untimed.
	contents := make([]*Content, b.N)
	wants := make([]cas.Hash, b.N)
	for i := range contents {
		contents[i] = NewContent(uint64(1000+i), size)
		if known {
			wants[i] = contents[i].Hash()
		}
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var opt cas.PutOptions
		if known {
			opt.Expected = &wants[i]
		}
		info, err := s.Put(ctx, contents[i], opt)
		if err != nil {
			b.Fatalf("put: %v", err)
		}
		hashes = append(hashes, info.Hash)
	}
	b.StopTimer()
}

func benchGet(b *testing.B, open func(b *testing.B) cas.Backend, size int64) {
	ctx := context.Background()
	s := benchStore(b, open)
	info, err := s.Put(ctx, NewContent(999, size), cas.PutOptions{})
	if err != nil {
		b.Fatalf("put: %v", err)
	}
	b.Cleanup(func() { _ = s.Delete(ctx, info.Hash) })
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := s.Open(ctx, info.Hash)
		if err != nil {
			b.Fatalf("open: %v", err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
		r.Close()
		if err != nil || n != size {
			b.Fatalf("read: %d bytes, %v", n, err)
		}
	}
}
