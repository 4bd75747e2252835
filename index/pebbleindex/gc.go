package pebbleindex

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// ctxEvery is how many streamed items pass between checks of the context.
const ctxEvery = 1024

// --- the blob registry -----------------------------------------------------

// BeginBlob registers an upload of h: absent becomes pending, pending and
// live get a fresh lease, deleting is ErrBlobBusy.
func (s *Store) BeginBlob(ctx context.Context, h cas.Hash) (index.BlobState, index.Ticket, error) {
	var (
		state  index.BlobState
		ticket index.Ticket
	)
	err := s.writeRegistry(ctx, func(t *tx) error {
		b, tk, ok, err := t.blobTicket(h)
		if err != nil {
			return err
		}
		now := fromNS(t.at)
		switch {
		case !ok:
			b = index.Blob{Hash: h, Size: -1, State: index.BlobPending, CreatedAt: now}
			tk = index.NewTicket()
			// A new pending row need not reach the disk before the upload
			// goes on: it guards the upload from this process's sweeps once
			// applied, and FinishBlob's sync makes it durable with the live
			// row. A crash before that loses only an upload that was never
			// acknowledged (its bytes, if renamed into place, are young
			// stray bytes that a sweep keeps for the grace period, then
			// deletes). A lease on a row that exists is synced as before: a
			// client that was told a blob exists relies on it.
			t.volatile = true
		case b.State == index.BlobDeleting:
			return fmt.Errorf("%w: %s", index.ErrBlobBusy, h)
		}
		b.LeasedAt = now
		t.set(blobKey(h), encodeBlob(b, tk))
		state, ticket = b.State, tk
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("index: begin blob %s: %w", h, err)
	}
	return state, ticket, nil
}

// FinishBlob makes h live with this size and a fresh lease when it is live,
// or pending under ticket; else ErrBlobMissing.
func (s *Store) FinishBlob(ctx context.Context, h cas.Hash, size int64, ticket index.Ticket) error {
	err := s.writeRegistry(ctx, func(t *tx) error {
		b, tk, ok, err := t.blobTicket(h)
		if err != nil {
			return err
		}
		if !ok || b.State == index.BlobDeleting || (b.State == index.BlobPending && tk != ticket) {
			return &index.BlobMissingError{Hash: h}
		}
		b.State, b.Size, b.LeasedAt = index.BlobLive, size, fromNS(t.at)
		t.set(blobKey(h), encodeBlob(b, 0))
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: finish blob %s: %w", h, err)
	}
	return nil
}

// RenewBlobs renews the lease of the live blobs among hs and returns their rows.
func (s *Store) RenewBlobs(ctx context.Context, hs []cas.Hash) (map[cas.Hash]index.Blob, error) {
	var live map[cas.Hash]index.Blob
	err := s.writeRegistry(ctx, func(t *tx) error {
		live = make(map[cas.Hash]index.Blob, len(hs))
		for _, h := range hs {
			if _, done := live[h]; done {
				continue
			}
			b, ok, err := t.blob(h)
			if err != nil {
				return err
			}
			if !ok || b.State != index.BlobLive {
				continue
			}
			b.LeasedAt = fromNS(t.at)
			t.set(blobKey(h), encodeBlob(b, 0))
			live[h] = b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: renew blobs: %w", err)
	}
	return live, nil
}

// LoadBlobs registers blobs as live, durably, in one transaction: the
// benchmarks' set-up (indextest.BlobLoader). Rows being deleted are left alone.
func (s *Store) LoadBlobs(ctx context.Context, blobs []index.Blob) error {
	err := s.writeRegistry(ctx, func(t *tx) error {
		now := fromNS(t.at)
		for _, in := range blobs {
			b, ok, err := t.blob(in.Hash)
			if err != nil {
				return err
			}
			if ok && b.State == index.BlobDeleting {
				continue
			}
			if !ok {
				b = index.Blob{Hash: in.Hash, CreatedAt: now}
			}
			b.State, b.Size, b.LeasedAt = index.BlobLive, in.Size, now
			t.set(blobKey(in.Hash), encodeBlob(b, 0))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: load blobs: %w", err)
	}
	return nil
}

// ClaimBlobs moves to deleting each hash of hs that no stored version names,
// whose lease ended before leaseCutoff, or that has no row, under sweep's
// claim stamped with the wall clock (not the index's clock, which tests
// move by hand: the claim fences real deletes in flight). It takes the
// writer's turn and the registry's, so it is ordered with every commit that
// names a blob and with every registration.
func (s *Store) ClaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, leaseCutoff time.Time) ([]index.Blob, error) {
	var claimed []index.Blob
	err := s.commit(ctx, func(t *tx) error {
		claimed = claimed[:0]
		for _, h := range hs {
			named, err := t.has(hashRefPrefix(h))
			if err != nil {
				return err
			}
			if named {
				continue
			}
			b, ok, err := t.blob(h)
			if err != nil {
				return err
			}
			switch {
			case !ok:
				now := fromNS(t.at)
				b = index.Blob{Hash: h, Size: -1, CreatedAt: now, LeasedAt: now}
			case b.State == index.BlobDeleting || !b.LeasedAt.Before(leaseCutoff):
				continue
			}
			b.State, b.ClaimedBy, b.ClaimedAt = index.BlobDeleting, sweep, time.Now().UTC()
			t.set(blobKey(h), encodeBlob(b, 0))
			t.set(deletingKey(h), nil)
			claimed = append(claimed, b)
		}
		return nil
	}, s.writer, s.registry)
	if err != nil {
		return nil, fmt.Errorf("index: claim blobs: %w", err)
	}
	return claimed, nil
}

// ReclaimBlobs hands to sweep the deleting rows of hs that another sweep
// claimed more than olderThan ago on the wall clock.
func (s *Store) ReclaimBlobs(ctx context.Context, sweep string, hs []cas.Hash, olderThan time.Duration) ([]index.Blob, error) {
	var taken []index.Blob
	err := s.writeRegistry(ctx, func(t *tx) error {
		taken = taken[:0]
		now := time.Now().UTC()
		for _, h := range hs {
			b, ok, err := t.blob(h)
			if err != nil {
				return err
			}
			if !ok || b.State != index.BlobDeleting || b.ClaimedBy == sweep ||
				(!b.ClaimedAt.IsZero() && !b.ClaimedAt.Before(now.Add(-olderThan))) {
				continue
			}
			b.ClaimedBy, b.ClaimedAt = sweep, now
			t.set(blobKey(h), encodeBlob(b, 0))
			taken = append(taken, b)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: reclaim blobs: %w", err)
	}
	return taken, nil
}

// ForgetBlobs deletes the rows of hs that are deleting under sweep's claim.
func (s *Store) ForgetBlobs(ctx context.Context, sweep string, hs []cas.Hash) error {
	err := s.writeRegistry(ctx, func(t *tx) error {
		for _, h := range hs {
			b, ok, err := t.blob(h)
			if err != nil {
				return err
			}
			if ok && b.State == index.BlobDeleting && b.ClaimedBy == sweep {
				t.del(blobKey(h))
				t.del(deletingKey(h))
				if b.Inline {
					t.del(inlineKey(h)) // the bytes go with the row
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: forget blobs: %w", err)
	}
	return nil
}

// Blobs streams every registry row in ascending hash order.
func (s *Store) Blobs(ctx context.Context, fn func(index.Blob) error) error {
	return s.stream(ctx, "blobs", func(v *view, tick func() error) error {
		p := []byte{pBlob}
		return v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
			if err := tick(); err != nil {
				return false, err
			}
			b, err := decodeBlob(readHash(k[1:]), val)
			if err != nil {
				return false, err
			}
			return true, fn(b)
		})
	})
}

// DeletingBlobs streams the rows in BlobDeleting, in ascending hash order.
func (s *Store) DeletingBlobs(ctx context.Context, fn func(index.Blob) error) error {
	return s.stream(ctx, "deleting blobs", func(v *view, tick func() error) error {
		p := []byte{pDeleting}
		return v.scan(p, prefixEnd(p), func(k, _ []byte) (bool, error) {
			if err := tick(); err != nil {
				return false, err
			}
			h := readHash(k[1:])
			b, ok, err := v.blob(h)
			if err != nil {
				return false, err
			}
			if !ok || b.State != index.BlobDeleting {
				return false, fmt.Errorf("%w: deleting key of %s without a deleting row", errCorrupt, h)
			}
			return true, fn(b)
		})
	})
}

// ReferencedHashes streams once each, in ascending order, every hash that a
// stored unit or asset version (draft included) names: a walk of the h keys.
func (s *Store) ReferencedHashes(ctx context.Context, fn func(cas.Hash) error) error {
	return s.stream(ctx, "referenced hashes", func(v *view, tick func() error) error {
		p := []byte{pHashRef}
		var prev cas.Hash
		first := true
		return v.scan(p, prefixEnd(p), func(k, _ []byte) (bool, error) {
			if err := tick(); err != nil {
				return false, err
			}
			if len(k) < sizeHashRefPrefix {
				return false, fmt.Errorf("%w: hash key of %d bytes", errCorrupt, len(k))
			}
			h := readHash(k[1:])
			if !first && h == prev {
				return true, nil
			}
			first, prev = false, h
			return true, fn(h)
		})
	})
}

// --- retention and orphans -------------------------------------------------

// retentionGC is the flag retention follows: the latest version's, or the
// draft's when the draft is newer.
func retentionGC(e *entityRec) bool {
	if e.HasDraft && (e.Latest == 0 || e.DraftCreated > e.LatestCreated) {
		return e.DraftGC
	}
	return e.LatestGC
}

// expirable says whether retention may delete version ver of id, superseded
// at superseded: never the latest or a draft, never a pinned version.
func (v *view) expirable(id uuid.UUID, e *entityRec, ver, superseded, cutoff int64) (bool, error) {
	if ver <= 0 || ver >= e.Latest || superseded == 0 || superseded >= cutoff || !retentionGC(e) {
		return false, nil
	}
	if e.Kind == index.KindCollection {
		return true, nil
	}
	pinned, err := v.has(reversePinPrefix(id, ver))
	return !pinned, err
}

// ExpiredVersions streams the versions retention may delete at now: a walk
// of the x keys superseded before now-retention.
func (s *Store) ExpiredVersions(ctx context.Context, now time.Time, retention time.Duration, fn func(index.VersionKey) error) error {
	cutoff := now.Add(-retention).UnixNano()
	return s.stream(ctx, "expired versions", func(v *view, tick func() error) error {
		var cached uuid.UUID
		var e entityRec
		var found bool
		return v.scan([]byte{pSuperseded}, timeBound(pSuperseded, cutoff), func(k, _ []byte) (bool, error) {
			if err := tick(); err != nil {
				return false, err
			}
			at := readTime(k[1:])
			id := readUUID(k[1+sizeTime:])
			ver := int64(readU64(k[1+sizeTime+sizeUUID:]))
			if id != cached {
				var err error
				if e, found, err = v.entity(id); err != nil {
					return false, err
				}
				cached = id
			}
			if !found {
				return true, nil
			}
			ok, err := v.expirable(id, &e, ver, at, cutoff)
			if err != nil || !ok {
				return err == nil, err
			}
			return true, fn(index.VersionKey{Kind: e.Kind, ID: id, Version: ver})
		})
	})
}

// DeleteVersions deletes those of vs that retention may still delete at now.
func (s *Store) DeleteVersions(ctx context.Context, now time.Time, retention time.Duration, vs []index.VersionKey) ([]index.VersionKey, error) {
	cutoff := now.Add(-retention).UnixNano()
	var deleted []index.VersionKey
	err := s.write(ctx, func(t *tx) error {
		deleted = deleted[:0]
		for _, vk := range vs {
			e, ok, err := t.entity(vk.ID)
			if err != nil {
				return err
			}
			if !ok || e.Kind != vk.Kind || vk.Version <= 0 {
				continue
			}
			r, ok, err := t.version(vk.ID, vk.Version)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			ok, err = t.expirable(vk.ID, &e, vk.Version, r.Superseded, cutoff)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := t.removeVersion(vk.ID, e.Kind, vk.Version, &r); err != nil {
				return err
			}
			deleted = append(deleted, vk)
			t.recordSweep(vk.ID, &e, vk.Version)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: delete versions: %w", err)
	}
	return deleted, nil
}

// orphan says whether asset id is an orphan at cutoff: once linked, linked
// by no stored unit version, unlinked before cutoff, and collectable.
func (v *view) orphan(id uuid.UUID, e *entityRec, cutoff int64) (bool, error) {
	if e.Kind != index.KindAsset || !e.EverLinked || e.LastUnlinked == 0 || e.LastUnlinked >= cutoff {
		return false, nil
	}
	gc := e.LatestGC
	if e.Latest == 0 {
		gc = e.HasDraft && e.DraftGC
	}
	if !gc {
		return false, nil
	}
	linked, err := v.has(reversePrefix(id))
	return !linked, err
}

// OrphanedAssets streams the orphaned assets at cutoff: a walk of the o keys
// unlinked before cutoff.
func (s *Store) OrphanedAssets(ctx context.Context, cutoff time.Time, fn func(uuid.UUID) error) error {
	c := cutoff.UnixNano()
	return s.stream(ctx, "orphaned assets", func(v *view, tick func() error) error {
		return v.scan([]byte{pOrphan}, timeBound(pOrphan, c), func(k, _ []byte) (bool, error) {
			if err := tick(); err != nil {
				return false, err
			}
			id := readUUID(k[1+sizeTime:])
			e, found, err := v.entity(id)
			if err != nil || !found {
				return err == nil, err
			}
			ok, err := v.orphan(id, &e, c)
			if err != nil || !ok {
				return err == nil, err
			}
			return true, fn(id)
		})
	})
}

// DeleteOrphans deletes those of ids that are still orphans at cutoff.
func (s *Store) DeleteOrphans(ctx context.Context, cutoff time.Time, ids []uuid.UUID) ([]uuid.UUID, error) {
	c := cutoff.UnixNano()
	var deleted []uuid.UUID
	err := s.write(ctx, func(t *tx) error {
		deleted = deleted[:0]
		for _, id := range ids {
			e, found, err := t.entity(id)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			ok, err := t.orphan(id, &e, c)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := t.deleteEntity(id, &e); err != nil {
				return err
			}
			deleted = append(deleted, id)
			t.recordSweep(id, &e, 0)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: delete orphans: %w", err)
	}
	return deleted, nil
}

// --- gc runs and idempotency ---------------------------------------------------

// PutGCRun inserts or replaces a run by ID.
func (s *Store) PutGCRun(ctx context.Context, run index.GCRun) error {
	err := s.write(ctx, func(t *tx) error {
		val, ok, err := getValue(t.r, runKey(run.ID))
		if err != nil {
			return err
		}
		if ok {
			old, err := decodeRun(run.ID, val)
			if err != nil {
				return err
			}
			t.del(runTimeKey(old.StartedAt.UnixNano(), run.ID))
		}
		t.set(runKey(run.ID), encodeRun(run))
		t.set(runTimeKey(run.StartedAt.UnixNano(), run.ID), nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("index: put gc run %s: %w", run.ID, err)
	}
	return nil
}

// GCRuns returns up to limit runs, newest first, after the run named after
// (every run when limit <= 0).
func (s *Store) GCRuns(ctx context.Context, limit int, after string) ([]index.GCRun, error) {
	var runs []index.GCRun
	err := s.read(ctx, "gc runs", func(v *view) error {
		p := []byte{pRunTime}
		end := prefixEnd(p)
		if after != "" {
			r, err := v.run(after)
			if err != nil {
				return err
			}
			end = runTimeKey(r.StartedAt.UnixNano(), after)
		}
		return v.scanReverse(p, end, func(k, _ []byte) (bool, error) {
			if limit > 0 && len(runs) == limit {
				return false, nil
			}
			id := string(k[1+sizeTime:])
			r, err := v.run(id)
			if err != nil {
				return false, err
			}
			runs = append(runs, r)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// GCRun returns the run with this ID.
func (s *Store) GCRun(ctx context.Context, id string) (index.GCRun, error) {
	var r index.GCRun
	err := s.read(ctx, "gc run", func(v *view) (err error) {
		r, err = v.run(id)
		return err
	})
	return r, err
}

func (v *view) run(id string) (index.GCRun, error) {
	val, ok, err := getValue(v.r, runKey(id))
	if err != nil {
		return index.GCRun{}, err
	}
	if !ok {
		return index.GCRun{}, fmt.Errorf("%w: gc run %q", index.ErrNotFound, id)
	}
	return decodeRun(id, val)
}

// DeleteExpiredIdempotency removes the records that expired before now.
func (s *Store) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(t *tx) error {
		n = 0
		return t.scan([]byte{pIdemExpiry}, timeBound(pIdemExpiry, now.UnixNano()), func(k, _ []byte) (bool, error) {
			key := string(k[1+sizeTime:])
			t.del(k)
			t.del(idemKey(key))
			n++
			return true, nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("index: delete expired idempotency records: %w", err)
	}
	return n, nil
}

// stream runs fn on a snapshot with a tick that checks ctx every ctxEvery
// items, so that a long walk stops when its caller goes away.
func (s *Store) stream(ctx context.Context, what string, fn func(v *view, tick func() error) error) error {
	n := 0
	tick := func() error {
		n++
		if n%ctxEvery == 0 {
			return ctx.Err()
		}
		return nil
	}
	if err := s.read(ctx, what, func(v *view) error { return fn(v, tick) }); err != nil {
		return fmt.Errorf("index: %s: %w", what, err)
	}
	return nil
}
