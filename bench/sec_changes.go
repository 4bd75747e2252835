package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/blockstore/blockstore/client"
)

// The change feed: how fast a follower reads it, and how long after a
// commit's acknowledgement a follower that waits (a long-poll) on another
// replica gets the change. On PostgreSQL the follower's replica is a second
// server over the same database and bucket (woken by LISTEN/NOTIFY); the
// embedded deployment has one process, so its follower waits on the
// writer's own server. MinIO has no feed.
//
// Sizes come from the units section's: Units changes written by
// UnitClients clients, then read by one follower in pages of 1,000; the
// lag is sampled 10 × ResolveRequests times (at least 20), one commit at
// a time.

func (h *harness) changesSection(ctx context.Context) {
	const g = "changes"
	sz := h.sz
	read := fmt.Sprintf("follower reads %s changes, pages of 1,000", count(sz.Units))
	lagName := "commit acknowledged → waiting follower on another replica"
	h.rep.row(g, read, "changes/s")
	h.rep.row(g, lagName+", p50", "ms")
	h.rep.row(g, lagName+", p99", "ms")
	h.rep.row(g, staleName+", p50", "ms")
	h.rep.row(g, staleName+", p99", "ms")
	for run := range sz.Runs {
		for _, t := range rotate([]Target{Embedded, Postgres}, run) {
			if err := h.changesRun(ctx, run, t, read, lagName); err != nil {
				h.fail("changes", t, run, err)
			}
		}
	}
}

func (h *harness) changesRun(ctx context.Context, run int, t Target, read, lagName string) error {
	const g = "changes"
	sz := h.sz
	d, err := h.deploy(ctx, t, "changes")
	if err != nil {
		return err
	}
	defer d.Close()
	w := d.srv.Client
	follow, followURL := w, d.srv.URL
	if t == Postgres {
		env := []string{
			"BLOCKSTORE_DATABASE_URL=" + d.dbURL,
			"BLOCKSTORE_S3_ACCESS_KEY=" + h.minio.AccessKey,
			"BLOCKSTORE_S3_SECRET_KEY=" + h.minio.SecretKey,
		}
		replica, err := startServer(ctx, h.bin, env, "--data", d.dir+"/replica",
			"--s3-endpoint", h.minio.Endpoint, "--s3-bucket", d.bucket, "--s3-insecure")
		if err != nil {
			return fmt.Errorf("bench: start the second replica: %w", err)
		}
		defer replica.Stop()
		follow, followURL = replica.Client, replica.URL
	}

	head, err := follow.ChangesHead(ctx)
	if err != nil {
		return fmt.Errorf("bench: changes head: %w", err)
	}
	err = parallel(ctx, sz.Units, sz.UnitClients, func(ctx context.Context, i int, _ []byte) error {
		_, err := w.CreateCollection(ctx, client.NewCollection{Name: fmt.Sprint("feed ", i)})
		return err
	})
	if err != nil {
		return fmt.Errorf("bench: write changes: %w", err)
	}

	// Catch up first: on PostgreSQL a change is served once every
	// transaction of the database that began before it has ended (an
	// autoanalyze too), moments after its acknowledgement.
	seen, after := 0, head
	for range sz.Units + 100 {
		p, err := follow.Changes(ctx, client.ChangeQuery{After: after, Limit: 1000, Wait: 5 * time.Second})
		if err != nil {
			return fmt.Errorf("bench: catch up with the feed: %w", err)
		}
		seen += len(p.Items)
		after = p.NextCursor
		if seen >= sz.Units || len(p.Items) == 0 {
			break
		}
	}
	if seen != sz.Units {
		return fmt.Errorf("bench: the follower caught up with %d changes, %d were written", seen, sz.Units)
	}

	// Throughput: the whole feed from the head, several times, so that
	// small scales still measure more than one round trip.
	const passes = 3
	start := time.Now()
	for range passes {
		n := 0
		after := head
		for range sz.Units + 10 {
			p, err := follow.Changes(ctx, client.ChangeQuery{After: after, Limit: 1000})
			if err != nil {
				return fmt.Errorf("bench: read the feed: %w", err)
			}
			n += len(p.Items)
			after = p.NextCursor
			if len(p.Items) < 1000 {
				break
			}
		}
		if n != sz.Units {
			return fmt.Errorf("bench: the follower read %d changes, %d were written", n, sz.Units)
		}
	}
	v := rate(float64(passes*sz.Units), time.Since(start))
	h.rep.set(g, read, "changes/s", t, run, v)
	h.logf("changes run %d, %s: %s: %.0f changes/s", run+1, t, read, v)

	// Lag: one commit at a time, a follower already waiting for it.
	samples := max(20, 10*sz.ResolveRequests)
	if after, err = follow.ChangesHead(ctx); err != nil {
		return err
	}
	lat := make(Latencies, 0, samples)
	for i := range samples {
		type got struct {
			p   client.ChangePage
			err error
			at  time.Time
		}
		done := make(chan got, 1)
		go func() {
			p, err := follow.Changes(ctx, client.ChangeQuery{After: after, Wait: 30 * time.Second})
			done <- got{p, err, time.Now()}
		}()
		// Commit once the long-poll waits on the server (its gauge says
		// so): a follower not yet waiting would measure a plain read.
		if err := waitForFollower(ctx, followURL); err != nil {
			return err
		}
		if _, err := w.CreateCollection(ctx, client.NewCollection{Name: fmt.Sprint("lag ", i)}); err != nil {
			return fmt.Errorf("bench: write: %w", err)
		}
		acked := time.Now()
		r := <-done
		if r.err != nil {
			return fmt.Errorf("bench: long-poll: %w", r.err)
		}
		if len(r.p.Items) != 1 {
			return fmt.Errorf("bench: long-poll answered %d changes, want the one committed", len(r.p.Items))
		}
		lat = append(lat, max(0, r.at.Sub(acked)))
		after = r.p.NextCursor
	}
	h.rep.set(g, lagName+", p50", "ms", t, run, ms(lat.Quantile(0.5)))
	h.rep.set(g, lagName+", p99", "ms", t, run, ms(lat.Quantile(0.99)))
	h.logf("changes run %d, %s: lag p50 %s, p99 %s", run+1, t, lat.Quantile(0.5), lat.Quantile(0.99))
	return h.stalenessRun(ctx, run, t, w, follow, samples)
}

