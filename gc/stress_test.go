package gc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// stressDuration bounds how long writers and sweeps run against each other
// on each engine.
func stressDuration() time.Duration {
	if testing.Short() {
		return 2 * time.Second
	}
	return 6 * time.Second
}

// committed is a version a writer was told is committed, with its bytes.
type committed struct {
	kind    index.Kind
	id      uuid.UUID
	version int64
	data    []byte
}

type stressStats struct {
	commits, reuses, uploads, abandoned, drafts atomic.Int64
	notFound                                    atomic.Int64 // commits told 404 (blob missing or claimed)
	missingAfterCommit                          atomic.Int64 // bytes absent right after a commit
	sweeps, blobsDeleted                        atomic.Int64
	inline                                      atomic.Int64 // units created with inline bytes
	// acked holds the hashes of acknowledged versions. Nothing in the test
	// deletes those versions, so their blobs stay referenced: a commit naming
	// one must never be told 404, and nothing may upload one again, which
	// would repair a loss before the final check could see it.
	acked sync.Map // cas.Hash → struct{}
}

// TestStressWritersAndSweeps runs writers that create versions reusing
// stored blobs (without uploading them, as a client that asked which hashes
// are missing) and uploading new ones, drafts that get replaced and uploads
// that are abandoned, while sweeps run back to back with a grace of zero —
// on the embedded default, on PostgreSQL with a directory, and on
// PostgreSQL with MinIO. Each acknowledged version's bytes must be there
// right after its commit and at the end, with no path in between that could
// upload them again.
func TestStressWritersAndSweeps(t *testing.T) {
	forEachEngine(t, stressWorld)
	t.Run("postgres+minio", func(t *testing.T) {
		stressWorld(t, newS3World(t))
	})
}

func stressWorld(t *testing.T, w *world) {
	{
		ctx, cancel := context.WithCancel(w.ctx)
		defer cancel()
		var st stressStats
		var mu sync.Mutex
		var pool [][]byte // every byte string any writer has stored
		var done []committed
		addPool := func(d []byte) {
			mu.Lock()
			pool = append(pool, d)
			mu.Unlock()
		}
		pick := func(rng *rand.Rand) []byte {
			mu.Lock()
			defer mu.Unlock()
			if len(pool) == 0 {
				return nil
			}
			return pool[rng.IntN(len(pool))]
		}

		c := w.collector(Options{BatchSize: 16})
		zero := time.Duration(0)
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				rep, err := c.Sweep(ctx, Request{Grace: &zero})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("sweep: %v", err)
					}
					return
				}
				st.sweeps.Add(1)
				st.blobsDeleted.Add(rep.BlobsDeleted)
			}
		})

		// Stop after the duration, once enough has happened for the run to
		// mean something even on a loaded machine; never after a minute.
		wg.Go(func() {
			start := time.Now()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				elapsed := time.Since(start)
				enough := st.sweeps.Load() >= 3 && st.commits.Load() >= 20
				if elapsed >= time.Minute || (elapsed >= stressDuration() && enough) {
					cancel()
					return
				}
			}
		})

		const writers = 4
		for wi := 0; wi < writers; wi++ {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(wi), 42))
				var mine []committed // latest committed version of each own entity
				for ctx.Err() == nil {
					var (
						res committed
						ok  bool
						err error
					)
					switch r := rng.IntN(100); {
					case r < 30 || len(mine) == 0:
						res, ok, err = stressCreate(ctx, w, rng, &st)
					case r < 65:
						e := mine[rng.IntN(len(mine))]
						data := pick(rng)
						res, ok, err = stressReuse(ctx, w, e, data, &st)
					case r < 85:
						e := mine[rng.IntN(len(mine))]
						err = stressDraft(ctx, w, e, []byte(fmt.Sprintf("draft %s", uuid.NewString())), &st)
					default:
						d := []byte(fmt.Sprintf("abandoned %s", uuid.NewString()))
						_, err = uploadBlob(ctx, w.idx, w.store, d)
						st.abandoned.Add(1)
						addPool(d)
					}
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("writer %d: %v", wi, err)
						}
						return
					}
					if !ok {
						continue
					}
					st.acked.Store(cas.Sum(res.data), struct{}{})
					addPool(res.data)
					// Right after the commit, its bytes must be there.
					if _, in := w.inlineBytes(cas.Sum(res.data)); in {
						// inline: in the index with the version
					} else if _, err := w.store.Stat(w.ctx, cas.Sum(res.data)); err != nil {
						st.missingAfterCommit.Add(1)
						t.Errorf("bytes of %s missing right after its commit: %v", cas.Sum(res.data), err)
					}
					mu.Lock()
					done = append(done, res)
					mu.Unlock()
					replaced := false
					for i := range mine {
						if mine[i].id == res.id {
							mine[i], replaced = res, true
						}
					}
					if !replaced {
						mine = append(mine, res)
					}
				}
			})
		}
		wg.Wait()

		// One more sweep with nothing running, then check everything.
		w.sweep(c, Request{Grace: &zero})
		for _, v := range done {
			var h cas.Hash
			switch v.kind {
			case index.KindUnit:
				u, err := w.idx.Unit(w.ctx, index.Ref{ID: v.id, Version: v.version})
				if err != nil {
					t.Fatalf("unit %s v%d: %v", v.id, v.version, err)
				}
				h = u.Hash
			case index.KindAsset:
				a, err := w.idx.Asset(w.ctx, index.Ref{ID: v.id, Version: v.version})
				if err != nil {
					t.Fatalf("asset %s v%d: %v", v.id, v.version, err)
				}
				h = a.Hash
			}
			if h != cas.Sum(v.data) {
				t.Fatalf("%s %s v%d names %s, want %s", v.kind, v.id, v.version, h, cas.Sum(v.data))
			}
			if !w.hasBytes(v.data) {
				t.Fatalf("%s %s v%d: blob %s missing", v.kind, v.id, v.version, h)
			}
		}
		w.checkReferencedStored()
		t.Logf("%d versions committed (%d reusing stored blobs), %d uploads, %d units created inline, %d drafts, %d abandoned uploads; "+
			"%d commits told 404 and retried; %d sweeps deleted %d blobs; bytes missing right after a commit: %d",
			st.commits.Load(), st.reuses.Load(), st.uploads.Load(), st.inline.Load(), st.drafts.Load(), st.abandoned.Load(),
			st.notFound.Load(), st.sweeps.Load(), st.blobsDeleted.Load(), st.missingAfterCommit.Load())
		if st.commits.Load() < 20 || st.sweeps.Load() < 3 || len(done) == 0 {
			t.Errorf("too little happened: %d commits, %d sweeps", st.commits.Load(), st.sweeps.Load())
		}
	}
}

