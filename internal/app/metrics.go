package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/index"
)

// Metrics are the service's Prometheus metrics (the gc package adds its own).
// Labels are route patterns and operation names, never paths or values, so
// no secret or identifier ever reaches a metric.
type Metrics struct {
	gather prometheus.Gatherer

	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	bytesIn    *prometheus.CounterVec
	bytesOut   *prometheus.CounterVec
	blobOps    *prometheus.CounterVec
	blobErrors *prometheus.CounterVec
	// hashMismatches counts stored bytes found not to hash to their name
	// while being read (a corrupt blob; never served whole).
	hashMismatches prometheus.Counter
	blobsStored    prometheus.Counter
	blobBytes      *prometheus.CounterVec
	indexOps       *prometheus.HistogramVec
	indexErrors    *prometheus.CounterVec
	inFlight       prometheus.Gauge
	buildStarted   prometheus.Gauge
}

// NewMetrics registers the metrics on reg; gather serves them.
func NewMetrics(reg prometheus.Registerer, gather prometheus.Gatherer) (*Metrics, error) {
	m := &Metrics{
		gather: gather,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_http_requests_total", Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "blockstore_http_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
		}, []string{"method", "route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_http_request_body_bytes_total", Help: "Request body bytes read, by route pattern.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_http_response_body_bytes_total", Help: "Response body bytes written, by route pattern.",
		}, []string{"route"}),
		blobOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_blob_store_operations_total", Help: "Blob store operations by name.",
		}, []string{"op"}),
		blobErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_blob_store_errors_total", Help: "Blob store operations that failed (not counting not-found and hash mismatches), by name.",
		}, []string{"op"}),
		hashMismatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blockstore_blob_hash_mismatches_total", Help: "Reads that found stored bytes not hashing to their blob's hash (corruption at rest); such a blob is never served whole.",
		}),
		blobsStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blockstore_blobs_stored_total", Help: "Blobs written to the blob store.",
		}),
		blobBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_blob_store_bytes_total", Help: "Bytes written (put) and read (open) through the blob store.",
		}, []string{"op"}),
		indexOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "blockstore_index_operation_duration_seconds", Help: "Index operation latency by name.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1, 5},
		}, []string{"op"}),
		indexErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_index_errors_total", Help: "Index operations that failed for a reason other than the request (unavailable, internal), by name.",
		}, []string{"op"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blockstore_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		buildStarted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blockstore_start_time_seconds", Help: "When this process opened its stores (Unix time).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.bytesIn, m.bytesOut, m.blobOps, m.blobErrors,
		m.hashMismatches, m.blobsStored, m.blobBytes, m.indexOps, m.indexErrors, m.inFlight, m.buildStarted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.buildStarted.SetToCurrentTime()
	// Error counters start at zero for every operation, so that a rate()
	// over them has a series before the first failure.
	for _, op := range []string{cas.OpStat, cas.OpOpen, cas.OpPut, cas.OpDelete, cas.OpWalk, cas.OpPing} {
		m.blobErrors.WithLabelValues(op)
	}
	for _, op := range []string{"update", "lookup", "unit", "asset", "collection", "begin_blob", "finish_blob", "renew_blobs", "ping"} {
		m.indexErrors.WithLabelValues(op)
	}
	return m, nil
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gather, promhttp.HandlerOpts{})
}

// casObserver counts blob store operations.
func (m *Metrics) casObserver() cas.Observer { return casObserver{m} }

type casObserver struct{ m *Metrics }

func (o casObserver) Observe(op string, bytes int64, _ time.Duration, err error) {
	o.m.blobOps.WithLabelValues(op).Inc()
	if err != nil {
		if op != cas.OpPut && errors.Is(err, cas.ErrHashMismatch) {
			o.m.hashMismatches.Inc()
		}
		if !errors.Is(err, cas.ErrNotFound) && !errors.Is(err, cas.ErrHashMismatch) &&
			!errors.Is(err, cas.ErrTooLarge) && !errors.Is(err, context.Canceled) {
			o.m.blobErrors.WithLabelValues(op).Inc()
		}
		return
	}
	switch op {
	case cas.OpPut:
		o.m.blobsStored.Inc()
		o.m.blobBytes.WithLabelValues(op).Add(float64(bytes))
	case cas.OpOpen:
		o.m.blobBytes.WithLabelValues(op).Add(float64(bytes))
	}
}

