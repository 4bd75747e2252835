package gc

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// progressEvery is how often a running sweep stores its report.
const progressEvery = time.Second

// A batch of blobs is deleted by up to deleteWorkers concurrent DeleteMany
// calls of at least minDeleteChunk blobs each.
const (
	deleteWorkers  = 4
	minDeleteChunk = 64
)

// sweep is one run: its parameters, its report, and its plan's files.
type sweep struct {
	c         *Collector
	dry       bool
	retention time.Duration
	grace     time.Duration
	report    Report
	lastPut   time.Time

	expired    *spool // retention plan: version keys
	orphans    *spool // orphans plan: asset ids
	candidates *spool // blob plan: hash and size
	plan       planStats
}

func (c *Collector) newSweep(dry bool, retention, grace time.Duration) *sweep {
	return &sweep{c: c, dry: dry, retention: retention, grace: grace}
}

func (s *sweep) close() {
	for _, sp := range []*spool{s.expired, s.orphans, s.candidates} {
		if sp != nil {
			sp.close()
		}
	}
}

func (s *sweep) note(format string, args ...any) {
	s.report.Notes = append(s.report.Notes, fmt.Sprintf(format, args...))
}

// begin fills in the report, marks reports of dead sweeps as failed, and
// stores the first report. The caller holds the lock.
func (s *sweep) begin(ctx context.Context) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("gc: new run id: %w", err)
	}
	s.report = Report{
		ID:        id.String(),
		DryRun:    s.dry,
		StartedAt: s.c.now().UTC(),
		Phases:    []Phase{},
		Status:    StatusRunning,
		Retention: s.retention.String(),
		Grace:     s.grace.String(),
		Progress:  &Progress{},
	}
	s.abandonDead(ctx)
	if err := s.put(ctx); err != nil {
		return err
	}
	s.c.metrics.started(s.dry)
	s.c.log.Info("gc: sweep started", "id", s.report.ID, "dry_run", s.dry,
		"retention", s.retention, "grace", s.grace)
	return nil
}

// abandonDead marks as failed the reports still running: this sweep holds
// the lock, so their sweeps are dead (their process stopped). Failing to do
// so is only logged: the reports are informational.
func (s *sweep) abandonDead(ctx context.Context) {
	runs, err := s.c.idx.GCRuns(ctx, 20)
	if err != nil {
		s.c.log.Warn("gc: list runs", "err", err)
		return
	}
	for _, r := range runs {
		rep, err := decodeReport(r)
		if err != nil || rep.Status != StatusRunning {
			continue
		}
		now := s.c.now().UTC()
		rep.Status = StatusFailed
		rep.Error = "the sweep stopped before it finished (its process ended); the next sweep completed its work"
		rep.FinishedAt = &now
		rep.Progress = nil
		b, err := json.Marshal(rep)
		if err == nil {
			err = s.c.idx.PutGCRun(ctx, index.GCRun{ID: rep.ID, StartedAt: rep.StartedAt, Report: b})
		}
		if err != nil {
			s.c.log.Warn("gc: mark dead run as failed", "id", rep.ID, "err", err)
		}
	}
}

// put stores the report as it stands.
func (s *sweep) put(ctx context.Context) error {
	b, err := json.Marshal(s.report)
	if err != nil {
		return fmt.Errorf("gc: encode report: %w", err)
	}
	if err := s.c.idx.PutGCRun(ctx, index.GCRun{ID: s.report.ID, StartedAt: s.report.StartedAt, Report: b}); err != nil {
		return fmt.Errorf("gc: store report %s: %w", s.report.ID, err)
	}
	s.lastPut = time.Now()
	return nil
}

// progress records that items were handled in the current phase, storing
// the report at most every progressEvery.
func (s *sweep) progress(ctx context.Context, items int64) {
	if s.report.Progress == nil {
		return
	}
	s.report.Progress.Items = items
	if time.Since(s.lastPut) < progressEvery {
		return
	}
	if err := s.put(ctx); err != nil {
		s.c.log.Warn("gc: store progress", "id", s.report.ID, "err", err)
	}
}

