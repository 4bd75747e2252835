package dirstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// storeIDFile, at the root of the blob directory, holds the store id that
// binds the directory to its index (DESIGN.md, invariant 6). It is outside
// the shard directories, which are all that Walk lists and Delete touches,
// and outside tmp, which is all that CleanTemp empties: no sweep, verify or
// cleanup ever sees it.
const storeIDFile = "STORE-ID"

// StoreID returns the store id recorded in the directory, "" when none is.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, storeIDFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("dirstore: read store id: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
}

// SetStoreID records id in the directory, replacing any id recorded before;
// "" removes the record. The file is written as a blob is (temp file in
// tmp, fsync, rename, fsync the directory), so a crash leaves the old id or
// the new one, never a torn one.
func (s *Store) SetStoreID(ctx context.Context, id string) (err error) {
	final := filepath.Join(s.dir, storeIDFile)
	if id == "" {
		if err := os.Remove(final); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dirstore: remove store id: %w", err)
		}
		return s.syncDir(s.dir)
	}
	f, err := os.CreateTemp(s.tmp, "store-id-*.tmp")
	if err != nil {
		return fmt.Errorf("dirstore: write store id: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.WriteString(id + "\n"); err != nil {
		return fmt.Errorf("dirstore: write store id: %w", err)
	}
	if !s.noSync {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("dirstore: write store id: %w", err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("dirstore: write store id: %w", err)
	}
	if err = os.Rename(f.Name(), final); err != nil {
		return fmt.Errorf("dirstore: write store id: %w", err)
	}
	return s.syncDir(s.dir)
}
