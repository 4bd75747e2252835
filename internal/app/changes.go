package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blockstore/blockstore/httpapi"
	"github.com/blockstore/blockstore/index"
)

// changeService serves the change feed of the index (httpapi.Changes) and
// measures its followers: how many wait, and how far behind the latest
// change the page a follower asks for starts (the age of its first change;
// 0 when it is up to date).
type changeService struct {
	feed    index.ChangeFeed
	now     func() time.Time
	waiting prometheus.Gauge
	lag     prometheus.Histogram
}

var _ httpapi.Changes = (*changeService)(nil)

// newChangeService returns nil when idx keeps no feed (the routes then
// answer 503); its metrics are registered on reg either way.
func newChangeService(reg prometheus.Registerer, idx index.Store, now func() time.Time) (*changeService, error) {
	feed, ok := idx.(index.ChangeFeed)
	written := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "blockstore_changes_written_total", Help: "Changes this process committed to the change feed.",
	}, func() float64 {
		if !ok {
			return 0
		}
		return float64(feed.ChangesWritten())
	})
	cs := &changeService{
		feed: feed,
		now:  now,
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blockstore_changes_followers_waiting", Help: "Change-feed requests waiting for a commit (long-polls).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "blockstore_changes_follower_lag_seconds",
			Help:    "How far behind a follower's cursor is when it asks: the age of the first change it is sent (0 when up to date).",
			Buckets: []float64{0, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 600, 3600, 86400},
		}),
	}
	for _, c := range []prometheus.Collector{written, cs.waiting, cs.lag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("app: register change-feed metrics: %w", err)
		}
	}
	if !ok {
		return nil, nil
	}
	if cs.now == nil {
		cs.now = time.Now
	}
	return cs, nil
}

// Changes reads a page, waiting for a commit when wait > 0 and there is none.
func (c *changeService) Changes(ctx context.Context, q index.ChangeQuery, wait time.Duration) (index.ChangePage, error) {
	if wait > 0 {
		c.waiting.Inc()
		defer c.waiting.Dec()
	}
	page, err := index.WaitChanges(ctx, c.feed, q, wait)
	if err != nil {
		return page, err
	}
	lag := 0.0
	if len(page.Items) > 0 {
		lag = max(0, c.now().Sub(page.Items[0].At).Seconds())
	}
	c.lag.Observe(lag)
	return page, nil
}

// ChangesHead returns the cursor of the latest change.
func (c *changeService) ChangesHead(ctx context.Context) (string, error) {
	return c.feed.ChangesHead(ctx)
}

// PruneChanges passes index.ChangePruner through the metrics wrapper, so
// that sweeps prune the feed.
func (x *meteredIndex) PruneChanges(ctx context.Context, cutoff time.Time) (int, error) {
	if p, ok := x.Store.(index.ChangePruner); ok {
		return p.PruneChanges(ctx, cutoff)
	}
	return 0, nil
}

// changesOption is the httpapi option of the feed: nil (not a nil
// *changeService, which would be a non-nil interface) when there is none.
func (a *App) changesOption() httpapi.Changes {
	if a.changes == nil {
		return nil
	}
	return a.changes
}
