package faults

import (
	"context"
	"errors"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/refs"
)

// TestDiskFullTmpfs runs the real binary with its blob directory on an 8
// MiB tmpfs (the index stays on the ordinary disk), fills it, and checks
// that uploads fail with 503 and a message that says why, leave nothing
// behind, and work again once the filesystem grows. It needs the
// privilege to mount; without it, TestDiskFullInjected covers the same
// ground through a backend that runs out of space.
func TestDiskFullTmpfs(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	blobs := filepath.Join(data, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", blobs).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): TestDiskFullInjected covers a full disk instead", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", blobs).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", blobs, err, out)
		}
	})
	s := startServer(t, nil, "--data", data)
	diskFull(t, s.URL, blobs, func() {
		if out, err := exec.Command("mount", "-o", "remount,size=32m", blobs).CombinedOutput(); err != nil {
			t.Fatalf("grow the tmpfs: %v: %s", err, out)
		}
	})
	s.stop(t)
	verifyStores(t, deployment{args: []string{"--data", data}})
}

// TestDiskFullInjected does the same in process, over a directory store
// wrapped in a backend whose writes fail with ENOSPC once a byte budget is
// spent, as a full filesystem's do.
func TestDiskFullInjected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idx, err := pebbleindex.Open(filepath.Join(dir, "index"), pebbleindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	ds, err := dirstore.Open(filepath.Join(dir, "blobs"), dirstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Backend: ds, free: 7 << 20, dir: ds.Dir()}
	store := cas.New(disk, cas.Options{})
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(httpapi.New(refs.New(idx, store, refs.Options{}), httpapi.Options{}))
	t.Cleanup(srv.Close)
	diskFull(t, srv.URL, ds.Dir(), func() { disk.grow(32 << 20) })
	if disk.used() != disk.stored(t) {
		t.Errorf("the fake disk counts %d bytes used, the blob files hold %d: a failed write kept its bytes", disk.used(), disk.stored(t))
	}
}

// diskFull fills the blob directory under a server at url, checks how
// uploads fail and what they leave, calls grow to make room, and checks
// that the same uploads then succeed.
func diskFull(t *testing.T, url, blobsDir string, grow func()) {
	ctx := context.Background()
	c := newClient(t, url)
	j := newJournal()
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "disk-full"})
	if err != nil {
		t.Fatal(err)
	}
	// About 5 MiB of the 7-8 available.
	for i := range 5 {
		b := content{seed: uint64(100 + i), size: 1 << 20}.bytes()
		h := cas.Sum(b)
		if _, err := c.PutBlob(ctx, h, client.BytesBody(b)); err != nil {
			t.Fatalf("filling the disk, blob %d: %v", i, err)
		}
		j.blob(h, int64(len(b)))
	}
	a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "before"},
		client.Content{Body: client.BytesBody(content{seed: 200, size: 64 << 10}.bytes())})
	if err != nil {
		t.Fatal(err)
	}
	j.asset(a)
	before := blobFiles(t, blobsDir)

	// Uploads larger than what is left: by hash, by POST, as an asset.
	big := content{seed: 300, size: 4 << 20}.bytes()
	bigHash := cas.Sum(big)
	bigAsset := content{seed: 301, size: 4 << 20}.bytes()
	attempts := []struct {
		what string
		do   func() error
	}{
		{"PUT /blobs/{hash}", func() error {
			_, err := c.PutBlob(ctx, bigHash, client.BytesBody(big))
			return err
		}},
		{"POST /blobs", func() error {
			_, err := c.PostBlob(ctx, client.BytesBody(big))
			return err
		}},
		{"POST /assets", func() error {
			_, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "too-big"}, client.Content{Body: client.BytesBody(bigAsset)})
			return err
		}},
	}
	for _, at := range attempts {
		err := at.do()
		var ae *client.Error
		switch {
		case err == nil:
			t.Errorf("%s of 4 MiB on a full disk succeeded", at.what)
		case !errors.As(err, &ae):
			t.Errorf("%s on a full disk: %v, want a 503 answer (not a broken connection)", at.what, err)
		case ae.Status != 503 || ae.Code != "unavailable" || !strings.Contains(ae.Message, "out of space"):
			t.Errorf("%s on a full disk: %d %s %q, want 503 unavailable saying the store is out of space", at.what, ae.Status, ae.Code, ae.Message)
		default:
			t.Logf("%s on a full disk: %d %s: %s", at.what, ae.Status, ae.Code, ae.Message)
		}
	}

	// Nothing left behind: no temporary file, no new blob, no asset, and
	// the hash is not stored (HEAD 404, listed missing).
	if tmp := tmpFiles(t, blobsDir); len(tmp) > 0 {
		t.Errorf("temporary files left after the failed uploads: %v", tmp)
	}
	if after := blobFiles(t, blobsDir); !equalSets(before, after) {
		t.Errorf("blob files changed by failed uploads: %d before, %d after", len(before), len(after))
	}
	if _, err := c.StatBlob(ctx, bigHash); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("HEAD of the blob that did not fit: %v, want 404", err)
	}
	if missing, err := c.MissingBlobs(ctx, []cas.Hash{bigHash}); err != nil || len(missing) != 1 {
		t.Errorf("missing blobs after the failed upload: %v %v, want it missing", missing, err)
	}
	page, err := c.CollectionAssets(ctx, col.UUID, client.ListOptions{})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("assets after the failed upload: %d (%v), want the 1 created before", len(page.Items), err)
	}

	// What fits still goes in.
	small := content{seed: 400, size: 16 << 10}.bytes()
	if _, err := c.PutBlob(ctx, cas.Sum(small), client.BytesBody(small)); err != nil {
		t.Errorf("a small blob on the nearly full disk: %v", err)
	} else {
		j.blob(cas.Sum(small), int64(len(small)))
	}
	olx := "<vertical>written while the disk was nearly full</vertical>"
	if u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, OLX: olx}); err != nil {
		t.Errorf("a unit on the nearly full disk: %v", err)
	} else {
		j.unit(u, olx)
	}

	// Room again: the same uploads succeed (no registry row left pending
	// blocks them) and read back.
	grow()
	if created, err := c.PutBlob(ctx, bigHash, client.BytesBody(big)); err != nil || !created {
		t.Errorf("PUT of the blob that did not fit, once there is room: created %v, %v", created, err)
	} else {
		j.blob(bigHash, int64(len(big)))
	}
	if a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "too-big"}, client.Content{Body: client.BytesBody(bigAsset)}); err != nil {
		t.Errorf("the asset that did not fit, once there is room: %v", err)
	} else {
		j.asset(a)
	}
	checkJournal(ctx, t, c, j)
	if tmp := tmpFiles(t, blobsDir); len(tmp) > 0 {
		t.Errorf("temporary files left at the end: %v", tmp)
	}
}

