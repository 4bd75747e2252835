package gc

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// fakeIndex is an in-memory Index for unit tests of the sweep's logic: a
// registry, a reference count per hash, and lists of expired versions and
// orphans given by the test. It keeps the registry's rules (ClaimBlobs
// re-checks references and leases).
type fakeIndex struct {
	mu       sync.Mutex
	now      func() time.Time
	blobs    map[cas.Hash]index.Blob
	refs     map[cas.Hash]int64
	versions map[index.VersionKey]cas.Hash // versions retention may delete, with their hash
	orphans  map[uuid.UUID][]cas.Hash      // orphaned assets, with the hashes of their versions
	runs     map[string]index.GCRun
	locked   bool
}

func newFakeIndex(now func() time.Time) *fakeIndex {
	return &fakeIndex{
		now: now, blobs: map[cas.Hash]index.Blob{}, refs: map[cas.Hash]int64{},
		versions: map[index.VersionKey]cas.Hash{}, orphans: map[uuid.UUID][]cas.Hash{},
		runs: map[string]index.GCRun{},
	}
}

func (f *fakeIndex) putBlob(h cas.Hash, size int64, state index.BlobState, leased time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[h] = index.Blob{Hash: h, Size: size, State: state, CreatedAt: leased, LeasedAt: leased}
}

func sortedHashes[T any](m map[cas.Hash]T) []cas.Hash {
	hs := make([]cas.Hash, 0, len(m))
	for h := range m {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	return hs
}

func (f *fakeIndex) ExpiredVersions(ctx context.Context, now time.Time, retention time.Duration, fn func(index.VersionKey) error) error {
	f.mu.Lock()
	keys := make([]index.VersionKey, 0, len(f.versions))
	for k := range f.versions {
		keys = append(keys, k)
	}
	f.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].Version < keys[j].Version })
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeIndex) DeleteVersions(ctx context.Context, now time.Time, retention time.Duration, vs []index.VersionKey) ([]index.VersionKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []index.VersionKey
	for _, k := range vs {
		if h, ok := f.versions[k]; ok {
			delete(f.versions, k)
			f.refs[h]--
			if f.refs[h] == 0 {
				delete(f.refs, h)
			}
			out = append(out, k)
		}
	}
	return out, nil
}

func (f *fakeIndex) OrphanedAssets(ctx context.Context, cutoff time.Time, fn func(uuid.UUID) error) error {
	f.mu.Lock()
	ids := make([]uuid.UUID, 0, len(f.orphans))
	for id := range f.orphans {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeIndex) DeleteOrphans(ctx context.Context, cutoff time.Time, ids []uuid.UUID) ([]uuid.UUID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uuid.UUID
	for _, id := range ids {
		hs, ok := f.orphans[id]
		if !ok {
			continue
		}
		delete(f.orphans, id)
		for _, h := range hs {
			f.refs[h]--
			if f.refs[h] == 0 {
				delete(f.refs, h)
			}
		}
		out = append(out, id)
	}
	return out, nil
}

func (f *fakeIndex) Blobs(ctx context.Context, fn func(index.Blob) error) error {
	f.mu.Lock()
	hs := sortedHashes(f.blobs)
	rows := make([]index.Blob, len(hs))
	for i, h := range hs {
		rows[i] = f.blobs[h]
	}
	f.mu.Unlock()
	for _, b := range rows {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeIndex) ReferencedHashes(ctx context.Context, fn func(cas.Hash) error) error {
	f.mu.Lock()
	hs := sortedHashes(f.refs)
	f.mu.Unlock()
	for _, h := range hs {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeIndex) ClaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, cutoff time.Time) ([]index.Blob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []index.Blob
	for _, h := range hs {
		if f.refs[h] > 0 {
			continue
		}
		b, ok := f.blobs[h]
		switch {
		case !ok:
			b = index.Blob{Hash: h, Size: -1, State: index.BlobDeleting, CreatedAt: f.now(), LeasedAt: f.now()}
		case b.State == index.BlobDeleting || !b.LeasedAt.Before(cutoff):
			continue
		default:
			b.State = index.BlobDeleting
		}
		b.ClaimedBy, b.ClaimedAt = sweep, time.Now()
		f.blobs[h] = b
		out = append(out, b)
	}
	return out, nil
}

func (f *fakeIndex) DeletingBlobs(ctx context.Context, fn func(index.Blob) error) error {
	f.mu.Lock()
	var rows []index.Blob
	for _, h := range sortedHashes(f.blobs) {
		if b := f.blobs[h]; b.State == index.BlobDeleting {
			rows = append(rows, b)
		}
	}
	f.mu.Unlock()
	for _, b := range rows {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeIndex) ReclaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, olderThan time.Duration) ([]index.Blob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []index.Blob
	for _, h := range hs {
		b, ok := f.blobs[h]
		if !ok || b.State != index.BlobDeleting || b.ClaimedBy == sweep || time.Since(b.ClaimedAt) <= olderThan {
			continue
		}
		b.ClaimedBy, b.ClaimedAt = sweep, time.Now()
		f.blobs[h] = b
		out = append(out, b)
	}
	return out, nil
}

func (f *fakeIndex) ForgetBlobs(ctx context.Context, sweep string, hs []cas.Hash) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range hs {
		if b, ok := f.blobs[h]; ok && b.State == index.BlobDeleting && b.ClaimedBy == sweep {
			delete(f.blobs, h)
		}
	}
	return nil
}

func (f *fakeIndex) TryLockGC(ctx context.Context) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.locked {
		return nil, index.ErrConflict
	}
	f.locked = true
	return func() {
		f.mu.Lock()
		f.locked = false
		f.mu.Unlock()
	}, nil
}