type phaseFunc func(ctx context.Context) (items, bytes int64, err error)

// run runs the phases in order and stores the final report.
func (s *sweep) run(ctx context.Context) error {
	phases := []struct {
		name string
		fn   phaseFunc
	}{
		{PhaseRetention, s.runRetention},
		{PhaseOrphans, s.runOrphans},
		{PhaseResume, s.runResume},
		{PhaseMark, s.runMark},
		{PhaseSweep, s.runSweep},
		{PhaseCleanup, s.runCleanup},
	}
	for _, p := range phases {
		if err := ctx.Err(); err != nil {
			return s.fail(ctx, fmt.Errorf("gc: before %s: %w", p.name, err))
		}
		s.report.Progress = &Progress{Phase: p.name}
		if err := s.put(ctx); err != nil {
			return s.fail(ctx, err)
		}
		start := time.Now()
		items, bytes, err := p.fn(ctx)
		d := time.Since(start)
		s.report.Phases = append(s.report.Phases, Phase{Name: p.name, Seconds: d.Seconds(), Items: items, Bytes: bytes})
		s.c.metrics.phase(p.name, d)
		if err != nil {
			return s.fail(ctx, fmt.Errorf("gc: %s: %w", p.name, err))
		}
	}
	now := s.c.now().UTC()
	s.report.FinishedAt = &now
	s.report.Status = StatusSucceeded
	s.report.Progress = nil
	if err := s.put(ctx); err != nil {
		s.c.metrics.finished(&s.report, false)
		s.c.log.Error("gc: sweep finished but its report was not stored", "id", s.report.ID, "err", err)
		return err
	}
	s.c.metrics.finished(&s.report, true)
	s.c.log.Info("gc: sweep finished", "id", s.report.ID, "dry_run", s.dry,
		"versions_deleted", s.report.VersionsDeleted, "assets_deleted", s.report.AssetsDeleted,
		"blobs_deleted", s.report.BlobsDeleted, "bytes_freed", s.report.BytesFreed,
		"blobs_kept", s.report.BlobsKept)
	return nil
}

// fail records err in the report (with a context that outlives ctx's
// cancellation) and returns it.
func (s *sweep) fail(ctx context.Context, err error) error {
	now := s.c.now().UTC()
	s.report.FinishedAt = &now
	s.report.Status = StatusFailed
	s.report.Error = err.Error()
	s.report.Progress = nil
	s.c.metrics.finished(&s.report, false)
	s.c.log.Error("gc: sweep failed", "id", s.report.ID, "err", err)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if perr := s.put(pctx); perr != nil {
		s.c.log.Error("gc: store failed report", "id", s.report.ID, "err", perr)
	}
	return err
}

// Phase 1: retention.

const versionRecSize = 1 + 16 + 8

func encodeVersion(b []byte, k index.VersionKey) {
	b[0] = byte(k.Kind)
	copy(b[1:], k.ID[:])
	binary.BigEndian.PutUint64(b[17:], uint64(k.Version))
}

func decodeVersion(b []byte) index.VersionKey {
	k := index.VersionKey{Kind: index.Kind(b[0]), Version: int64(binary.BigEndian.Uint64(b[17:]))}
	copy(k.ID[:], b[1:17])
	return k
}