// wrapRoute returns the httpapi Wrap hook: metrics and one structured log
// line per request (method, route, status, bytes, duration, request id).
func (m *Metrics) wrapRoute(log *slog.Logger) func(method, pattern string, h http.Handler) http.Handler {
	return func(method, pattern string, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := r.Header.Get("X-Request-Id")
			if id == "" || len(id) > 128 {
				id = newRequestID()
			}
			w.Header().Set("X-Request-Id", id)
			m.inFlight.Inc()
			defer m.inFlight.Dec()
			body := &countingBody{ReadCloser: r.Body}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = body
			}
			rec := &recorder{ResponseWriter: w, status: http.StatusOK}
			h.ServeHTTP(rec, r)
			d := time.Since(start)
			m.requests.WithLabelValues(method, pattern, strconv.Itoa(rec.status)).Inc()
			m.duration.WithLabelValues(method, pattern).Observe(d.Seconds())
			m.bytesIn.WithLabelValues(pattern).Add(float64(body.n))
			m.bytesOut.WithLabelValues(pattern).Add(float64(rec.n))
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelError
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("method", r.Method), slog.String("route", pattern), slog.Int("status", rec.status),
				slog.Int64("bytes_in", body.n), slog.Int64("bytes_out", rec.n),
				slog.Duration("duration", d), slog.String("request_id", id))
		})
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// recorder notes the status and counts the body bytes of a response, and
// passes Flush and ReadFrom through so streaming stays fast.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	n           int64
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's fast path (sendfile for files).
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wroteHeader = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.n += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// registerSyncs exports the group commit of an index engine that has one
// (index.SyncStats): commits per sync is the ratio of the two counters.
func registerSyncs(reg prometheus.Registerer, idx index.Store) error {
	st, ok := idx.(index.SyncStats)
	if !ok {
		return nil
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "blockstore_index_wal_syncs_total", Help: "Syncs of the index's write-ahead log that made commits durable (embedded engine).",
		}, func() float64 { n, _ := st.SyncCounts(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "blockstore_index_synced_commits_total", Help: "Index commits made durable by those syncs: several share one sync when writers commit at once.",
		}, func() float64 { _, n := st.SyncCounts(); return float64(n) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// wrapIndex counts and times the index operations on the request path.
func (m *Metrics) wrapIndex(s index.Store) index.Store { return &meteredIndex{Store: s, m: m} }

type meteredIndex struct {
	index.Store
	m *Metrics
}

func (x *meteredIndex) observe(op string, start time.Time, err error) {
	x.m.indexOps.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !expectedIndexError(err) {
		x.m.indexErrors.WithLabelValues(op).Inc()
	}
}

// expectedIndexError: the request's fault, not the index's.
func expectedIndexError(err error) bool {
	for _, e := range []error{index.ErrNotFound, index.ErrConflict, index.ErrInvalid, index.ErrBlobMissing,
		index.ErrBlobBusy, context.Canceled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (x *meteredIndex) Update(ctx context.Context, fn func(tx index.Tx) error) (err error) {
	defer func(t time.Time) { x.observe("update", t, err) }(time.Now())
	return x.Store.Update(ctx, fn)
}

func (x *meteredIndex) Lookup(ctx context.Context, refs []index.Ref) (_ []index.Entity, err error) {
	defer func(t time.Time) { x.observe("lookup", t, err) }(time.Now())
	return x.Store.Lookup(ctx, refs)
}

func (x *meteredIndex) Unit(ctx context.Context, ref index.Ref) (_ index.Unit, err error) {
	defer func(t time.Time) { x.observe("unit", t, err) }(time.Now())
	return x.Store.Unit(ctx, ref)
}

func (x *meteredIndex) Asset(ctx context.Context, ref index.Ref) (_ index.Asset, err error) {
	defer func(t time.Time) { x.observe("asset", t, err) }(time.Now())
	return x.Store.Asset(ctx, ref)
}

func (x *meteredIndex) Collection(ctx context.Context, id uuid.UUID, v int64) (_ index.Collection, err error) {
	defer func(t time.Time) { x.observe("collection", t, err) }(time.Now())
	return x.Store.Collection(ctx, id, v)
}

func (x *meteredIndex) BeginBlob(ctx context.Context, h cas.Hash) (_ index.BlobState, _ index.Ticket, err error) {
	defer func(t time.Time) { x.observe("begin_blob", t, err) }(time.Now())
	return x.Store.BeginBlob(ctx, h)
}

func (x *meteredIndex) FinishBlob(ctx context.Context, h cas.Hash, size int64, ticket index.Ticket) (err error) {
	defer func(t time.Time) { x.observe("finish_blob", t, err) }(time.Now())
	return x.Store.FinishBlob(ctx, h, size, ticket)
}

func (x *meteredIndex) RenewBlobs(ctx context.Context, hs []cas.Hash) (_ map[cas.Hash]index.Blob, err error) {
	defer func(t time.Time) { x.observe("renew_blobs", t, err) }(time.Now())
	return x.Store.RenewBlobs(ctx, hs)
}

// CheckGCLock passes gc.LockChecker through the wrapper.
func (x *meteredIndex) CheckGCLock(ctx context.Context) error {
	if lc, ok := x.Store.(gc.LockChecker); ok {
		return lc.CheckGCLock(ctx)
	}
	return nil
}

func (x *meteredIndex) Ping(ctx context.Context) (err error) {
	defer func(t time.Time) { x.observe("ping", t, err) }(time.Now())
	return x.Store.Ping(ctx)
}

// InlineBlobs passes index.InlineReader through the wrapper (both engines
// keep inline blobs; an engine without them has none to return).
func (x *meteredIndex) InlineBlobs(ctx context.Context, hs []cas.Hash) (_ map[cas.Hash][]byte, err error) {
	ir, ok := x.Store.(index.InlineReader)
	if !ok {
		return map[cas.Hash][]byte{}, nil
	}
	defer func(t time.Time) { x.observe("inline_blobs", t, err) }(time.Now())
	return ir.InlineBlobs(ctx, hs)
}

// UnitInline passes index.InlineReader through the wrapper, timed as a
// unit read.
func (x *meteredIndex) UnitInline(ctx context.Context, ref index.Ref) (_ index.Unit, _ []byte, err error) {
	defer func(t time.Time) { x.observe("unit", t, err) }(time.Now())
	if ir, ok := x.Store.(index.InlineReader); ok {
		return ir.UnitInline(ctx, ref)
	}
	u, err := x.Store.Unit(ctx, ref)
	return u, nil, err
}