// staleName is the row of stalenessRun.
const staleName = "commit acknowledged → OLX read on another replica shows it"

// stalenessRun measures how long after a unit commit through one replica a
// reader of the unit's OLX on the other replica (reading it all along, so
// that the other replica's latest-version cache holds the old version) is
// served the new version: the latest-version cache must never serve the
// old one (the first read after the acknowledgement shows the new
// version, so the figure is one read's latency). The embedded deployment's
// reader reads through the writer's own server.
func (h *harness) stalenessRun(ctx context.Context, run int, t Target, w, follow *client.Client, samples int) error {
	const g = "changes"
	coll, err := w.CreateCollection(ctx, client.NewCollection{Name: "staleness"})
	if err != nil {
		return fmt.Errorf("bench: create collection: %w", err)
	}
	u, err := w.CreateUnit(ctx, client.NewUnit{Collection: coll.UUID, Name: "unit.xml", OLX: "<p>0</p>"})
	if err != nil {
		return fmt.Errorf("bench: create unit: %w", err)
	}
	read := func() (string, error) {
		d, err := follow.UnitOLX(ctx, u.UUID, client.Latest, client.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("bench: read OLX on the other replica: %w", err)
		}
		defer d.Close()
		b, err := io.ReadAll(d.Body)
		return string(b), err
	}
	lat := make(Latencies, 0, samples)
	for i := 1; i <= samples; i++ {
		// Warm the reader's cache with the current version.
		for range 3 {
			if _, err := read(); err != nil {
				return err
			}
		}
		want := fmt.Sprintf("<p>%d</p>", i)
		if _, _, err := w.NewUnitVersion(ctx, u.UUID, client.UnitChange{OLX: want}); err != nil {
			return fmt.Errorf("bench: commit unit: %w", err)
		}
		acked := time.Now()
		for attempt := 0; ; attempt++ {
			got, err := read()
			if err != nil {
				return err
			}
			if got == want {
				break
			}
			if time.Since(acked) > 10*time.Second {
				return fmt.Errorf("bench: the other replica still served %q 10s after %q was committed", got, want)
			}
		}
		lat = append(lat, time.Since(acked))
	}
	h.rep.set(g, staleName+", p50", "ms", t, run, ms(lat.Quantile(0.5)))
	h.rep.set(g, staleName+", p99", "ms", t, run, ms(lat.Quantile(0.99)))
	h.logf("changes run %d, %s: OLX staleness p50 %s, p99 %s", run+1, t, lat.Quantile(0.5), lat.Quantile(0.99))
	return nil
}

// waitForFollower returns once the server at url counts a follower
// waiting (blockstore_changes_followers_waiting on /metrics).
func waitForFollower(ctx context.Context, url string) error {
	for range 2000 {
		v, err := metricValue(ctx, url, "blockstore_changes_followers_waiting")
		if err != nil {
			return err
		}
		if v != 0 {
			return nil
		}
	}
	return fmt.Errorf("bench: no follower waited on %s", url)
}

// metricValue reads one unlabelled metric of the server at url (/metrics).
func metricValue(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: read /metrics: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("bench: read /metrics: %w", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: /metrics: %q: %w", line, err)
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("bench: %s/metrics has no %s", url, name)
}
