package bench

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
	"github.com/blockstore/blockstore/index/pgindex"
)

// The sweep benchmark's world is written straight into the stores (not
// through the server: the sweep is what is measured), without fsync. With
// N blobs of which G are garbage:
//
//   - kept: N−G blobs, each named by a version of a unit that does not opt
//     in to GC, plus enough versions naming them again that there are N
//     versions in all;
//   - expiring: units with garbage_collect set whose first
//     versions, created two months ago, name a garbage blob each and are past
//     retention (720h); their latest version names a kept blob;
//   - unreferenced: registered blobs that no version names (an upload never
//     committed);
//   - strays: bytes in the blob directory with no registry row.
//
// Units have perUnit versions: 100, fewer for a small world. The garbage
// is half expiring, a quarter unreferenced and a quarter
// strays. Both targets share the blob directory: the kept blobs are written
// once, and each sweep gets fresh garbage (a seed per target and round), so
// that a sweep always finds G garbage blobs among N.
const maxVersionsPerUnit = 100

// gcAge is how long ago the world's versions were created.
const gcAge = 60 * 24 * time.Hour

// gcShape is the world's counts.
type gcShape struct {
	blobs, garbage int
	perUnit        int // versions per unit
	keptUnits      int // units that do not opt in to GC
	extraVersions  int // versions of kept units that name a kept blob again
	expiringUnits  int // garbage units per round
	unreferenced   int
	strays         int
}

func newGCShape(blobs, percent int) gcShape {
	s := gcShape{blobs: blobs, garbage: max(4, blobs*percent/100), perUnit: min(maxVersionsPerUnit, max(2, blobs/200))}
	s.expiringUnits = max(1, s.garbage/2/s.perUnit)
	rest := s.garbage - s.expiringUnits*s.perUnit
	s.unreferenced = rest / 2
	s.strays = rest - s.unreferenced
	kept := blobs - s.garbage
	s.keptUnits = max(1, kept/s.perUnit)
	s.blobs = s.keptUnits*s.perUnit + s.garbage
	s.extraVersions = max(0, s.blobs-s.keptUnits*s.perUnit-s.expiringUnits*(s.perUnit+1))
	return s
}

// expiringVersions is how many versions retention deletes in a sweep.
func (s gcShape) expiringVersions() int { return s.expiringUnits * s.perUnit }

// versions is the number of versions when the first sweep runs.
func (s gcShape) versions() int {
	return s.keptUnits*s.perUnit + s.extraVersions + s.expiringUnits*(s.perUnit+1)
}

// keptBlob and garbageBlob are the contents of the world's blobs: about 80
// bytes each.
func keptBlob(i int) []byte {
	return fmt.Appendf(nil, "<html>sweep benchmark: kept blob %09d, named by a unit version</html>\n", i)
}

func garbageBlob(seed uint64, i int) []byte {
	return fmt.Appendf(nil, "<html>sweep benchmark: garbage %016x blob %09d, for the next sweep</html>\n", seed, i)
}

// blobLoader registers many live blobs at once (both index engines have
// it, for benchmark set-up: indextest.BlobLoader).
type blobLoader interface {
	LoadBlobs(ctx context.Context, blobs []index.Blob) error
}

// openGCIndex opens the index of a target (Pebble under dataDir, or
// PostgreSQL at dbURL) without fsync and with a clock two months in the
// past. The caller must close it before a sweep opens the same stores.
func openGCIndex(ctx context.Context, dataDir, dbURL string) (index.Store, error) {
	base := time.Now().Add(-gcAge)
	var tick atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Microsecond) }
	var idx index.Store
	var err error
	if dbURL != "" {
		idx, err = pgindex.Open(ctx, dbURL, index.Options{Now: clock})
	} else {
		idx, err = pebbleindex.Open(filepath.Join(dataDir, "index"), pebbleindex.Options{Options: index.Options{Now: clock}, NoSync: true})
	}
	if err != nil {
		return nil, fmt.Errorf("bench: open the index of the sweep's world: %w", err)
	}
	if _, ok := idx.(blobLoader); !ok {
		idx.Close()
		return nil, fmt.Errorf("bench: index %T cannot load blobs in bulk", idx)
	}
	return idx, nil
}

