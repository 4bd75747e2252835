package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
)

// The blobs of a backup are written and synced by cas/dirstore; these are
// the few other files (index files, the manifest) and the directories that
// hold them.

// writeFile creates p, which must not exist, with the bytes of r (at most
// limit of them), syncs it and returns their hash and count. On error p is
// removed.
func writeFile(p string, r io.Reader, limit int64) (_ cas.Hash, n int64, err error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return cas.Hash{}, 0, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return cas.Hash{}, 0, err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(p)
		}
	}()
	h := cas.NewHasher()
	n, err = io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cas.Hash{}, n, err
	}
	return h.Sum(), n, nil
}

// syncDirs syncs root and every directory under it (their files were synced
// as they were written), and root's parent, which holds root's entry.
func syncDirs(root string) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return dirstore.SyncDir(p)
	})
	if err != nil {
		return err
	}
	return dirstore.SyncDir(filepath.Dir(root))
}

// emptyDir says whether dir is absent (true) or an empty directory (false);
// anything else is an error wrapping ErrNotEmpty.
func emptyDir(dir string) (absent bool, err error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if len(names) > 0 {
		return false, fmt.Errorf("%w: %s holds %s", ErrNotEmpty, dir, names[0])
	}
	return false, nil
}
