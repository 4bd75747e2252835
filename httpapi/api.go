package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

// Defaults of Options.
const (
	DefaultMaxJSONBytes     = 16 << 20
	DefaultMaxResolveRefs   = 1000
	DefaultMaxMissingHashes = 10000
)

// Options configure the API handler. The zero value serves API.md's defaults.
type Options struct {
	// MaxJSONBytes bounds a JSON request body; 0 is DefaultMaxJSONBytes.
	MaxJSONBytes int64
	// MaxResolveRefs bounds the refs of one POST /resolve; 0 is DefaultMaxResolveRefs.
	MaxResolveRefs int
	// MaxMissingHashes bounds the hashes of one POST /blobs/missing; 0 is
	// DefaultMaxMissingHashes.
	MaxMissingHashes int
	// MaxUploadBytes bounds blob and asset bodies; 0 is unlimited.
	MaxUploadBytes int64
	// Logger receives server errors (5xx) and, at debug level, refusals;
	// nil discards them.
	Logger *slog.Logger
	// GC runs sweeps for POST /api/v1/gc and reports them; nil answers 503.
	GC GC
	// Changes serves the change feed (changes.go); nil answers 503.
	Changes Changes
	// Backup writes the stream of POST /api/v1/backup; nil refuses it (400).
	Backup Backup
	// Stats serves GET /api/v1/stats and /collections/{uuid}/stats.
	Stats Stats
	// Extra routes served beside the API's (/metrics, /api/v1/openapi.json).
	// A GET route also answers HEAD.
	Extra []Route
	// Wrap, when set, wraps the handler of every route (metrics, tracing);
	// pattern is the route's path pattern, e.g. "/api/v1/units/:uuid".
	Wrap func(method, pattern string, h http.Handler) http.Handler
}

// Route is one method and path pattern (httprouter syntax) with its handler.
type Route struct {
	Method, Pattern string
	Handler         http.Handler
}

// Endpoint is one method and path pattern that the API serves.
type Endpoint struct {
	Method, Pattern string
}

// api holds what the handlers share.
type api struct {
	svc *refs.Service
	opt Options
	log *slog.Logger
}

// handlerFunc is an API handler: it decodes, calls one service method and
// encodes; an error it returns is answered by writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error

// listByID is the handler of a list under {uuid}: ?limit and ?cursor (and
// ?name= when named), one page from list, written through view.
func listByID[T, J any](list func(context.Context, uuid.UUID, index.ListOptions) (index.Page[T], error),
	view func(index.Page[T]) listJSON[J], named bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
		id, err := uuidParam(p)
		if err != nil {
			return err
		}
		opt, err := listOptions(r)
		if err != nil {
			return err
		}
		if named {
			nameFilter(r, &opt)
		}
		page, err := list(r.Context(), id, opt)
		if err != nil {
			return err
		}
		return writeJSON(w, r, http.StatusOK, view(page))
	}
}

// linkedBy lists the units whose latest version links to a target of kind.
func (a *api) linkedBy(kind index.Kind) func(context.Context, uuid.UUID, index.ListOptions) (index.Page[index.LinkingUnit], error) {
	return func(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
		return a.svc.LinkedBy(ctx, kind, id, opt)
	}
}

