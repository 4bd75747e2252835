package gc

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of sweeps. A nil *Metrics counts
// nothing.
type Metrics struct {
	sweeps          *prometheus.CounterVec   // by dry_run
	failed          *prometheus.CounterVec   // by dry_run
	phaseSeconds    *prometheus.HistogramVec // by phase
	blobsFreed      prometheus.Counter
	bytesFreed      prometheus.Counter
	versionsDeleted prometheus.Counter
	assetsDeleted   prometheus.Counter
	blobsKept       prometheus.Gauge
	lastSuccess     prometheus.Gauge
	running         prometheus.Gauge
}

// NewMetrics creates the collectors and registers them on reg when reg is
// not nil. Registering twice on one registry reuses the collectors already
// there, so two Collectors over one registry share them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_gc_sweeps_total",
			Help: "Sweeps started, by dry_run.",
		}, []string{"dry_run"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blockstore_gc_sweeps_failed_total",
			Help: "Sweeps that failed, by dry_run.",
		}, []string{"dry_run"}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "blockstore_gc_phase_duration_seconds",
			Help:    "Duration of each sweep phase.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12), // 1ms .. ~70min
		}, []string{"phase"}),
		blobsFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blockstore_gc_blobs_deleted_total",
			Help: "Blobs deleted from the blob store and the registry by sweeps (dry runs excluded).",
		}),
		bytesFreed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blockstore_gc_bytes_freed_total",
			Help: "Bytes of blobs deleted by sweeps (dry runs excluded).",
		}),
		versionsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blockstore_gc_versions_deleted_total",
			Help: "Versions deleted by retention (dry runs excluded).",
		}),
		assetsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blockstore_gc_assets_deleted_total",
			Help: "Orphaned assets deleted (dry runs excluded).",
		}),
		blobsKept: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blockstore_gc_blobs_kept",
			Help: "Blobs the last successful sweep kept.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blockstore_gc_last_success_timestamp_seconds",
			Help: "When the last successful sweep (dry runs excluded) finished, in Unix seconds.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blockstore_gc_running",
			Help: "Sweeps running in this process.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	register := func(c prometheus.Collector) (prometheus.Collector, error) {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector, nil
		}
		return c, err
	}
	var err error
	reuse := func(dst any, c prometheus.Collector) {
		if err != nil {
			return
		}
		got, rerr := register(c)
		if rerr != nil {
			err = fmt.Errorf("gc: register metrics: %w", rerr)
			return
		}
		switch d := dst.(type) {
		case **prometheus.CounterVec:
			*d = got.(*prometheus.CounterVec)
		case **prometheus.HistogramVec:
			*d = got.(*prometheus.HistogramVec)
		case *prometheus.Counter:
			*d = got.(prometheus.Counter)
		case *prometheus.Gauge:
			*d = got.(prometheus.Gauge)
		}
	}
	reuse(&m.sweeps, m.sweeps)
	reuse(&m.failed, m.failed)
	reuse(&m.phaseSeconds, m.phaseSeconds)
	reuse(&m.blobsFreed, m.blobsFreed)
	reuse(&m.bytesFreed, m.bytesFreed)
	reuse(&m.versionsDeleted, m.versionsDeleted)
	reuse(&m.assetsDeleted, m.assetsDeleted)
	reuse(&m.blobsKept, m.blobsKept)
	reuse(&m.lastSuccess, m.lastSuccess)
	reuse(&m.running, m.running)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) started(dry bool) {
	if m == nil {
		return
	}
	m.sweeps.WithLabelValues(strconv.FormatBool(dry)).Inc()
	m.running.Inc()
}

func (m *Metrics) phase(name string, d time.Duration) {
	if m == nil {
		return
	}
	m.phaseSeconds.WithLabelValues(name).Observe(d.Seconds())
}

// finished counts the end of a sweep that started.
func (m *Metrics) finished(r *Report, ok bool) {
	if m == nil {
		return
	}
	m.running.Dec()
	if !ok {
		m.failed.WithLabelValues(strconv.FormatBool(r.DryRun)).Inc()
	}
	if r.DryRun {
		return
	}
	// What a failed sweep removed is removed all the same.
	m.blobsFreed.Add(float64(r.BlobsDeleted))
	m.bytesFreed.Add(float64(r.BytesFreed))
	m.versionsDeleted.Add(float64(r.VersionsDeleted))
	m.assetsDeleted.Add(float64(r.AssetsDeleted))
	if ok {
		m.blobsKept.Set(float64(r.BlobsKept))
		if r.FinishedAt != nil {
			m.lastSuccess.Set(float64(r.FinishedAt.UnixNano()) / 1e9)
		}
	}
}
