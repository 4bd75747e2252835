package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
)

// GC is what the API needs of the garbage collector (package gc provides
// it). Errors: index.ErrConflict while a sweep runs anywhere (409),
// index.ErrNotFound for an unknown run (404).
type GC interface {
	// Run starts a sweep. With req.Wait it returns when the sweep has ended,
	// with its final report; otherwise it returns at once, with the run's ID
	// (and whatever of the report is known).
	Run(ctx context.Context, req GCRequest) (GCRun, error)
	// Runs returns up to limit recent runs, newest first.
	Runs(ctx context.Context, limit int) ([]GCRun, error)
	// RunByID returns one run, with its progress while it runs.
	RunByID(ctx context.Context, id string) (GCRun, error)
}

// GCRequest is the body of POST /api/v1/gc. Nil durations take the
// server's configuration.
type GCRequest struct {
	DryRun    bool
	Retention *time.Duration
	Grace     *time.Duration
	Wait      bool
}

// GCRun is one sweep: its ID and its report, the JSON object of API.md
// ({"id", "dry_run", "started_at", …}), served as it is.
type GCRun struct {
	ID     string
	Report json.RawMessage
}

func (a *api) runGC(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.opt.GC == nil {
		return ErrGCNotConfigured
	}
	var in struct {
		DryRun    bool    `json:"dry_run"`
		Retention *string `json:"retention"`
		Grace     *string `json:"grace"`
		Wait      *bool   `json:"wait"`
	}
	if _, err := decodeJSON(r, a.opt.MaxJSONBytes, true, &in); err != nil {
		return err
	}
	req := GCRequest{DryRun: in.DryRun, Wait: in.Wait == nil || *in.Wait}
	var err error
	if req.Retention, err = duration("retention", in.Retention); err != nil {
		return err
	}
	if req.Grace, err = duration("grace", in.Grace); err != nil {
		return err
	}
	run, err := a.opt.GC.Run(r.Context(), req)
	if err != nil {
		return err
	}
	if !req.Wait {
		return writeJSON(w, r, http.StatusAccepted, struct {
			ID string `json:"id"`
		}{run.ID})
	}
	return writeRaw(w, r, http.StatusOK, run.Report)
}

func duration(name string, s *string) (*time.Duration, error) {
	if s == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d < 0 {
		return nil, badRequest("%s must be a duration such as \"720h\", not %q", name, *s)
	}
	return &d, nil
}

func (a *api) gcRuns(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.opt.GC == nil {
		return ErrGCNotConfigured
	}
	opt, err := listOptions(r)
	if err != nil {
		return err
	}
	limit := opt.Limit
	if limit == 0 {
		limit = 100
	}
	runs, err := a.opt.GC.Runs(r.Context(), limit)
	if err != nil {
		return err
	}
	items := make([]json.RawMessage, len(runs))
	for i, run := range runs {
		items[i] = run.Report
	}
	return writeJSON(w, r, http.StatusOK, listJSON[json.RawMessage]{Items: items})
}

func (a *api) gcRun(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if a.opt.GC == nil {
		return ErrGCNotConfigured
	}
	run, err := a.opt.GC.RunByID(r.Context(), p.ByName("id"))
	if err != nil {
		return err
	}
	return writeRaw(w, r, http.StatusOK, run.Report)
}

// writeRaw sends a JSON document that is already encoded.
func writeRaw(w http.ResponseWriter, r *http.Request, status int, doc json.RawMessage) error {
	if !json.Valid(doc) {
		return fmt.Errorf("httpapi: the garbage collector gave a report that is not JSON")
	}
	writeBody(w, r, status, append(doc, '\n'))
	return nil
}