// deleteByID is the handler of a DELETE of the entity (or draft) named by
// {uuid}: 204 once del succeeds.
func deleteByID(del func(ctx context.Context, id uuid.UUID) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
		id, err := uuidParam(p)
		if err != nil {
			return err
		}
		if err := del(r.Context(), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type route struct {
	method, pattern string
	h               handlerFunc
}

// routes is the API's routing table. Every GET also answers HEAD (added by
// New, except where a HEAD of its own is listed).
func (a *api) routes() []route {
	return []route{
		{"GET", "/healthz", a.healthz},
		{"GET", "/readyz", a.readyz},

		{"HEAD", "/api/v1/blobs/:hash", a.headBlob},
		{"GET", "/api/v1/blobs/:hash", a.getBlob},
		{"PUT", "/api/v1/blobs/:hash", a.putBlob},
		{"POST", "/api/v1/blobs", a.postBlob},
		{"POST", "/api/v1/blobs/missing", a.missingBlobs},

		{"POST", "/api/v1/collections", a.createCollection},
		{"GET", "/api/v1/collections", a.listCollections},
		{"GET", "/api/v1/collections/:uuid", a.getCollection},
		{"PATCH", "/api/v1/collections/:uuid", a.patchCollection},
		{"DELETE", "/api/v1/collections/:uuid", a.deleteCollection},
		{"GET", "/api/v1/collections/:uuid/versions", listByID(a.svc.CollectionVersions, collectionsView, false)},
		{"GET", "/api/v1/collections/:uuid/versions/:n", a.getCollection},
		{"GET", "/api/v1/collections/:uuid/units", listByID(a.svc.CollectionUnits, unitsView, true)},
		{"GET", "/api/v1/collections/:uuid/assets", listByID(a.svc.CollectionAssets, assetsView, true)},
		{"GET", "/api/v1/collections/:uuid/stats", a.collectionStats},

		{"POST", "/api/v1/units", a.createUnit},
		{"GET", "/api/v1/units/:uuid", a.getUnit},
		{"DELETE", "/api/v1/units/:uuid", deleteByID(a.svc.DeleteUnit)},
		{"POST", "/api/v1/units/:uuid/versions", a.commitUnit},
		{"GET", "/api/v1/units/:uuid/versions", listByID(a.svc.UnitVersions, unitsView, false)},
		{"GET", "/api/v1/units/:uuid/versions/:n", a.getUnit},
		{"GET", "/api/v1/units/:uuid/versions/:n/olx", a.getUnitOLX},
		{"PUT", "/api/v1/units/:uuid/draft", a.putUnitDraft},
		{"DELETE", "/api/v1/units/:uuid/draft", deleteByID(a.svc.DeleteUnitDraft)},
		{"POST", "/api/v1/units/:uuid/draft/publish", a.publishUnitDraft},
		{"GET", "/api/v1/units/:uuid/olx", a.getUnitOLX},
		{"GET", "/api/v1/units/:uuid/links", a.unitLinks},
		{"GET", "/api/v1/units/:uuid/linked-by", listByID(a.linkedBy(index.KindUnit), linkingView, false)},

		{"POST", "/api/v1/assets", a.createAsset},
		{"GET", "/api/v1/assets/:uuid", a.getAsset},
		{"DELETE", "/api/v1/assets/:uuid", deleteByID(a.svc.DeleteAsset)},
		{"POST", "/api/v1/assets/:uuid/versions", a.commitAsset},
		{"GET", "/api/v1/assets/:uuid/versions", listByID(a.svc.AssetVersions, assetsView, false)},
		{"GET", "/api/v1/assets/:uuid/versions/:n", a.getAsset},
		{"GET", "/api/v1/assets/:uuid/versions/:n/content", a.getAssetContent},
		{"PUT", "/api/v1/assets/:uuid/draft", a.putAssetDraft},
		{"DELETE", "/api/v1/assets/:uuid/draft", deleteByID(a.svc.DeleteAssetDraft)},
		{"POST", "/api/v1/assets/:uuid/draft/publish", a.publishAssetDraft},
		{"GET", "/api/v1/assets/:uuid/content", a.getAssetContent},
		{"GET", "/api/v1/assets/:uuid/linked-by", listByID(a.linkedBy(index.KindAsset), linkingView, false)},

		{"POST", "/api/v1/resolve", a.resolve},

		{"GET", "/api/v1/changes", a.changes},
		{"GET", "/api/v1/changes/head", a.changesHead},

		{"POST", "/api/v1/gc", a.runGC},
		{"GET", "/api/v1/gc/runs", a.gcRuns},
		{"GET", "/api/v1/gc/runs/:id", a.gcRun},

		{"POST", "/api/v1/backup", a.postBackup},
		{"GET", "/api/v1/stats", a.stats},
	}
}

// Endpoints lists every method and path pattern the API serves (HEAD
// included), in the order of the routing table, without Options.Extra. The
// OpenAPI document is checked against it.
func Endpoints() []Endpoint {
	var out []Endpoint
	for _, rt := range withHEAD((&api{}).routes()) {
		out = append(out, Endpoint{rt.method, rt.pattern})
	}
	return out
}

// withHEAD adds a HEAD route beside every GET that has none of its own.
func withHEAD(rts []route) []route {
	own := make(map[string]bool)
	for _, rt := range rts {
		if rt.method == http.MethodHead {
			own[rt.pattern] = true
		}
	}
	out := make([]route, 0, 2*len(rts))
	for _, rt := range rts {
		out = append(out, rt)
		if rt.method == http.MethodGet && !own[rt.pattern] {
			out = append(out, route{http.MethodHead, rt.pattern, rt.h})
		}
	}
	return out
}

// New returns the handler of the whole API (API.md) over svc.
func New(svc *refs.Service, opt Options) http.Handler {
	if opt.MaxJSONBytes <= 0 {
		opt.MaxJSONBytes = DefaultMaxJSONBytes
	}
	if opt.MaxResolveRefs <= 0 {
		opt.MaxResolveRefs = DefaultMaxResolveRefs
	}
	if opt.MaxMissingHashes <= 0 {
		opt.MaxMissingHashes = DefaultMaxMissingHashes
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &api{svc: svc, opt: opt, log: log}

	router := httprouter.New()
	router.RedirectTrailingSlash = false
	router.RedirectFixedPath = false
	router.HandleMethodNotAllowed = true
	router.HandleOPTIONS = true
	router.GlobalOPTIONS = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, fmt.Errorf("%w: %s", errNoRoute, r.URL.Path))
	})
	router.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, fmt.Errorf("%w: %s %s (allowed: %s)", errMethodNotAllowed, r.Method, r.URL.Path, w.Header().Get("Allow")))
	})
	router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		a.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
		writeAPIError(w, r, errorForStatus(http.StatusInternalServerError, "internal error"))
	}

	for _, rt := range withHEAD(a.routes()) {
		h := rt.h
		var hh http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
				a.writeError(w, r, badRequest("malformed query string: %v", err))
				return
			}
			if err := h(w, r, httprouter.ParamsFromContext(r.Context())); err != nil {
				a.writeError(w, r, err)
			}
		})
		a.handle(router, rt.method, rt.pattern, hh)
	}
	for _, rt := range opt.Extra {
		a.handle(router, rt.Method, rt.Pattern, rt.Handler)
		if rt.Method == http.MethodGet {
			a.handle(router, http.MethodHead, rt.Pattern, rt.Handler)
		}
	}
	return router
}

