package dirstore_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/castest"
	"github.com/blockstore/blockstore/cas/dirstore"
)

func TestConformance(t *testing.T) {
	castest.Run(t, func(t *testing.T) cas.Backend { return open(t, t.TempDir()) })
}

// TestConformanceDirect runs the suite with O_DIRECT from the second MiB
// of every blob on, so that its sizes cross the chunk and block boundaries
// of direct writes too.
func TestConformanceDirect(t *testing.T) {
	castest.Run(t, func(t *testing.T) cas.Backend {
		s, err := dirstore.Open(t.TempDir(), dirstore.Options{DirectFrom: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func BenchmarkBackend(b *testing.B) {
	castest.Bench(b, func(b *testing.B) cas.Backend { return open(b, b.TempDir()) })
}

func open(tb testing.TB, dir string) *dirstore.Store {
	tb.Helper()
	s, err := dirstore.Open(dir, dirstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newStore(t *testing.T) (*cas.Store, *dirstore.Store) {
	t.Helper()
	d := open(t, t.TempDir())
	s := cas.New(d, cas.Options{})
	t.Cleanup(func() { s.Close() })
	return s, d
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptionDetected(t *testing.T) {
	ctx := context.Background()
	s, d := newStore(t)
	small, err := s.Put(ctx, castest.NewContent(1, 1000), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	large, err := s.Put(ctx, castest.NewContent(2, cas.DefaultVerifyReadsUpTo+1), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, d.Path(small.Hash), 500)
	flipByte(t, d.Path(large.Hash), large.Size-1)

	if _, err := s.Open(ctx, small.Hash); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("open a corrupt small blob: %v, want ErrHashMismatch", err)
	}
	r, err := s.Open(ctx, large.Hash)
	if err != nil {
		t.Fatalf("open a corrupt large blob: %v (it fails at the end, not here)", err)
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("read a corrupt large blob: %v, want ErrHashMismatch", err)
	}
	if n != large.Size-1 {
		t.Errorf("read %d bytes before the mismatch, want all but the last of %d", n, large.Size)
	}
	if _, err := s.ReadAll(ctx, large.Hash, large.Size); !errors.Is(err, cas.ErrHashMismatch) {
		t.Errorf("read all of a corrupt blob: %v, want ErrHashMismatch", err)
	}
}

func TestLayoutAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := cas.New(open(t, dir), cas.Options{})
	info, err := s.Put(ctx, strings.NewReader("hello, blocks"), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := info.Hash.String()
	path := filepath.Join(dir, x[0:2], x[2:4], x)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the blob is not at %s: %v", path, err)
	}
	if st.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %v, want read-only", st.Mode())
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp holds %d files after a commit", len(left))
	}
	s.Close()

	s2 := cas.New(open(t, dir), cas.Options{})
	defer s2.Close()
	b, err := s2.ReadAll(ctx, info.Hash, 100)
	if err != nil || string(b) != "hello, blocks" {
		t.Errorf("after reopening: %q, %v", b, err)
	}
}

func TestCleanTemp(t *testing.T) {
	ctx := context.Background()
	s, d := newStore(t)
	tmp := filepath.Join(d.Dir(), "tmp")
	old := filepath.Join(tmp, "put-old.tmp")
	fresh := filepath.Join(tmp, "put-fresh.tmp")
	if err := os.WriteFile(old, make([]byte, 300), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fresh, make([]byte, 20), 0o600); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	if items, n, err := s.CleanTemp(ctx, time.Hour); err != nil || items != 1 || n != 300 {
		t.Errorf("clean older than 1h: %d items, %d bytes, %v; want 1, 300", items, n, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh temp file is gone: %v", err)
	}
	if items, n, err := s.CleanTemp(ctx, 0); err != nil || items != 1 || n != 20 {
		t.Errorf("clean all: %d items, %d bytes, %v; want 1, 20", items, n, err)
	}
}

func TestWalkSkipsWhatIsNotABlob(t *testing.T) {
	ctx := context.Background()
	s, d := newStore(t)
	info, err := s.Put(ctx, strings.NewReader("the only blob"), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := info.Hash.String()
	other := cas.Sum([]byte("other")).String()
	shard := filepath.Join(d.Dir(), x[0:2], x[2:4])
	for _, p := range []string{
		filepath.Join(d.Dir(), "tmp", "put-1.tmp"),
		filepath.Join(d.Dir(), "README"),
		filepath.Join(shard, "notahash"),
		filepath.Join(shard, strings.ToUpper(x)),
		filepath.Join(shard, other), // a hash in the wrong shard
	} {
		if err := os.WriteFile(p, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(d.Dir(), "zz", "00"), filepath.Join(d.Dir(), "AB", "cd"), filepath.Join(shard, "sub")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var seen []cas.Info
	if err := s.Walk(ctx, func(i cas.Info) error { seen = append(seen, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Hash != info.Hash || seen[0].Size != info.Size {
		t.Errorf("walk: %+v, want only %s", seen, info.Hash)
	}
}

func TestDeleteLastBlobOfShard(t *testing.T) {
	ctx := context.Background()
	s, d := newStore(t)
	info, err := s.Put(ctx, strings.NewReader("alone in its shard"), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, info.Hash); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Dir(d.Path(info.Hash))); err != nil || !st.IsDir() {
		t.Errorf("the empty shard should stay: %v", err)
	}
	if _, err := s.Put(ctx, strings.NewReader("alone in its shard"), cas.PutOptions{}); err != nil {
		t.Fatalf("put into the emptied shard: %v", err)
	}
	if _, err := s.Stat(ctx, info.Hash); err != nil {
		t.Errorf("stat: %v", err)
	}
}

func TestNoSync(t *testing.T) {
	ctx := context.Background()
	d, err := dirstore.Open(t.TempDir(), dirstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := cas.New(d, cas.Options{})
	defer s.Close()
	info, err := s.Put(ctx, strings.NewReader("quick"), cas.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadAll(ctx, info.Hash, 10); err != nil || string(b) != "quick" {
		t.Errorf("read: %q, %v", b, err)
	}
}

func TestOpenRejectsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dirstore.Open(f, dirstore.Options{}); err == nil {
		t.Errorf("open over a file succeeded")
	}
}

func TestCorruption(t *testing.T) {
	castest.RunCorruption(t, func(t *testing.T) cas.Backend { return open(t, t.TempDir()) },
		func(t *testing.T, b cas.Backend, h cas.Hash, at int64) { flipByte(t, b.(*dirstore.Store).Path(h), at) })
}
