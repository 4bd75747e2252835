package gc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// Reports are stored in the index (index.GCRun, as the API's JSON) when a
// sweep begins, every progressEvery while it runs, and when it ends; this
// file owns their storage and the reading back. The phases only fill in
// s.report.

// progressEvery is how often a running sweep stores its report.
const progressEvery = time.Second

// Limits of a page of reports (API.md, "Lists").
const (
	defaultRunsLimit = 100
	maxRunsLimit     = 1000
)

// RunsPage is a page of stored reports, newest first. NextCursor continues
// the list; it is empty on the last page.
type RunsPage struct {
	Items      []Report
	NextCursor string
}

// Runs returns up to limit stored reports (0: 100; at most 1000), newest
// first, from the one after cursor ("" from the newest). A limit out of
// range or a cursor that does not name a stored report is ErrInvalid.
func (c *Collector) Runs(ctx context.Context, limit int, cursor string) (RunsPage, error) {
	if limit == 0 {
		limit = defaultRunsLimit
	}
	if limit < 0 || limit > maxRunsLimit {
		return RunsPage{}, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrInvalid, limit, maxRunsLimit)
	}
	var after string
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) == 0 {
			return RunsPage{}, fmt.Errorf("%w: cursor %q does not parse", ErrInvalid, cursor)
		}
		after = string(b)
	}
	runs, err := c.idx.GCRuns(ctx, limit+1, after)
	if errors.Is(err, index.ErrNotFound) {
		return RunsPage{}, fmt.Errorf("%w: cursor %q names no stored run", ErrInvalid, cursor)
	}
	if err != nil {
		return RunsPage{}, fmt.Errorf("gc: list runs: %w", err)
	}
	page := RunsPage{Items: make([]Report, 0, min(len(runs), limit))}
	for i, r := range runs {
		if i == limit {
			page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(runs[i-1].ID))
			break
		}
		rep, err := decodeReport(r)
		if err != nil {
			return RunsPage{}, err
		}
		page.Items = append(page.Items, rep)
	}
	return page, nil
}

// Run returns the report with this id (in progress or final), or an error
// matching ErrNotFound (and index.ErrNotFound).
func (c *Collector) Run(ctx context.Context, id string) (Report, error) {
	r, err := c.idx.GCRun(ctx, id)
	if errors.Is(err, index.ErrNotFound) {
		return Report{}, fmt.Errorf("%w: %q: %w", ErrNotFound, id, err)
	}
	if err != nil {
		return Report{}, fmt.Errorf("gc: read run %q: %w", id, err)
	}
	return decodeReport(r)
}

func decodeReport(r index.GCRun) (Report, error) {
	var rep Report
	if err := json.Unmarshal(r.Report, &rep); err != nil {
		return Report{}, fmt.Errorf("gc: decode report %q: %w", r.ID, err)
	}
	if rep.Phases == nil {
		rep.Phases = []Phase{}
	}
	return rep, nil
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
	runs, err := s.c.idx.GCRuns(ctx, 20, "")
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

// succeed records the end of a sweep that ran every phase.
func (s *sweep) succeed(ctx context.Context) error {
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
