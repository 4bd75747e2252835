package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/testenv"
)

// identityWorld makes configurations of one engine and one blob store kind
// for the identity tests: cfg shares the blob store of another config
// (sameBlobs) or not, the index of another config or not.
type identityWorld struct {
	name string
	// index returns the index half of a new configuration: a fresh one.
	freshIndex func(t *testing.T, c *Config)
	// freshBlobs points c at a fresh blob store.
	freshBlobs func(t *testing.T, c *Config)
	// sameBlobs points c at the blob store of base.
	sameBlobs func(c *Config, base Config)
}

func identityWorlds() []identityWorld {
	pebbleIndex := func(t *testing.T, c *Config) {
		// The Pebble index lives in DataDir/index: a new data directory is
		// a fresh index (and a fresh blob directory, unless S3).
		c.DataDir = filepath.Join(t.TempDir(), "data")
		c.DatabaseURL = ""
	}
	pgIndex := func(t *testing.T, c *Config) { c.DatabaseURL = testenv.NewDatabase(t) }
	dirBlobs := func(t *testing.T, c *Config) { c.DataDir = filepath.Join(t.TempDir(), "data") }
	s3Blobs := func(t *testing.T, c *Config) {
		c.S3 = s3Config(testenv.MinIO(t), "id-"+randomHex(6))
		c.AllowEmbeddedIndexWithS3 = true
	}
	// A fresh Pebble index over an existing blob directory: the blob
	// directory is copied into a new data directory (what a second data
	// directory over the same blobs looks like to Open).
	return []identityWorld{
		{"pebble+dir", pebbleIndex, dirBlobs, func(c *Config, base Config) {
			if err := os.CopyFS(filepath.Join(c.DataDir, "blobs"), os.DirFS(filepath.Join(base.DataDir, "blobs"))); err != nil {
				panic(err)
			}
		}},
		{"postgres+dir", pgIndex, dirBlobs, func(c *Config, base Config) { c.DataDir = base.DataDir }},
		{"pebble+s3", pebbleIndex, s3Blobs, func(c *Config, base Config) { c.S3 = base.S3 }},
		{"postgres+s3", pgIndex, s3Blobs, func(c *Config, base Config) { c.S3 = base.S3 }},
	}
}

func (w identityWorld) config(t *testing.T) Config {
	var c Config
	w.freshBlobs(t, &c)
	w.freshIndex(t, &c)
	if c.DataDir == "" {
		c.DataDir = filepath.Join(t.TempDir(), "data")
	}
	return c
}