func (s *sweep) runRetention(ctx context.Context) (int64, int64, error) {
	now := s.c.now()
	sp, err := newSpool(s.c.opt.TempDir, versionRecSize)
	if err != nil {
		return 0, 0, err
	}
	s.expired = sp
	rec := make([]byte, versionRecSize)
	err = s.c.idx.ExpiredVersions(ctx, now, s.retention, func(k index.VersionKey) error {
		encodeVersion(rec, k)
		if err := sp.append(rec); err != nil {
			return err
		}
		s.progress(ctx, sp.n)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list expired versions: %w", err)
	}
	if s.dry {
		s.report.VersionsDeleted = sp.n
		return sp.n, 0, nil
	}
	r, err := sp.all()
	if err != nil {
		return 0, 0, err
	}
	batch := make([]index.VersionKey, 0, s.c.opt.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		deleted, err := s.c.idx.DeleteVersions(ctx, now, s.retention, batch)
		if err != nil {
			return fmt.Errorf("delete %d versions: %w", len(batch), err)
		}
		s.report.VersionsDeleted += int64(len(deleted))
		batch = batch[:0]
		s.progress(ctx, s.report.VersionsDeleted)
		return nil
	}
	for {
		rec, ok, err := r.next()
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			break
		}
		batch = append(batch, decodeVersion(rec))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	return s.report.VersionsDeleted, 0, nil
}

// Phase 2: orphaned assets.

func (s *sweep) runOrphans(ctx context.Context) (int64, int64, error) {
	cutoff := s.c.now().Add(-s.grace)
	sp, err := newSpool(s.c.opt.TempDir, 16)
	if err != nil {
		return 0, 0, err
	}
	s.orphans = sp
	err = s.c.idx.OrphanedAssets(ctx, cutoff, func(id uuid.UUID) error {
		if err := sp.append(id[:]); err != nil {
			return err
		}
		s.progress(ctx, sp.n)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list orphaned assets: %w", err)
	}
	if s.dry {
		s.report.AssetsDeleted = sp.n
		return sp.n, 0, nil
	}
	r, err := sp.all()
	if err != nil {
		return 0, 0, err
	}
	batch := make([]uuid.UUID, 0, s.c.opt.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		deleted, err := s.c.idx.DeleteOrphans(ctx, cutoff, batch)
		if err != nil {
			return fmt.Errorf("delete %d orphaned assets: %w", len(batch), err)
		}
		s.report.AssetsDeleted += int64(len(deleted))
		batch = batch[:0]
		s.progress(ctx, s.report.AssetsDeleted)
		return nil
	}
	for {
		rec, ok, err := r.next()
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			break
		}
		batch = append(batch, uuid.UUID(rec))
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	return s.report.AssetsDeleted, 0, nil
}

// Phase 3a: resume. Rows in BlobDeleting were claimed by a sweep that did
// not finish: nothing can reference them any more (commits naming them
// fail), so their bytes are deleted and then the rows forgotten.

func (s *sweep) runResume(ctx context.Context) (int64, int64, error) {
	sp, err := newSpool(s.c.opt.TempDir, candidateRecSize)
	if err != nil {
		return 0, 0, err
	}
	defer sp.close()
	rec := make([]byte, candidateRecSize)
	err = s.c.idx.DeletingBlobs(ctx, func(b index.Blob) error {
		encodeCandidate(rec, b.Hash, max(b.Size, 0))
		return sp.append(rec)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list blobs being deleted: %w", err)
	}
	if sp.n > 0 {
		s.c.log.Info("gc: finishing the deletions of a sweep that stopped", "blobs", sp.n)
	}
	items, bytes, err := s.eachBatch(ctx, sp, func(hs []cas.Hash, sizes map[cas.Hash]int64) (int64, int64, error) {
		var n, b int64
		for _, h := range hs {
			n++
			b += sizes[h]
		}
		if s.dry {
			return n, b, nil
		}
		if err := s.deleteAndForget(ctx, hs); err != nil {
			return 0, 0, err
		}
		return n, b, nil
	})
	s.report.BlobsDeleted += items
	s.report.BytesFreed += bytes
	return items, bytes, err
}

// checkLock stops the sweep when its lock is gone (LockChecker).
func (s *sweep) checkLock(ctx context.Context) error {
	if lc, ok := s.c.idx.(LockChecker); ok {
		if err := lc.CheckGCLock(ctx); err != nil {
			return fmt.Errorf("stopped: the sweep lock was lost: %w", err)
		}
	}
	return nil
}

// deleteAndForget deletes the bytes of claimed blobs, then their rows: in
// this order, so that a row in BlobDeleting stands for bytes that may still
// exist until they are certainly gone.
func (s *sweep) deleteAndForget(ctx context.Context, hs []cas.Hash) error {
	if err := s.checkLock(ctx); err != nil {
		return err
	}
	// Deletions are independent: a few calls at once hide the latency of
	// each (a file system's unlink, an S3 round trip).
	chunk := max(minDeleteChunk, (len(hs)+deleteWorkers-1)/deleteWorkers)
	var wg sync.WaitGroup
	errs := make([]error, 0, deleteWorkers)
	var mu sync.Mutex
	for from := 0; from < len(hs); from += chunk {
		part := hs[from:min(from+chunk, len(hs))]
		wg.Go(func() {
			if err := s.c.blobs.DeleteMany(ctx, part); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete %d blobs from the blob store: %w", len(hs), err)
	}
	if err := s.c.idx.ForgetBlobs(ctx, hs); err != nil {
		return fmt.Errorf("forget %d blobs: %w", len(hs), err)
	}
	return nil
}

// eachBatch reads a spool of candidates in batches of BatchSize and sums
// what fn returns; progress counts the items handled.
func (s *sweep) eachBatch(ctx context.Context, sp *spool, fn func(hs []cas.Hash, sizes map[cas.Hash]int64) (int64, int64, error)) (int64, int64, error) {
	r, err := sp.all()
	if err != nil {
		return 0, 0, err
	}
	var items, bytes int64
	hs := make([]cas.Hash, 0, s.c.opt.BatchSize)
	sizes := make(map[cas.Hash]int64, s.c.opt.BatchSize)
	flush := func() error {
		if len(hs) == 0 {
			return nil
		}
		n, b, err := fn(hs, sizes)
		items += n
		bytes += b
		if err != nil {
			return err
		}
		hs = hs[:0]
		clear(sizes)
		s.progress(ctx, items)
		return nil
	}
	for {
		rec, ok, err := r.next()
		if err != nil {
			return items, bytes, err
		}
		if !ok {
			break
		}
		h, size := decodeCandidate(rec)
		if _, dup := sizes[h]; !dup {
			hs = append(hs, h)
		}
		sizes[h] = size
		if len(hs) == cap(hs) {
			if err := flush(); err != nil {
				return items, bytes, err
			}
		}
	}
	return items, bytes, flush()
}

// Phase 3b: mark. The plan joins three streams sorted by hash — the
// registry's rows, the hashes stored versions reference, and the blob
// store's contents (walked in no order, so sorted through temporary files
// first) — and writes the candidates to a file. Memory stays constant.

func (s *sweep) runMark(ctx context.Context) (int64, int64, error) {
	// The walk comes first: bytes it sees were registered (BeginBlob) before
	// they were written, so the registry stream that follows has their row
	// unless a sweep forgot it, which makes them strays.
	sorter := newStoredSorter(s.c.opt.TempDir, s.c.runLen)
	defer sorter.close()
	var walked int64
	err := s.c.blobs.Walk(ctx, func(in cas.Info) error {
		walked++
		s.progress(ctx, walked)
		return sorter.add(in)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("walk the blob store: %w", err)
	}
	stored, err := sorter.sorted()
	if err != nil {
		return 0, 0, err
	}

	refs, err := newSpool(s.c.opt.TempDir, cas.HashSize)
	if err != nil {
		return 0, 0, err
	}
	defer refs.close()
	var last cas.Hash
	err = s.c.idx.ReferencedHashes(ctx, func(h cas.Hash) error {
		if refs.n > 0 {
			if h == last {
				return nil
			}
			if less(h, last) {
				return fmt.Errorf("referenced hashes out of order: %s after %s", h, last)
			}
		}
		last = h
		return refs.append(h[:])
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list referenced hashes: %w", err)
	}
	refsReader, err := refs.all()
	if err != nil {
		return 0, 0, err
	}

	unref, err := s.dryRunUnreferenced(ctx)
	if err != nil {
		return 0, 0, err
	}

	cand, err := newSpool(s.c.opt.TempDir, candidateRecSize)
	if err != nil {
		return 0, 0, err
	}
	s.candidates = cand
	rec := make([]byte, candidateRecSize)
	p := &blobPlanner{
		refs:   spoolHashes{refsReader},
		stored: stored,
		cutoff: s.c.now().Add(-s.grace),
		unref:  unref,
		emit: func(h cas.Hash, size int64) error {
			encodeCandidate(rec, h, size)
			return cand.append(rec)
		},
	}
	var rows int64
	err = s.c.idx.Blobs(ctx, func(b index.Blob) error {
		rows++
		s.progress(ctx, rows)
		return p.row(b)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("join the registry with references and the blob store: %w", err)
	}
	if err := p.finish(); err != nil {
		return 0, 0, err
	}
	s.plan = p.stats
	s.report.BlobsKept = p.stats.kept()
	if p.anomaly > 0 {
		s.note("%d referenced blobs are in the blob store without a registry row; kept (run verify)", p.anomaly)
	}
	return p.stats.Candidates, p.stats.CandidateBytes, nil
}

// Phase 3c: sweep. Each batch of candidates is claimed (the index re-checks
// references and leases atomically against commits and moves the rows to
// BlobDeleting), the claimed bytes are deleted, then their rows forgotten.
// Candidates the index refuses to claim (a commit or a lease came after the
// plan) are kept.

func (s *sweep) runSweep(ctx context.Context) (int64, int64, error) {
	if s.dry {
		s.report.BlobsDeleted += s.plan.Candidates
		s.report.BytesFreed += s.plan.CandidateBytes
		return s.plan.Candidates, s.plan.CandidateBytes, nil
	}
	var kept int64
	items, bytes, err := s.eachBatch(ctx, s.candidates, func(hs []cas.Hash, sizes map[cas.Hash]int64) (int64, int64, error) {
		if err := s.checkLock(ctx); err != nil {
			return 0, 0, err
		}
		claimed, err := s.c.idx.ClaimBlobs(ctx, hs, s.c.now().Add(-s.grace))
		if err != nil {
			return 0, 0, fmt.Errorf("claim %d blobs: %w", len(hs), err)
		}
		kept += int64(len(hs) - len(claimed))
		if len(claimed) == 0 {
			return 0, 0, nil
		}
		ch := make([]cas.Hash, len(claimed))
		var b int64
		for i, row := range claimed {
			ch[i] = row.Hash
			if row.Size >= 0 {
				b += row.Size
			} else {
				b += sizes[row.Hash]
			}
		}
		if err := s.deleteAndForget(ctx, ch); err != nil {
			return 0, 0, err
		}
		return int64(len(claimed)), b, nil
	})
	s.report.BlobsDeleted += items
	s.report.BytesFreed += bytes
	s.report.BlobsKept += kept
	return items, bytes, err
}

// Cleanup: temporary data in the blob store, expired idempotency records.

func (s *sweep) runCleanup(ctx context.Context) (int64, int64, error) {
	if s.dry {
		s.note("a dry run does not count temporary data or expired idempotency records")
		return 0, 0, nil
	}
	items, bytes, err := s.c.blobs.CleanTemp(ctx, max(s.grace, minTempAge))
	if err != nil {
		return 0, 0, fmt.Errorf("clean temporary data: %w", err)
	}
	s.report.TempItemsDeleted = int64(items)
	s.report.TempBytesFreed = bytes
	n, err := s.c.idx.DeleteExpiredIdempotency(ctx, s.c.now())
	if err != nil {
		return int64(items), bytes, fmt.Errorf("delete expired idempotency records: %w", err)
	}
	s.report.IdempotencyDeleted = int64(n)
	if err := s.pruneChanges(ctx); err != nil {
		return int64(items + n), bytes, err
	}
	return int64(items + n), bytes, nil
}

// dryRunUnreferenced returns, in a dry run on an index that can count
// references, a function that says which referenced hashes the versions and
// assets the sweep would delete leave unreferenced; else nil.
func (s *sweep) dryRunUnreferenced(ctx context.Context) (func(cas.Hash) bool, error) {
	if !s.dry || (s.expired.n == 0 && s.orphans.n == 0) {
		return nil, nil
	}
	rc, ok1 := s.c.idx.(ReferenceCounter)
	vr, ok2 := s.c.idx.(versionReader)
	if !ok1 || !ok2 {
		s.note("dry run: blobs named only by the versions and assets this sweep would delete are not counted (the index engine cannot count references); a real sweep frees them too")
		return nil, nil
	}
	// named counts, per hash, the versions this sweep would delete.
	named := make(map[cas.Hash]int64)
	seen := make(map[index.VersionKey]bool)
	r, err := s.expired.all()
	if err != nil {
		return nil, err
	}
	var keys []index.VersionKey
	lookup := func() error {
		if len(keys) == 0 {
			return nil
		}
		refs := make([]index.Ref, len(keys))
		for i, k := range keys {
			refs[i] = index.Ref{ID: k.ID, Version: k.Version}
		}
		ents, err := vr.Lookup(ctx, refs)
		if err != nil {
			return fmt.Errorf("dry run: look up %d expired versions: %w", len(refs), err)
		}
		for i, e := range ents {
			switch {
			case e.Unit != nil:
				named[e.Unit.Hash]++
			case e.Asset != nil:
				named[e.Asset.Hash]++
			default:
				continue
			}
			seen[keys[i]] = true
		}
		keys = keys[:0]
		return nil
	}
	for {
		rec, ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		k := decodeVersion(rec)
		if k.Kind != index.KindUnit && k.Kind != index.KindAsset {
			continue
		}
		keys = append(keys, k)
		if len(keys) == index.MaxLimit {
			if err := lookup(); err != nil {
				return nil, err
			}
		}
	}
	if err := lookup(); err != nil {
		return nil, err
	}
	r, err = s.orphans.all()
	if err != nil {
		return nil, err
	}
	for {
		rec, ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		id := uuid.UUID(rec)
		opt := index.ListOptions{Limit: index.MaxLimit}
		for {
			page, err := vr.AssetVersions(ctx, id, opt)
			if errors.Is(err, index.ErrNotFound) {
				break // draft-only, or gone
			}
			if err != nil {
				return nil, fmt.Errorf("dry run: list versions of asset %s: %w", id, err)
			}
			for _, a := range page.Items {
				if k := (index.VersionKey{Kind: index.KindAsset, ID: id, Version: a.Version}); !seen[k] {
					seen[k] = true
					named[a.Hash]++
				}
			}
			if page.NextCursor == "" {
				break
			}
			opt.Cursor = page.NextCursor
		}
		a, err := vr.Asset(ctx, index.Ref{ID: id, Draft: true})
		switch {
		case err == nil:
			named[a.Hash]++
		case !errors.Is(err, index.ErrNotFound):
			return nil, fmt.Errorf("dry run: read draft of asset %s: %w", id, err)
		}
	}
	freed := make(map[cas.Hash]bool)
	hs := make([]cas.Hash, 0, s.c.opt.BatchSize)
	count := func() error {
		if len(hs) == 0 {
			return nil
		}
		counts, err := rc.ReferenceCounts(ctx, hs)
		if err != nil {
			return fmt.Errorf("dry run: count references of %d blobs: %w", len(hs), err)
		}
		for _, h := range hs {
			if counts[h] <= named[h] {
				freed[h] = true
			}
		}
		hs = hs[:0]
		return nil
	}
	for h := range named {
		hs = append(hs, h)
		if len(hs) == cap(hs) {
			if err := count(); err != nil {
				return nil, err
			}
		}
	}
	if err := count(); err != nil {
		return nil, err
	}
	return func(h cas.Hash) bool { return freed[h] }, nil
}