// openGCBlobs opens the blob directory under dataDir, as `blockstore` lays
// it out, without fsync. The caller must close it.
func openGCBlobs(dataDir string) (*cas.Store, error) {
	backend, err := dirstore.Open(filepath.Join(dataDir, "blobs"), dirstore.Options{NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("bench: open the blob directory of the sweep's world: %w", err)
	}
	return cas.New(backend, cas.Options{}), nil
}

// writeBlobs stores n blobs made by content from a few goroutines and
// returns their hashes.
func writeBlobs(ctx context.Context, blobs *cas.Store, n int, content func(i int) []byte) ([]cas.Hash, error) {
	hashes := make([]cas.Hash, n)
	err := parallel(ctx, n, 8, func(ctx context.Context, i int, _ []byte) error {
		info, err := blobs.Put(ctx, bytes.NewReader(content(i)), cas.PutOptions{})
		if err != nil {
			return fmt.Errorf("bench: write blob %d of the sweep's world: %w", i, err)
		}
		hashes[i] = info.Hash
		return nil
	})
	return hashes, err
}

// keptHashes are the hashes of the kept blobs.
func (s gcShape) keptHashes() []cas.Hash {
	hs := make([]cas.Hash, s.keptUnits*s.perUnit)
	for i := range hs {
		hs[i] = cas.Sum(keptBlob(i))
	}
	return hs
}

// writeKept writes the kept blobs.
func (s gcShape) writeKept(ctx context.Context, blobs *cas.Store) error {
	_, err := writeBlobs(ctx, blobs, s.keptUnits*s.perUnit, keptBlob)
	return err
}

// register loads registry rows for hs.
func register(ctx context.Context, idx index.Store, hs []cas.Hash, size func(i int) int) error {
	const chunk = 20000
	for i := 0; i < len(hs); i += chunk {
		batch := make([]index.Blob, 0, chunk)
		for j := i; j < min(i+chunk, len(hs)); j++ {
			batch = append(batch, index.Blob{Hash: hs[j], Size: int64(size(j))})
		}
		if err := idx.(blobLoader).LoadBlobs(ctx, batch); err != nil {
			return fmt.Errorf("bench: register the sweep's blobs: %w", err)
		}
	}
	return nil
}

// unitPlan is one unit of the world: the hashes its versions name, in
// order, and whether it opts in to GC.
type unitPlan struct {
	gc     bool
	hashes []cas.Hash
}

// commitUnits creates the units in transactions of about 1,000 versions,
// from writers goroutines.
func commitUnits(ctx context.Context, idx index.Store, name string, units []unitPlan, writers int) error {
	var coll uuid.UUID
	err := idx.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: name}})
		coll = c.ID
		return err
	})
	if err != nil {
		return fmt.Errorf("bench: create the sweep's collection: %w", err)
	}
	// Batches of whole units of about 1,000 versions.
	var batches [][]unitPlan
	for i := 0; i < len(units); {
		j, n := i, 0
		for j < len(units) && (n == 0 || n+len(units[j].hashes) <= 1000) {
			n += len(units[j].hashes)
			j++
		}
		batches = append(batches, units[i:j])
		i = j
	}
	return parallel(ctx, len(batches), writers, func(ctx context.Context, b int, _ []byte) error {
		err := idx.Update(ctx, func(tx index.Tx) error {
			for _, u := range batches[b] {
				nu, err := tx.CreateUnit(index.NewUnit{Collection: coll, Hash: u.hashes[0], GarbageCollect: u.gc})
				if err != nil {
					return err
				}
				for _, h := range u.hashes[1:] {
					if _, _, err := tx.CommitUnit(nu.ID, index.UnitChange{Hash: h}, false); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bench: commit the sweep's versions: %w", err)
		}
		return nil
	})
}

// loadKept registers the kept blobs in idx and commits the kept units.
func (s gcShape) loadKept(ctx context.Context, idx index.Store, kept []cas.Hash, writers int) error {
	if err := register(ctx, idx, kept, func(i int) int { return len(keptBlob(i)) }); err != nil {
		return err
	}
	units := make([]unitPlan, s.keptUnits)
	for u := range units {
		hs := kept[u*s.perUnit : (u+1)*s.perUnit]
		units[u].hashes = append([]cas.Hash(nil), hs...)
		// Versions that name the unit's blobs again, each unlike the one
		// before it, so that every one is a new version.
		more := s.extraVersions / s.keptUnits
		if u < s.extraVersions%s.keptUnits {
			more++
		}
		for v := range more {
			units[u].hashes = append(units[u].hashes, hs[v%s.perUnit])
		}
	}
	return commitUnits(ctx, idx, "sweep world: kept", units, writers)
}

// loadGarbage writes a sweep's garbage (seed makes it fresh): expiring
// units, unreferenced blobs and strays. Their latest versions name kept
// blobs.
func (s gcShape) loadGarbage(ctx context.Context, idx index.Store, blobs *cas.Store, kept []cas.Hash, seed uint64, writers int) error {
	n := s.expiringVersions() + s.unreferenced + s.strays
	content := func(i int) []byte { return garbageBlob(seed, i) }
	hs, err := writeBlobs(ctx, blobs, n, content)
	if err != nil {
		return err
	}
	size := func(i int) int { return len(content(i)) }
	exp := hs[:s.expiringVersions()]
	if err := register(ctx, idx, hs[:s.expiringVersions()+s.unreferenced], size); err != nil {
		return err
	}
	units := make([]unitPlan, s.expiringUnits)
	for u := range units {
		units[u] = unitPlan{gc: true, hashes: append(append([]cas.Hash(nil), exp[u*s.perUnit:(u+1)*s.perUnit]...), kept[(seed+uint64(u))%uint64(len(kept))])}
	}
	return commitUnits(ctx, idx, fmt.Sprintf("sweep world: garbage %x", seed), units, writers)
}
