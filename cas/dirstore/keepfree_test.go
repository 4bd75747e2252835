package dirstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/blockstore/blockstore/cas"
)

// TestKeepFree: an upload that would leave less than KeepFree bytes on the
// filesystem fails with ENOSPC and leaves nothing behind; without the
// reserve the same upload succeeds.
func TestKeepFree(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{KeepFree: 1 << 62}) // more than any disk has
	if err != nil {
		t.Fatal(err)
	}
	s := cas.New(b, cas.Options{})
	defer s.Close()
	ctx := context.Background()
	for _, size := range []int{10, 9 << 20} { // checked at Commit, and while streaming
		data := bytes.Repeat([]byte("k"), size)
		_, err := s.Put(ctx, bytes.NewReader(data), cas.PutOptions{})
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("put of %d bytes above the reserve: %v, want ENOSPC", size, err)
		}
		if _, err := s.Stat(ctx, cas.Sum(data)); !errors.Is(err, cas.ErrNotFound) {
			t.Fatalf("the refused blob is there: %v", err)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(dir, tmpDirName)); len(left) != 0 {
		t.Fatalf("temp files left: %d", len(left))
	}
	b2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2 := cas.New(b2, cas.Options{})
	defer s2.Close()
	if _, err := s2.Put(ctx, bytes.NewReader([]byte("fits")), cas.PutOptions{}); err != nil {
		t.Fatalf("put without a reserve: %v", err)
	}
	if got := DefaultKeepFree(1 << 40); got != 256<<20 {
		t.Fatalf("DefaultKeepFree(1 TiB) = %d", got)
	}
	if got := DefaultKeepFree(100 << 20); got != 2<<20 {
		t.Fatalf("DefaultKeepFree(100 MiB) = %d", got)
	}
}
