package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/gc"
)

// GC is what the API needs of the garbage collector; *gc.Collector
// satisfies it. Errors: gc.ErrRunning while a sweep runs anywhere (409),
// gc.ErrNotFound for an unknown run (404), gc.ErrInvalid (400: a bad
// duration, limit or cursor).
type GC interface {
	// Sweep runs a sweep and returns its report when it ends.
	Sweep(ctx context.Context, req gc.Request) (gc.Report, error)
	// Start begins a sweep in the background and returns its id at once.
	Start(ctx context.Context, req gc.Request) (string, error)
	// Runs returns a page of up to limit recent reports, newest first,
	// continuing after cursor.
	Runs(ctx context.Context, limit int, cursor string) (gc.RunsPage, error)
	// Run returns one report, with its progress while the sweep runs.
	Run(ctx context.Context, id string) (gc.Report, error)
}

var _ GC = (*gc.Collector)(nil)

func (a *api) runGC(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if a.opt.GC == nil {
		return ErrGCNotConfigured
	}
	var in struct {
		DryRun    bool    `json:"dry_run"`
		Retention *string `json:"retention"`
		Grace     *string `json:"grace"`
		Wait      *bool   `json:"wait"`
		Force     bool    `json:"force"`
	}
	if _, err := decodeJSON(r, a.opt.MaxJSONBytes, true, &in); err != nil {
		return err
	}
	req := gc.Request{DryRun: in.DryRun, Force: in.Force}
	var err error
	if req.Retention, err = duration("retention", in.Retention); err != nil {
		return err
	}
	if req.Grace, err = duration("grace", in.Grace); err != nil {
		return err
	}
	if in.Wait != nil && !*in.Wait {
		id, err := a.opt.GC.Start(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, r, http.StatusAccepted, struct {
			ID string `json:"id"`
		}{id})
	}
	// The sweep is detached from the request: a client or a load balancer
	// that gives up waiting must not stop it halfway (it goes on and stores
	// its report; GET /api/v1/gc/runs shows it). Closing the collector still
	// stops it.
	rep, err := a.opt.GC.Sweep(context.WithoutCancel(r.Context()), req)
	if errors.Is(err, gc.ErrMassDelete) {
		// The sweep ran and refused to delete: its report says why.
		return writeJSON(w, r, http.StatusOK, rep)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, rep)
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
	page, err := a.opt.GC.Runs(r.Context(), opt.Limit, opt.Cursor)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, listJSON[gc.Report]{Items: page.Items, NextCursor: page.NextCursor})
}

func (a *api) gcRun(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	if a.opt.GC == nil {
		return ErrGCNotConfigured
	}
	rep, err := a.opt.GC.Run(r.Context(), p.ByName("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, rep)
}