func (a *api) handle(router *httprouter.Router, method, pattern string, h http.Handler) {
	if a.opt.Wrap != nil {
		h = a.opt.Wrap(method, pattern, h)
	}
	router.Handler(method, pattern, h)
}

// Parameters of paths and queries.

func uuidParam(p httprouter.Params) (uuid.UUID, error) {
	id, err := index.ParseUUID(p.ByName("uuid"))
	if err != nil {
		return uuid.Nil, badRequest("malformed uuid %q in the path", p.ByName("uuid"))
	}
	return id, nil
}

// refParam is the ref a path names: {uuid} with, under …/versions/{n}, a
// positive version number or "draft".
func refParam(p httprouter.Params) (index.Ref, error) {
	id, err := uuidParam(p)
	if err != nil {
		return index.Ref{}, err
	}
	ref := index.Ref{ID: id}
	n := p.ByName("n")
	switch {
	case n == "":
	case n == "draft":
		ref.Draft = true
	default:
		v, err := index.ParseVersion(n)
		if err != nil {
			return index.Ref{}, badRequest("version %q in the path is neither a positive integer nor \"draft\"", n)
		}
		ref.Version = v
	}
	return ref, nil
}

// listOptions reads ?limit and ?cursor.
func listOptions(r *http.Request) (index.ListOptions, error) {
	q := r.URL.Query()
	opt := index.ListOptions{Cursor: q.Get("cursor")}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > index.MaxLimit {
			return opt, badRequest("limit must be an integer from 1 to %d, not %q", index.MaxLimit, s[0])
		}
		opt.Limit = n
	}
	return opt, nil
}

// boolQuery reads an optional boolean query parameter.
func boolQuery(r *http.Request, name string) (*bool, error) {
	q := r.URL.Query()
	s, ok := q[name]
	if !ok {
		return nil, nil
	}
	b, err := strconv.ParseBool(s[0])
	if err != nil {
		return nil, badRequest("%s must be true or false, not %q", name, s[0])
	}
	return &b, nil
}

// strQuery reads an optional string query parameter (present, even empty,
// is given).
func strQuery(r *http.Request, name string) *string {
	s, ok := r.URL.Query()[name]
	if !ok {
		return nil
	}
	return &s[0]
}