// blobFiles lists the blob files under dir (not tmp/), name → size.
func blobFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "tmp" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[d.Name()] = info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func equalSets(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// fullDisk is a cas.Backend whose writes draw on a byte budget, like a
// filesystem with that much free space: a write past it writes what fits
// and fails with ENOSPC; a cancelled upload gives its bytes back, as
// removing its temporary file would.
type fullDisk struct {
	cas.Backend
	dir string

	mu   sync.Mutex
	free int64
	use  int64 // bytes of committed blobs and uploads under way
}

var (
	_ cas.TempCleaner = (*fullDisk)(nil)
	_ cas.Pinger      = (*fullDisk)(nil)
)

func (d *fullDisk) grow(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free += n
}

func (d *fullDisk) used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.use
}

// stored is the bytes of the blob files the directory holds.
func (d *fullDisk) stored(t *testing.T) int64 {
	var n int64
	for _, size := range blobFiles(t, d.dir) {
		n += size
	}
	return n
}

// take reserves up to n bytes and returns how many it got.
func (d *fullDisk) take(n int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	got := min(n, d.free)
	d.free -= got
	d.use += got
	return got
}

func (d *fullDisk) give(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free += n
	d.use -= n
}

func (d *fullDisk) Create(ctx context.Context, opt cas.CreateOptions) (cas.Writer, error) {
	w, err := d.Backend.Create(ctx, opt)
	if err != nil {
		return nil, err
	}
	return &fullWriter{Writer: w, d: d}, nil
}

func (d *fullDisk) CleanTemp(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	return d.Backend.(cas.TempCleaner).CleanTemp(ctx, olderThan)
}

func (d *fullDisk) Ping(ctx context.Context) error { return d.Backend.(cas.Pinger).Ping(ctx) }

// fullWriter is one upload on a fullDisk.
type fullWriter struct {
	cas.Writer
	d         *fullDisk
	n         int64 // bytes taken from the budget
	committed bool
}

func (w *fullWriter) Write(p []byte) (int, error) {
	got := w.d.take(int64(len(p)))
	w.n += got
	n, err := w.Writer.Write(p[:got])
	if err == nil && got < int64(len(p)) {
		err = &fs.PathError{Op: "write", Path: "tmp/put-*.tmp", Err: syscall.ENOSPC}
	}
	return n, err
}

func (w *fullWriter) Commit(ctx context.Context, h cas.Hash, size int64) error {
	err := w.Writer.Commit(ctx, h, size)
	if err == nil {
		w.committed = true
	}
	return err
}

func (w *fullWriter) Cancel() error {
	if !w.committed && w.n > 0 {
		w.d.give(w.n)
		w.n = 0
	}
	return w.Writer.Cancel()
}
