package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/index"
)

// Stats is what GET /api/v1/stats and GET /api/v1/collections/{uuid}/stats
// need beyond the refs service: the figures that have no other endpoint.
// The process that opens the stores fills it in (internal/app); httpapi
// never learns which backends they are beyond Deployment's names.
type Stats struct {
	// Deployment names the engines, without secrets.
	Deployment Deployment
	// Index counts and sums; nil answers totals as null and collection
	// stats as 503.
	Index index.Stats
	// PingIndex and PingBlobs say whether each store answers; nil is ready.
	PingIndex, PingBlobs func(ctx context.Context) error
}

// Deployment names where the index and the blobs live. It never holds a
// secret: no password, no key, no full database URL.
type Deployment struct {
	// Kind is "embedded" (Pebble and a directory), "production" (PostgreSQL
	// and S3) or "mixed" (one of each).
	Kind string `json:"kind"`
	// Index is "pebble" or "postgresql"; IndexLocation the directory, or
	// the database's host, port and name.
	Index         string `json:"index"`
	IndexLocation string `json:"index_location"`
	// Blobs is "directory" or "s3"; BlobsLocation the directory, or the
	// endpoint, bucket and prefix.
	Blobs         string `json:"blobs"`
	BlobsLocation string `json:"blobs_location"`
}

// Access is what the caller's token may do, as GET /api/v1/stats reports
// it so that a client (the console) can disable what it may not call.
type Access string

const (
	// AccessWrite: everything (the write token, or a server without tokens).
	AccessWrite Access = "write"
	// AccessRead: GET, HEAD and the read-only POSTs (the read token).
	AccessRead Access = "read"
)

type accessKey struct{}

// WithAccess returns ctx carrying the caller's access, set by whatever
// checks tokens in front of the API.
func WithAccess(ctx context.Context, a Access) context.Context {
	return context.WithValue(ctx, accessKey{}, a)
}

// AccessOf returns the access WithAccess stored in ctx; AccessWrite when
// none was (nothing checks tokens, so the caller may do everything).
func AccessOf(ctx context.Context) Access {
	if a, ok := ctx.Value(accessKey{}).(Access); ok {
		return a
	}
	return AccessWrite
}

type readinessJSON struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

type totalsJSON struct {
	Collections     int64 `json:"collections"`
	Units           int64 `json:"units"`
	Assets          int64 `json:"assets"`
	Versions        int64 `json:"versions"`
	Blobs           int64 `json:"blobs"`
	StoredBytes     int64 `json:"stored_bytes"`
	ReferencedBytes int64 `json:"referenced_bytes"`
}

type statsJSON struct {
	Deployment Deployment `json:"deployment"`
	Access     Access     `json:"access"`
	Readiness  struct {
		Index readinessJSON `json:"index"`
		Blobs readinessJSON `json:"blobs"`
	} `json:"readiness"`
	// Totals is null when the index engine keeps none or did not answer.
	Totals      *totalsJSON `json:"totals"`
	TotalsError string      `json:"totals_error,omitempty"`
	// LastGC is the newest sweep's report (running or finished), or null.
	LastGC *gc.Report `json:"last_gc"`
}

// stats answers GET /api/v1/stats: the deployment, each store's readiness,
// the index's totals and the last sweep. A store that does not answer is
// reported in the body, not as an error: the page that shows it is most
// needed then.
func (a *api) stats(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Cache-Control", "no-store")
	st := a.opt.Stats
	var out statsJSON
	out.Deployment = st.Deployment
	out.Access = AccessOf(r.Context())
	out.Readiness.Index = readiness(r.Context(), st.PingIndex)
	out.Readiness.Blobs = readiness(r.Context(), st.PingBlobs)
	if st.Index != nil && out.Readiness.Index.Ready {
		t, err := st.Index.Totals(r.Context())
		if err != nil {
			a.log.Warn("stats: totals", "error", err)
			out.TotalsError = errorOf(fmt.Errorf("totals: %w", err)).Message
		} else {
			out.Totals = &totalsJSON{
				Collections: t.Collections, Units: t.Units, Assets: t.Assets, Versions: t.Versions,
				Blobs: t.Blobs, StoredBytes: t.StoredBytes, ReferencedBytes: t.ReferencedBytes,
			}
		}
	}
	if a.opt.GC != nil && out.Readiness.Index.Ready {
		runs, err := a.opt.GC.Runs(r.Context(), 1, "")
		if err != nil {
			return err
		}
		if len(runs.Items) > 0 {
			out.LastGC = &runs.Items[0]
		}
	}
	return writeJSON(w, r, http.StatusOK, out)
}

func readiness(ctx context.Context, ping func(context.Context) error) readinessJSON {
	if ping == nil {
		return readinessJSON{Ready: true}
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := ping(ctx); err != nil {
		// errorOf keeps internals (endpoints, addresses) out of the message.
		return readinessJSON{Error: errorOf(err).Message}
	}
	return readinessJSON{Ready: true}
}

type collectionStatsJSON struct {
	Units  int64 `json:"units"`
	Assets int64 `json:"assets"`
	Bytes  int64 `json:"bytes"`
}

// collectionStats answers GET /api/v1/collections/{uuid}/stats: the count
// of units and assets with a published version and the sum of the sizes of
// their latest versions.
func (a *api) collectionStats(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id, err := uuidParam(p)
	if err != nil {
		return err
	}
	if a.opt.Stats.Index == nil {
		return fmt.Errorf("%w: this index engine keeps no collection stats", index.ErrUnavailable)
	}
	t, err := a.opt.Stats.Index.CollectionTotals(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, collectionStatsJSON{Units: t.Units, Assets: t.Assets, Bytes: t.Bytes})
}
