package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testenv"
)

// requestBound is the longest any request may take while a dependency is
// down or black-holed: the server's timeouts (PostgreSQL's connect_timeout
// of 2s given below, /readyz's 5s, minio-go's retries) must end it sooner.
const requestBound = 20 * time.Second

// resumeBound is how long the service may take to serve again on its own
// once the dependency is back.
const resumeBound = 30 * time.Second

// TestPostgresOutage cuts the server's connection to PostgreSQL through a
// proxy while clients read and write: requests fail fast with 503, /readyz
// is 503, the process stays up, and it resumes on its own, after an outage
// (the database gone), a restart (gone and back at once) and a black hole
// (the host stops answering).
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	d, proxy, _ := productionBehindProxy(t)
	outage(t, d, proxy)
}

// productionBehindProxy is a PostgreSQL + MinIO deployment whose database
// connections go through a proxy the test can cut. connect_timeout bounds
// reaching PostgreSQL; statement_timeout bounds each statement on the
// server and, plus pgindex.OpTimeoutMargin, each wait for an answer in the
// server. It also returns the database's own URL.
func productionBehindProxy(t *testing.T) (deployment, *Proxy, *url.URL) {
	t.Helper()
	dbURL := testenv.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	return productionVia(t, withHost(t, dbURL, proxy.Addr(), map[string]string{"connect_timeout": "2", "statement_timeout": "2s"}), ""), proxy, u
}

