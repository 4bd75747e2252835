package dirstore

import (
	"bytes"
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
)

// TestLargeWritesDirect: past DirectFrom a large blob is written with
// O_DIRECT (where the filesystem has it), from the flusher, and its bytes,
// tail included, read back whole.
func TestLargeWritesDirect(t *testing.T) {
	for _, opt := range []Options{{}, {DirectFrom: -1}} {
		s, err := Open(t.TempDir(), opt)
		if err != nil {
			t.Fatal(err)
		}
		testLargeWrite(t, s)
	}
}

func testLargeWrite(t *testing.T, s *Store) {
	ctx := context.Background()
	data := castest.NewContent(1, DefaultDirectFrom+3*chunkSize+4096+17).Bytes()
	h := cas.Sum(data)
	cw, err := s.Create(ctx, cas.CreateOptions{Known: &h, Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	w := cw.(*writer)
	defer w.Cancel()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 300_001)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if w.jobs == nil {
		t.Fatal("a large blob was written without the flusher")
	}
	if err := w.stopFlusher(); err != nil {
		t.Fatal(err)
	}
	switch {
	case s.directFrom < 0 && w.isDirect():
		t.Error("a large blob was written with O_DIRECT when told never to")
	case s.directFrom >= 0 && !w.isDirect() && directSupported(t, s.tmp):
		t.Error("a large blob was written through the page cache on a filesystem with O_DIRECT")
	}
	if err := w.Commit(ctx, h, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s.Path(h))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(data))
	}
	if w.held != 0 {
		t.Errorf("%d chunks not given back", w.held)
	}
}

func directSupported(t *testing.T, dir string) bool {
	f, err := os.CreateTemp(dir, "probe-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	g, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return false
	}
	g.Close()
	return true
}