// maxAttempts bounds how often a writer retries one commit after a 404.
const maxAttempts = 200

// commitWithRetry runs commit; on ErrBlobMissing it uploads data again (as
// a client does after a 404) and retries.
func commitWithRetry(ctx context.Context, w *world, data []byte, st *stressStats, commit func() error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err := commit()
		if err == nil {
			st.commits.Add(1)
			return nil
		}
		if !errors.Is(err, index.ErrBlobMissing) {
			return err
		}
		st.notFound.Add(1)
		if _, ok := st.acked.Load(cas.Sum(data)); ok {
			return fmt.Errorf("a commit naming %s, the blob of an acknowledged version, was told 404: the sweep took a referenced blob", cas.Sum(data))
		}
		if _, err := uploadBlob(ctx, w.idx, w.store, data); err != nil {
			return err
		}
		st.uploads.Add(1)
	}
	return fmt.Errorf("commit of %s still 404 after %d uploads", cas.Sum(data), maxAttempts)
}

// stressCreate uploads new bytes and creates a unit or an asset over them.
func stressCreate(ctx context.Context, w *world, rng *rand.Rand, st *stressStats) (committed, bool, error) {
	kind := index.KindAsset
	if rng.IntN(2) == 0 {
		kind = index.KindUnit
	}
	data := []byte(fmt.Sprintf("<new %s %s/>", kind, uuid.NewString()))
	// Half the new units store their bytes inline, in the commit's own
	// transaction, when the engine keeps inline blobs.
	_, inline := w.idx.(index.InlineReader)
	inline = inline && kind == index.KindUnit && rng.IntN(2) == 0
	h := cas.Sum(data)
	if inline {
		st.inline.Add(1)
	} else {
		if _, err := uploadBlob(ctx, w.idx, w.store, data); err != nil {
			return committed{}, false, err
		}
		st.uploads.Add(1)
	}
	res := committed{kind: kind, version: 1, data: data}
	err := commitWithRetry(ctx, w, data, st, func() error {
		return w.idx.Update(ctx, func(tx index.Tx) error {
			if inline {
				if err := tx.(index.InlineWriter).PutInlineBlob(h, data); err != nil {
					return err
				}
			}
			if kind == index.KindUnit {
				u, err := tx.CreateUnit(index.NewUnit{Collection: w.coll, Hash: h})
				res.id = u.ID
				return err
			}
			a, err := tx.CreateAsset(index.NewAsset{Collection: w.coll, MediaType: "application/octet-stream", Hash: h})
			res.id = a.ID
			return err
		})
	})
	return res, err == nil, err
}

// stressReuse commits a new version of e naming data's hash without
// uploading it first: the blob may have been collected meanwhile.
func stressReuse(ctx context.Context, w *world, e committed, data []byte, st *stressStats) (committed, bool, error) {
	if data == nil {
		return committed{}, false, nil
	}
	h := cas.Sum(data)
	res := committed{kind: e.kind, id: e.id, data: data}
	var created bool
	err := commitWithRetry(ctx, w, data, st, func() error {
		return w.idx.Update(ctx, func(tx index.Tx) error {
			var err error
			if e.kind == index.KindUnit {
				var u index.Unit
				u, created, err = tx.CommitUnit(e.id, index.UnitChange{Hash: h}, false)
				res.version = u.Version
			} else {
				var a index.Asset
				a, created, err = tx.CommitAsset(e.id, index.AssetChange{Hash: h}, false)
				res.version = a.Version
			}
			return err
		})
	})
	if err != nil {
		return committed{}, false, err
	}
	st.reuses.Add(1)
	// Identical to the latest: nothing new, and the latest is recorded already.
	return res, created, nil
}

// stressDraft uploads data and makes it e's draft, replacing any draft
// (whose blob becomes garbage).
func stressDraft(ctx context.Context, w *world, e committed, data []byte, st *stressStats) error {
	h, err := uploadBlob(ctx, w.idx, w.store, data)
	if err != nil {
		return err
	}
	st.drafts.Add(1)
	return commitWithRetry(ctx, w, data, st, func() error {
		return w.idx.Update(ctx, func(tx index.Tx) error {
			var err error
			if e.kind == index.KindUnit {
				_, _, err = tx.CommitUnit(e.id, index.UnitChange{Hash: h}, true)
			} else {
				_, _, err = tx.CommitAsset(e.id, index.AssetChange{Hash: h}, true)
			}
			return err
		})
	})
}