func (f *fakeIndex) PutGCRun(ctx context.Context, run index.GCRun) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	run.Report = slices.Clone(run.Report)
	f.runs[run.ID] = run
	return nil
}

func (f *fakeIndex) GCRuns(ctx context.Context, limit int, after string) ([]index.GCRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []index.GCRun
	for _, r := range f.runs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID > out[j].ID
	})
	if after != "" {
		i := slices.IndexFunc(out, func(r index.GCRun) bool { return r.ID == after })
		if i < 0 {
			return nil, index.ErrNotFound
		}
		out = out[i+1:]
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeIndex) GCRun(ctx context.Context, id string) (index.GCRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok {
		return index.GCRun{}, index.ErrNotFound
	}
	return r, nil
}

func (f *fakeIndex) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int, error) {
	return 0, nil
}

// fakeBlobs is an in-memory Blobs.
type fakeBlobs struct {
	mu      sync.Mutex
	m       map[cas.Hash]cas.Info
	deletes int // DeleteMany calls
	// failDelete, when set, is returned by DeleteMany after (deleteFirst) or
	// instead of deleting.
	failDelete  error
	deleteFirst bool
}

func newFakeBlobs() *fakeBlobs { return &fakeBlobs{m: map[cas.Hash]cas.Info{}} }

func (b *fakeBlobs) put(h cas.Hash, size int64, mod time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[h] = cas.Info{Hash: h, Size: size, ModTime: mod}
}

func (b *fakeBlobs) has(h cas.Hash) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.m[h]
	return ok
}

func (b *fakeBlobs) Walk(ctx context.Context, fn func(cas.Info) error) error {
	b.mu.Lock()
	infos := make([]cas.Info, 0, len(b.m))
	for _, in := range b.m {
		infos = append(infos, in) // map order: no promised order, as the real ones
	}
	b.mu.Unlock()
	for _, in := range infos {
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

func (b *fakeBlobs) DeleteMany(ctx context.Context, hs []cas.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deletes++
	if b.failDelete != nil && !b.deleteFirst {
		return b.failDelete
	}
	for _, h := range hs {
		delete(b.m, h)
	}
	return b.failDelete
}

func (b *fakeBlobs) CleanTemp(ctx context.Context, olderThan time.Duration) (int, int64, error) {
	return 0, 0, nil
}

var errInjected = errors.New("injected failure")