// putBlobs stores n blobs through a's services (live registry rows).
func putBlobs(t *testing.T, a *App, n int) []cas.Hash {
	t.Helper()
	var hs []cas.Hash
	for i := range n {
		b := []byte(fmt.Sprintf("identity blob %d %s", i, randomHex(4)))
		h := cas.Sum(b)
		if _, _, err := a.Refs.PutBlob(context.Background(), h, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return hs
}

func ids(t *testing.T, cfg Config) IdentityReport {
	t.Helper()
	rep, err := ShowIdentity(context.Background(), cfg)
	if err != nil {
		t.Fatalf("show identity: %v", err)
	}
	return rep
}

// openRefused opens cfg and wants a store identity refusal.
func openRefused(t *testing.T, cfg Config, want string) {
	t.Helper()
	a, err := Open(context.Background(), cfg)
	if err == nil {
		a.Close()
		t.Fatalf("open %s: no error, want a refusal (%s)", cfg.Describe(), want)
	}
	if !errors.Is(err, ErrStoreIdentity) || !strings.Contains(err.Error(), want) {
		t.Fatalf("open %s: %v, want ErrStoreIdentity saying %q", cfg.Describe(), err, want)
	}
}

// removeIDs deletes the id from both sides: a deployment from before store ids.
func removeIDs(t *testing.T, cfg Config) {
	t.Helper()
	ctx := context.Background()
	r, err := openRaw(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if err := r.b.idxID.ReplaceStoreID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.b.blobID.SetStoreID(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

func TestStoreIdentity(t *testing.T) {
	for _, w := range identityWorlds() {
		t.Run(w.name, func(t *testing.T) {
			ctx := context.Background()
			base := w.config(t)

			// A fresh index over a fresh blob store binds silently.
			a := openApp(t, base)
			hs := putBlobs(t, a, 3)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			rep := ids(t, base)
			if !rep.Bound || rep.IndexID == "" {
				t.Fatalf("after the first open: %+v, want bound", rep)
			}
			// The id is outside the blob namespace: walks see the 3 blobs only.
			a = openApp(t, base)
			n := 0
			if err := a.Blobs.Walk(ctx, func(cas.Info) error { n++; return nil }); err != nil || n != 3 {
				t.Fatalf("walk: %d blobs, %v; want 3", n, err)
			}
			if _, _, err := a.Blobs.CleanTemp(ctx, 0); err != nil {
				t.Fatal(err)
			}
			a.Close()
			if rep := ids(t, base); !rep.Bound {
				t.Fatalf("CleanTemp removed the binding: %+v", rep)
			}

			// A fresh index over the used blob store is refused, and for
			// PostgreSQL the database is left without a schema.
			other := base
			w.freshIndex(t, &other)
			w.sameBlobs(&other, base)
			openRefused(t, other, "the index is new and the blob store belongs to another deployment")
			if other.DatabaseURL != "" {
				if fresh, err := pgindex.Fresh(ctx, other.DatabaseURL); err != nil || !fresh {
					t.Fatalf("the refused database was migrated: fresh %v, %v", fresh, err)
				}
			}

			// A populated index over a fresh blob store is refused.
			moved := base
			w.freshBlobs(t, &moved)
			if moved.DatabaseURL == "" && moved.DataDir != base.DataDir {
				// Keep the Pebble index: copy it into the new data directory.
				if err := os.CopyFS(filepath.Join(moved.DataDir, "index"), os.DirFS(filepath.Join(base.DataDir, "index"))); err != nil {
					t.Fatal(err)
				}
			}
			openRefused(t, moved, "the index names blobs and the blob store holds none")

			// Different ids are refused, naming both.
			r, err := openRaw(ctx, base, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.b.blobID.SetStoreID(ctx, "someone-else"); err != nil {
				t.Fatal(err)
			}
			r.close()
			openRefused(t, base, "(store id someone-else) belong to different deployments")
			if rep, err := ForceBind(ctx, base); err != nil || !rep.Bound || rep.IndexID != "someone-else" {
				t.Fatalf("force bind: %+v, %v; want bound to the blob store's id", rep, err)
			}
			openApp(t, base).Close()

			// Upgrade: neither side has an id, the index's blobs are all
			// there: the binding is written on open, index first.
			removeIDs(t, base)
			if rep := ids(t, base); rep.IndexID != "" || rep.BlobsID != "" {
				t.Fatalf("ids not removed: %+v", rep)
			}
			openApp(t, base).Close()
			if rep := ids(t, base); !rep.Bound || rep.IndexID == "someone-else" {
				t.Fatalf("after the upgrade: %+v, want a new binding", rep)
			}

			// A crash between the two writes: the index has the id, the
			// blob store not; the next open finishes.
			r, err = openRaw(ctx, base, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.b.blobID.SetStoreID(ctx, ""); err != nil {
				t.Fatal(err)
			}
			r.close()
			openApp(t, base).Close()
			if rep := ids(t, base); !rep.Bound {
				t.Fatalf("after the interrupted binding: %+v", rep)
			}

			// Upgrade refused when a live blob of the index is missing.
			removeIDs(t, base)
			a = openApp(t, base)
			putBlobs(t, a, 1) // the binding written again; remove it after
			if err := a.Blobs.Delete(ctx, hs[1]); err != nil {
				t.Fatal(err)
			}
			a.Close()
			removeIDs(t, base)
			openRefused(t, base, "1 of 4 live blobs of the index checked are not in the blob store")
		})
	}
}

// TestEmbeddedIndexWithS3 is refused unless allowed, and names the likely
// mistake.
func TestEmbeddedIndexWithS3(t *testing.T) {
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), S3: s3Config(testenv.MinIO(t), "id-"+randomHex(6))}
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, ErrEmbeddedIndexWithS3) || !strings.Contains(err.Error(), "--database-url") {
		t.Fatalf("open: %v, want ErrEmbeddedIndexWithS3 naming --database-url", err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused open created %s: %v", cfg.DataDir, err)
	}
	cfg.AllowEmbeddedIndexWithS3 = true
	openApp(t, cfg).Close()
}

// TestIdentitySample: above identitySample live blobs, the agreement check
// looks at a sample spread over the hash order, not at every blob.
func TestIdentitySample(t *testing.T) {
	ctx := context.Background()
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data")}
	a := openApp(t, cfg)
	putBlobs(t, a, 5)
	a.Close()
	r, err := openRaw(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	defer func(n int) { identitySample = n }(identitySample)
	for _, c := range []struct{ sample, checked int }{{10, 5}, {5, 5}, {2, 2}, {1, 1}} {
		identitySample = c.sample
		absent, _, checked, err := r.b.missing(ctx)
		if err != nil || absent != 0 || checked != c.checked {
			t.Errorf("sample %d: %d absent, %d checked, %v; want 0, %d", c.sample, absent, checked, err, c.checked)
		}
	}
}