// TestMinIOOutage does the same to the server's connection to MinIO.
func TestMinIOOutage(t *testing.T) {
	t.Parallel()
	proxy, err := NewProxy(testenv.MinIO(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	d := productionVia(t, testenv.NewDatabase(t), proxy.Addr())
	// --s3-timeout is the configured bound on each wait on the bucket.
	d.args = append(d.args, "--s3-timeout", "3s")
	outage(t, d, proxy)
}

func outage(t *testing.T, d deployment, proxy *Proxy) {
	ctx := context.Background()
	s := startServer(t, d.env, d.args...)
	c := newClient(t, s.URL)
	j := newJournal()
	tr := newTraffic(ctx, t, c, j)

	phase := func(name string, mode Mode, d time.Duration) *tally {
		t.Helper()
		tl := tr.run(name, d, func() { proxy.Set(mode) })
		if !s.alive() {
			t.Fatalf("%s: the server died: %v\n%s", name, s.err, s.logs.tail(40))
		}
		return tl
	}
	resume := func(name string) {
		t.Helper()
		proxy.Set(Up)
		start := time.Now()
		err := waitFor(resumeBound, func() error {
			if err := c.Readyz(ctx); err != nil {
				return err
			}
			_, err := c.CreateCollection(ctx, client.NewCollection{Name: "resumed"})
			return err
		})
		if err != nil {
			t.Fatalf("%s: the service did not resume within %s of the dependency's return: %v", name, resumeBound, err)
		}
		t.Logf("%s: ready and writing again %s after the dependency came back", name, time.Since(start).Round(time.Millisecond))
	}

	up := phase("before", Up, time.Second)
	up.expectAllOK(t)

	// The dependency is gone: every connection reset, new ones too.
	down := phase("down", Down, 4*time.Second)
	down.expectUnavailable(t)
	expectNotReady(ctx, t, c, "down")
	resume("down")
	phase("after down", Up, time.Second).expectAllOK(t)

	// A restart under load: gone, and back a moment later.
	restart := tr.run("restart", 2*time.Second, func() {
		time.Sleep(300 * time.Millisecond)
		proxy.Set(Down)
		time.Sleep(300 * time.Millisecond)
		proxy.Set(Up)
	})
	restart.expectNoOtherErrors(t)
	resume("restart")
	phase("after restart", Up, time.Second).expectAllOK(t)

	// The host stops answering: only timeouts end requests.
	hole := phase("black hole", BlackHole, 4*time.Second)
	hole.expectUnavailable(t)
	expectNotReady(ctx, t, c, "black hole")
	resume("black hole")
	phase("after black hole", Up, time.Second).expectAllOK(t)

	tr.stop()
	if t.Failed() {
		return
	}
	// Whatever was acknowledged, through all of it, is there.
	checkJournal(ctx, t, c, j)
	if err := c.Healthz(ctx); err != nil {
		t.Errorf("healthz at the end: %v", err)
	}
}

// expectNotReady checks that /readyz answers 503 within requestBound.
func expectNotReady(ctx context.Context, t *testing.T, c *client.Client, phase string) {
	t.Helper()
	start := time.Now()
	err := c.Readyz(ctx)
	took := time.Since(start)
	if client.StatusOf(err) != 503 || !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("%s: /readyz answered %v, want 503 unavailable", phase, err)
	}
	if took > requestBound {
		t.Errorf("%s: /readyz took %s", phase, took)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Errorf("%s: /healthz: %v (the process answers whatever its dependencies do)", phase, err)
	}
}

// traffic is a few clients reading and writing in a loop, whose outcomes
// are tallied by phase.
type traffic struct {
	c    *client.Client
	j    *journal
	stop func()

	mu  sync.Mutex
	cur *tally

	// what the readers read: acknowledged before the outages.
	blob  cas.Hash
	unit  client.Unit
	asset client.Asset
	col   client.Collection
}

// tally is what the requests of one phase did.
type tally struct {
	name        string
	ok          int
	unavailable int
	failed      int      // requests that ended otherwise
	other       []string // their errors, one per kind
	slowest     time.Duration
	slowestOp   string
	started     int
	hung        bool // requests outlived the phase by requestBound
}

func newTraffic(ctx context.Context, t *testing.T, c *client.Client, j *journal) *traffic {
	t.Helper()
	tr := &traffic{c: c, j: j}
	var err error
	tr.col, err = c.CreateCollection(ctx, client.NewCollection{Name: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	b := content{seed: 1, size: 256 << 10}.bytes()
	tr.blob = cas.Sum(b)
	if _, err := c.PutBlob(ctx, tr.blob, client.BytesBody(b)); err != nil {
		t.Fatal(err)
	}
	tr.asset, err = c.CreateAsset(ctx, client.NewAsset{Collection: tr.col.UUID, Name: "seed-asset"}, client.Content{Hash: tr.blob})
	if err != nil {
		t.Fatal(err)
	}
	j.asset(tr.asset)
	olx := "<vertical>seed</vertical>"
	tr.unit, err = c.CreateUnit(ctx, client.NewUnit{Collection: tr.col.UUID, OLX: olx,
		Links: []client.Link{{Target: tr.asset.UUID, Kind: client.KindAsset}}})
	if err != nil {
		t.Fatal(err)
	}
	j.unit(tr.unit, olx)

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { tr.loop(rctx, uint64(i)) })
	}
	tr.stop = func() {
		cancel()
		wg.Wait()
	}
	return tr
}

// run tallies the requests that start during the next d, with action run
// at its start, then waits for them to end; one still running requestBound
// after the phase is counted as hung.
func (tr *traffic) run(name string, d time.Duration, action func()) *tally {
	tl := &tally{name: name}
	start := time.Now()
	tr.mu.Lock()
	tr.cur = tl
	tr.mu.Unlock()
	action()
	time.Sleep(d - time.Since(start))
	tr.mu.Lock()
	tr.cur = nil // the loops start nothing until the next phase
	tr.mu.Unlock()
	deadline := time.Now().Add(requestBound)
	for {
		tr.mu.Lock()
		running := tl.started - tl.ok - tl.unavailable - tl.failed
		if running > 0 && time.Now().After(deadline) {
			tl.failed += running
			tl.other = append(tl.other, fmt.Sprintf("%d requests still running %s after the phase ended", running, requestBound))
			tl.hung = true
		}
		tr.mu.Unlock()
		if running == 0 || tl.hung {
			return tl
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loop makes requests during phases until ctx ends: one in two a write.
func (tr *traffic) loop(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x0a7a6e))
	for n := 0; ctx.Err() == nil; n++ {
		tr.mu.Lock()
		tl := tr.cur
		if tl != nil {
			tl.started++
		}
		tr.mu.Unlock()
		if tl == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		op, took, err := tr.one(ctx, rng, n)
		tr.mu.Lock()
		if !tl.hung {
			tl.record(op, err, took)
		}
		tr.mu.Unlock()
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
}

// one makes one request and says what it was, how it ended and how long it
// took.
func (tr *traffic) one(ctx context.Context, rng *rand.Rand, n int) (string, time.Duration, error) {
	c := tr.c
	start := time.Now()
	var op string
	var err error
	switch rng.IntN(8) {
	case 0:
		op = "GET blob"
		err = checkBlob(ctx, c, tr.blob, -1)
	case 1:
		op = "GET unit"
		_, err = c.Unit(ctx, tr.unit.UUID, client.Latest)
	case 2:
		op = "GET asset content"
		var d *client.Download
		if d, err = c.AssetContent(ctx, tr.asset.UUID, client.Latest, client.GetOptions{}); err == nil {
			var h cas.Hash
			h, _, err = readAll(d)
			if err == nil && h != tr.asset.Hash {
				err = fmt.Errorf("asset content hashes to %s, want %s", h, tr.asset.Hash)
			}
		}
	case 3:
		op = "POST resolve"
		_, err = c.Resolve(ctx, []string{client.Ref(tr.unit.UUID, client.Latest), client.Ref(tr.asset.UUID, client.Latest)}, true)
	case 4:
		op = "PUT blob"
		b := content{seed: rng.Uint64(), size: 4<<10 + rng.IntN(64<<10)}.bytes()
		h := cas.Sum(b)
		if _, err = c.PutBlob(ctx, h, client.BytesBody(b)); err == nil {
			tr.j.blob(h, int64(len(b)))
		}
	case 5:
		op = "POST asset"
		b := content{seed: rng.Uint64(), size: 4<<10 + rng.IntN(64<<10)}.bytes()
		var a client.Asset
		if a, err = c.CreateAsset(ctx, client.NewAsset{Collection: tr.col.UUID, Name: fmt.Sprintf("a-%x", rng.Uint64())},
			client.Content{Body: client.BytesBody(b)}); err == nil {
			tr.j.asset(a)
		}
	default:
		op = "POST unit version"
		olx := fmt.Sprintf("<vertical n=\"%d\">%x</vertical>", n, rng.Uint64())
		var u client.Unit
		if u, _, err = c.NewUnitVersion(ctx, tr.unit.UUID, client.UnitChange{OLX: olx}); err == nil {
			tr.j.unit(u, olx)
		}
	}
	return op, time.Since(start), err
}

func (tl *tally) record(op string, err error, took time.Duration) {
	if took > tl.slowest {
		tl.slowest, tl.slowestOp = took, op
	}
	switch {
	case err == nil:
		tl.ok++
	case client.StatusOf(err) == 503 && errors.Is(err, client.ErrUnavailable):
		tl.unavailable++
	default:
		tl.failed++
		msg := op + ": " + err.Error()
		for _, o := range tl.other {
			if o == msg {
				return
			}
		}
		tl.other = append(tl.other, msg)
	}
}

func (tl *tally) String() string {
	return fmt.Sprintf("%s: %d requests ok, %d answered 503 unavailable, %d other errors; slowest %s (%s)",
		tl.name, tl.ok, tl.unavailable, tl.failed, tl.slowest.Round(time.Millisecond), tl.slowestOp)
}

func (tl *tally) errors() string {
	s := append([]string(nil), tl.other...)
	sort.Strings(s)
	if len(s) > 8 {
		s = s[:8]
	}
	return strings.Join(s, "\n\t")
}

// expectAllOK: with the dependency up, everything succeeds.
func (tl *tally) expectAllOK(t *testing.T) {
	t.Helper()
	t.Log(tl)
	if tl.ok == 0 || tl.unavailable > 0 || len(tl.other) > 0 {
		t.Errorf("%s: want every request to succeed:\n\t%s", tl, tl.errors())
	}
}

// expectUnavailable: with the dependency gone, requests that need it fail
// with 503 within the bound, and nothing else goes wrong.
func (tl *tally) expectUnavailable(t *testing.T) {
	t.Helper()
	if tl.unavailable == 0 {
		t.Errorf("%s: want requests answered 503 unavailable", tl)
	}
	tl.expectNoOtherErrors(t)
}

// expectNoOtherErrors: requests succeed or answer 503, within the bound.
func (tl *tally) expectNoOtherErrors(t *testing.T) {
	t.Helper()
	t.Log(tl)
	if len(tl.other) > 0 {
		t.Errorf("%s: want only successes and 503 unavailable:\n\t%s", tl, tl.errors())
	}
	if tl.slowest > requestBound {
		t.Errorf("%s: a request took %s (%s), more than %s", tl, tl.slowest, tl.slowestOp, requestBound)
	}
}
