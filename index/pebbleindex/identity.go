package pebbleindex

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/blockstore/blockstore/index"
)

// storeIDKey holds the store id that binds this index to its blob store
// (DESIGN.md, invariant 6). It lives in the meta key space, so a checkpoint
// (backup) carries it along with the rest of the index.
var storeIDKey = []byte{pMeta, 's', 't', 'o', 'r', 'e', '-', 'i', 'd'}

var _ index.Identity = (*Store)(nil)

// StoreID implements index.Identity.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	var id string
	err := s.read(ctx, "read store id", func(v *view) error {
		b, _, err := getValue(v.r, storeIDKey)
		id = string(b)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("index: read store id: %w", err)
	}
	return id, nil
}

// BindStoreID implements index.Identity; the writer's turn orders it with
// any other bind.
func (s *Store) BindStoreID(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errors.New("index: bind store id: empty id")
	}
	got := id
	err := s.write(ctx, func(t *tx) error {
		b, ok, err := getValue(t.b, storeIDKey)
		if err != nil {
			return err
		}
		if ok {
			got = string(b)
			return nil
		}
		t.set(storeIDKey, []byte(id))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("index: bind store id: %w", err)
	}
	return got, nil
}

// ReplaceStoreID implements index.Identity.
func (s *Store) ReplaceStoreID(ctx context.Context, id string) error {
	err := s.write(ctx, func(t *tx) error {
		if id == "" {
			t.del(storeIDKey)
		} else {
			t.set(storeIDKey, []byte(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: replace store id: %w", err)
	}
	return nil
}

// Fresh reports, without creating anything, whether dir holds no Pebble
// index yet (absent or empty). A process checks the store binding against a
// fresh index before Open creates one, so that a wrong configuration leaves
// no new database behind.
func Fresh(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("index: look for a pebble index in %s: %w", dir, err)
	}
	return len(entries) == 0, nil
}
