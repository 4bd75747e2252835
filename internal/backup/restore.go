package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index/pebbleindex"
)

// Target is where Restore brings a backup back: an embedded deployment's
// data directory, whose index lives in DataDir/index and whose blobs live in
// DataDir/blobs unless Blobs is set.
type Target struct {
	// DataDir must be absent or empty (else an error wrapping ErrNotEmpty).
	DataDir string
	// Blobs, when set, receives the blobs instead of DataDir/blobs (the
	// deployment's bucket). Restore does not close it.
	Blobs cas.Backend
	// Jobs is how many blobs are restored at once; 0 means 4.
	Jobs int
}

// Report says what Restore brought back.
type Report struct {
	IndexFiles int   `json:"index_files"`
	IndexBytes int64 `json:"index_bytes"`
	Blobs      int64 `json:"blobs"`
	BlobBytes  int64 `json:"blob_bytes"`
}

// Restore brings the backup in dir back into t. A backup without its
// manifest, or whose files differ from it, is an error wrapping
// ErrIncomplete, and the data directory is left as it was.
func Restore(ctx context.Context, dir string, t Target) (rep Report, err error) {
	if t.DataDir == "" {
		return rep, errors.New("backup: restore: no data directory")
	}
	if t.Jobs <= 0 {
		t.Jobs = 4
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return rep, err
	}
	target, err := filepath.Abs(t.DataDir)
	if err != nil {
		return rep, fmt.Errorf("backup: restore: %w", err)
	}
	if _, err := emptyDir(target); err != nil {
		return rep, fmt.Errorf("backup: restore into %s: %w", target, err)
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return rep, fmt.Errorf("backup: restore: %w", err)
	}
	staging, err := os.MkdirTemp(parent, filepath.Base(target)+".restoring-")
	if err != nil {
		return rep, fmt.Errorf("backup: restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(staging)
		}
	}()

	// 1. The index files, each checked against the manifest.
	for _, f := range m.IndexFiles {
		if err := copyIndexFile(dir, staging, f); err != nil {
			return rep, err
		}
		rep.IndexFiles++
		rep.IndexBytes += f.Size
	}
	if err := syncDirs(filepath.Join(staging, "index")); err != nil {
		return rep, fmt.Errorf("backup: restore: sync the index: %w", err)
	}

	// 2. The blobs the restored index needs, verified on the way in.
	if rep.Blobs, rep.BlobBytes, err = restoreBlobs(ctx, dir, staging, t); err != nil {
		return rep, err
	}
	if rep.Blobs != m.Blobs || rep.BlobBytes != m.BlobBytes {
		return rep, fmt.Errorf("%w: the index needs %d blobs (%d bytes), the manifest lists %d (%d bytes)",
			ErrIncomplete, rep.Blobs, rep.BlobBytes, m.Blobs, m.BlobBytes)
	}

	// 3. Into place at once. An empty target goes first (rmdir refuses one
	// that has filled up meanwhile); os.Rename does not replace directories.
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("backup: restore into %s: %w", target, err)
	}
	if err := os.Rename(staging, target); err != nil {
		return rep, fmt.Errorf("backup: restore: move the restored deployment into %s (it must be absent or empty): %w", target, err)
	}
	done = true
	if err := dirstore.SyncDir(parent); err != nil {
		return rep, fmt.Errorf("backup: restore: %w", err)
	}
	return rep, nil
}

// copyIndexFile copies one index file of the backup in dir into staging,
// checking its size and hash.
func copyIndexFile(dir, staging string, f File) error {
	src, err := os.Open(filepath.Join(dir, "index", filepath.FromSlash(f.Name)))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: index file %s is missing", ErrIncomplete, f.Name)
	}
	if err != nil {
		return fmt.Errorf("backup: restore: %w", err)
	}
	defer src.Close()
	// One byte more than the manifest says, to see a file that grew.
	sum, n, err := writeFile(filepath.Join(staging, "index", filepath.FromSlash(f.Name)), src, f.Size+1)
	if err != nil {
		return fmt.Errorf("backup: restore: index file %s: %w", f.Name, err)
	}
	if n != f.Size || sum.String() != f.BLAKE3 {
		return fmt.Errorf("%w: index file %s (%d bytes, %s) differs from the manifest (%d bytes, %s)",
			ErrIncomplete, f.Name, n, sum, f.Size, f.BLAKE3)
	}
	return nil
}

// restoreBlobs opens the restored index in staging and puts every blob it
// needs from the backup in dir into t's blob store.
func restoreBlobs(ctx context.Context, dir, staging string, t Target) (blobs, bytes int64, err error) {
	idx, err := pebbleindex.Open(filepath.Join(staging, "index"), pebbleindex.Options{})
	if err != nil {
		return 0, 0, fmt.Errorf("backup: restore: open the restored index: %w", err)
	}
	defer idx.Close()
	backend := t.Blobs
	if backend == nil {
		if backend, err = dirstore.Open(filepath.Join(staging, "blobs"), dirstore.Options{}); err != nil {
			return 0, 0, fmt.Errorf("backup: restore: open the blob directory: %w", err)
		}
	}
	// The store is a view over backend: closing it would close t.Blobs.
	store := cas.New(backend, cas.Options{})
	from := filepath.Join(dir, "blobs")

	var n, total atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan cas.Hash)
	for range t.Jobs {
		g.Go(func() error {
			for h := range work {
				size, err := restoreBlob(gctx, store, from, h)
				if err != nil {
					return err
				}
				n.Add(1)
				total.Add(size)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		return neededBlobs(gctx, idx, func(h cas.Hash) error {
			select {
			case work <- h:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return n.Load(), total.Load(), nil
}

// restoreBlob puts blob h of the backup's blob directory from into store,
// verifying it on the way. The backup is only read: opening it as a
// dirstore would create its temp directory there.
func restoreBlob(ctx context.Context, store *cas.Store, from string, h cas.Hash) (int64, error) {
	x := h.String()
	f, err := os.Open(filepath.Join(from, x[:2], x[2:4], x)) // dirstore's layout
	if errors.Is(err, fs.ErrNotExist) {
		// Backups written before the blob directory was a dirstore kept
		// each blob one level up: blobs/ab/<hash>.
		f, err = os.Open(filepath.Join(from, x[:2], x))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: blob %s, which the index needs, is not in the backup", ErrIncomplete, h)
	}
	if err != nil {
		return 0, fmt.Errorf("backup: restore: blob %s: %w", h, err)
	}
	defer f.Close()
	info, err := store.Put(ctx, f, cas.PutOptions{Expected: &h})
	if errors.Is(err, cas.ErrHashMismatch) {
		return 0, fmt.Errorf("%w: blob %s in the backup is corrupt: %v", ErrIncomplete, h, err)
	}
	if err != nil {
		return 0, fmt.Errorf("backup: restore: %w", err)
	}
	return info.Size, nil
}
