package gc

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// sweep is one run: its parameters, its report, and its plan's files. Each
// phase is a method that returns the items and bytes it removed (or, dry,
// would remove); run calls them in order and records them in the report
// (runs.go stores it).
type sweep struct {
	c         *Collector
	dry       bool
	force     bool
	retention time.Duration
	grace     time.Duration
	report    Report
	lastPut   time.Time

	candidates *spool // blob plan: hash and size (mark → sweep)
	plan       planStats
}

func (c *Collector) newSweep(req Request, retention, grace time.Duration) *sweep {
	return &sweep{c: c, dry: req.DryRun, force: req.Force, retention: retention, grace: grace}
}

func (s *sweep) close() {
	if s.candidates != nil {
		s.candidates.close()
	}
}

func (s *sweep) note(format string, args ...any) {
	s.report.Notes = append(s.report.Notes, fmt.Sprintf(format, args...))
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
	return s.succeed(ctx)
}

// spoolOf writes what list streams (records of recSize bytes, through
// emit) to a new spool, counting progress. The caller closes the spool.
func (s *sweep) spoolOf(ctx context.Context, recSize int, list func(emit func(rec []byte) error) error) (*spool, error) {
	sp, err := newSpool(s.c.opt.TempDir, recSize)
	if err != nil {
		return nil, err
	}
	err = list(func(rec []byte) error {
		if err := sp.append(rec); err != nil {
			return err
		}
		s.progress(ctx, sp.n)
		return nil
	})
	if err != nil {
		sp.close()
		return nil, err
	}
	return sp, nil
}

// eachBatch reads sp's records back in order, decodes them, and hands them
// to fn in batches of BatchSize: the one loop every phase that acts on a
// plan runs.
func eachBatch[T any](s *sweep, sp *spool, decode func([]byte) T, fn func([]T) error) error {
	r, err := sp.all()
	if err != nil {
		return err
	}
	batch := make([]T, 0, s.c.opt.BatchSize)
	for {
		rec, ok, err := r.next()
		if err != nil {
			return err
		}
		if ok {
			batch = append(batch, decode(rec))
		}
		if len(batch) == cap(batch) || (!ok && len(batch) > 0) {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if !ok {
			return nil
		}
	}
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
	sp, err := s.spoolOf(ctx, versionRecSize, func(emit func([]byte) error) error {
		rec := make([]byte, versionRecSize)
		return s.c.idx.ExpiredVersions(ctx, now, s.retention, func(k index.VersionKey) error {
			encodeVersion(rec, k)
			return emit(rec)
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list expired versions: %w", err)
	}
	defer sp.close()
	if s.dry {
		s.report.VersionsDeleted = sp.n
		return sp.n, 0, nil
	}
	err = eachBatch(s, sp, decodeVersion, func(vs []index.VersionKey) error {
		deleted, err := s.c.idx.DeleteVersions(ctx, now, s.retention, vs)
		if err != nil {
			return fmt.Errorf("delete %d versions: %w", len(vs), err)
		}
		s.report.VersionsDeleted += int64(len(deleted))
		s.progress(ctx, s.report.VersionsDeleted)
		return nil
	})
	return s.report.VersionsDeleted, 0, err
}

// Phase 2: orphaned assets.

func (s *sweep) runOrphans(ctx context.Context) (int64, int64, error) {
	cutoff := s.c.now().Add(-s.grace)
	sp, err := s.spoolOf(ctx, 16, func(emit func([]byte) error) error {
		return s.c.idx.OrphanedAssets(ctx, cutoff, func(id uuid.UUID) error { return emit(id[:]) })
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list orphaned assets: %w", err)
	}
	defer sp.close()
	if s.dry {
		s.report.AssetsDeleted = sp.n
		return sp.n, 0, nil
	}
	err = eachBatch(s, sp, func(b []byte) uuid.UUID { return uuid.UUID(b) }, func(ids []uuid.UUID) error {
		deleted, err := s.c.idx.DeleteOrphans(ctx, cutoff, ids)
		if err != nil {
			return fmt.Errorf("delete %d orphaned assets: %w", len(ids), err)
		}
		s.report.AssetsDeleted += int64(len(deleted))
		s.progress(ctx, s.report.AssetsDeleted)
		return nil
	})
	return s.report.AssetsDeleted, 0, err
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
