package gc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// clock is a settable clock shared by an index and a Collector in tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func hashN(i int) cas.Hash { return cas.Sum([]byte(fmt.Sprintf("blob %d", i))) }

func dur(d time.Duration) *time.Duration { return &d }

func TestStoredSorterMergesRuns(t *testing.T) {
	for _, runLen := range []int{1, 7, 1000, 5000} {
		t.Run(fmt.Sprint(runLen), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(runLen)))
			s := newStoredSorter(t.TempDir(), runLen)
			defer s.close()
			want := map[cas.Hash]cas.Info{}
			for i := 0; i < 3000; i++ {
				h := hashN(rng.IntN(2000)) // repeats on purpose
				in := cas.Info{Hash: h, Size: int64(rng.IntN(1 << 20)), ModTime: time.Unix(0, rng.Int64N(1<<60)).UTC()}
				if _, ok := want[h]; !ok {
					want[h] = in
				}
				if err := s.add(in); err != nil {
					t.Fatal(err)
				}
			}
			it, err := s.sorted()
			if err != nil {
				t.Fatal(err)
			}
			var got []cas.Hash
			for {
				in, ok, err := it.next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if _, ok := want[in.Hash]; !ok {
					t.Fatalf("unexpected hash %s", in.Hash)
				}
				if in.ModTime.IsZero() {
					t.Fatalf("mod time lost for %s", in.Hash)
				}
				got = append(got, in.Hash)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d hashes, want %d", len(got), len(want))
			}
			if !slices.IsSortedFunc(got, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) }) {
				t.Fatal("not sorted")
			}
		})
	}
}

// planFixture runs the planner over explicit sources.
func TestPlannerClassifies(t *testing.T) {
	cutoff := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old, fresh := cutoff.Add(-time.Hour), cutoff.Add(time.Second)
	h := make([]cas.Hash, 12)
	for i := range h {
		h[i] = hashN(i)
	}
	slices.SortFunc(h, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
	// Rows: h0 referenced, h1 unreferenced old, h2 unreferenced leased,
	// h3 pending old, h4 pending fresh, h5 deleting, h6 unreferenced old with
	// unknown size (bytes in the store give it), h11 referenced old.
	rows := []index.Blob{
		{Hash: h[0], Size: 10, State: index.BlobLive, LeasedAt: old},
		{Hash: h[1], Size: 11, State: index.BlobLive, LeasedAt: old},
		{Hash: h[2], Size: 12, State: index.BlobLive, LeasedAt: fresh},
		{Hash: h[3], Size: -1, State: index.BlobPending, LeasedAt: old},
		{Hash: h[4], Size: -1, State: index.BlobPending, LeasedAt: fresh},
		{Hash: h[5], Size: 15, State: index.BlobDeleting, LeasedAt: old},
		{Hash: h[6], Size: -1, State: index.BlobLive, LeasedAt: old},
		{Hash: h[11], Size: 21, State: index.BlobLive, LeasedAt: old},
	}
	// Stored: every row's bytes but h3/h4, plus strays h7 (old), h8 (young),
	// h9 (old, referenced: an anomaly), h10 (no mod time: old).
	stored := []cas.Info{
		{Hash: h[0], Size: 10}, {Hash: h[1], Size: 11}, {Hash: h[2], Size: 12},
		{Hash: h[5], Size: 15}, {Hash: h[6], Size: 16}, {Hash: h[11], Size: 21},
		{Hash: h[7], Size: 17, ModTime: old}, {Hash: h[8], Size: 18, ModTime: fresh},
		{Hash: h[9], Size: 19, ModTime: old}, {Hash: h[10], Size: 20},
	}
	slices.SortFunc(stored, compareInfo)
	refs := []cas.Hash{h[0], h[9], h[11]}
	var got []cas.Hash
	var sizes []int64
	p := &blobPlanner{
		refs:   &sliceHashes{refs},
		stored: &sliceStored{items: stored},
		cutoff: cutoff,
		emit: func(x cas.Hash, size int64) error {
			got = append(got, x)
			sizes = append(sizes, size)
			return nil
		},
	}
	for _, r := range rows {
		if err := p.row(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.finish(); err != nil {
		t.Fatal(err)
	}
	want := map[cas.Hash]int64{h[1]: 11, h[3]: 0, h[6]: 16, h[7]: 17, h[10]: 20}
	if len(got) != len(want) {
		t.Fatalf("candidates %d, want %d", len(got), len(want))
	}
	for i, x := range got {
		if size, ok := want[x]; !ok || size != sizes[i] {
			t.Errorf("candidate %s size %d; want in %v", x, sizes[i], want)
		}
	}
	st := p.stats
	if st.Referenced != 3 || st.Leased != 2 || st.Young != 1 || st.Strays != 2 || p.anomaly != 1 {
		t.Errorf("stats %+v anomaly %d", st, p.anomaly)
	}
	if st.CandidateBytes != 11+16+17+20 {
		t.Errorf("candidate bytes %d", st.CandidateBytes)
	}
	// Out of order rows are an error, not a wrong plan.
	if err := p.row(rows[0]); err == nil {
		t.Error("out of order row accepted")
	}
}

type sliceHashes struct{ hs []cas.Hash }

func (s *sliceHashes) next() (cas.Hash, bool, error) {
	if len(s.hs) == 0 {
		return cas.Hash{}, false, nil
	}
	h := s.hs[0]
	s.hs = s.hs[1:]
	return h, true, nil
}

// fakeWorld is a fake index and blob store with one blob of each kind.
type fakeWorld struct {
	clk   *clock
	idx   *fakeIndex
	blobs *fakeBlobs
	// referenced, unreferenced, leased, pendingOld, pendingFresh, strayOld,
	// strayYoung, expiredOnly (named only by an expired version), orphanOnly
	// (named only by an orphaned asset), shared (named by an expired version
	// and a retained one)
	h map[string]cas.Hash
}

func newFakeWorld(t *testing.T) *fakeWorld {
	clk := newClock()
	w := &fakeWorld{clk: clk, idx: newFakeIndex(clk.now), blobs: newFakeBlobs(), h: map[string]cas.Hash{}}
	old := clk.now().Add(-48 * time.Hour)
	fresh := clk.now().Add(-time.Hour)
	i := 0
	add := func(name string, row bool, state index.BlobState, leased time.Time, bytes bool, mod time.Time) cas.Hash {
		i++
		h := hashN(1000 + i)
		w.h[name] = h
		if row {
			w.idx.putBlob(h, int64(100*i), state, leased)
		}
		if bytes {
			w.blobs.put(h, int64(100*i), mod)
		}
		return h
	}
	w.idx.refs[add("referenced", true, index.BlobLive, old, true, old)] = 1
	add("unreferenced", true, index.BlobLive, old, true, old)
	add("leased", true, index.BlobLive, fresh, true, old)
	add("pendingOld", true, index.BlobPending, old, false, time.Time{})
	add("pendingFresh", true, index.BlobPending, fresh, false, time.Time{})
	add("strayOld", false, 0, time.Time{}, true, old)
	add("strayYoung", false, 0, time.Time{}, true, fresh)
	eo := add("expiredOnly", true, index.BlobLive, old, true, old)
	w.idx.refs[eo] = 1
	w.idx.versions[index.VersionKey{Kind: index.KindAsset, ID: uuid.New(), Version: 1}] = eo
	oo := add("orphanOnly", true, index.BlobLive, old, true, old)
	w.idx.refs[oo] = 2
	w.idx.orphans[uuid.New()] = []cas.Hash{oo, oo}
	sh := add("shared", true, index.BlobLive, old, true, old)
	w.idx.refs[sh] = 2
	w.idx.versions[index.VersionKey{Kind: index.KindAsset, ID: uuid.New(), Version: 1}] = sh
	return w
}

func (w *fakeWorld) collector(idx Index, opt Options) *Collector {
	opt.Now = w.clk.now
	opt.TempDir = ""
	c := New(idx, w.blobs, testOptions(opt))
	c.runLen = 3 // several sorted runs even in small tests
	return c
}

func TestSweepWithFakes(t *testing.T) {
	ctx := context.Background()
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{BatchSize: 2})
	rep, err := c.Sweep(ctx, Request{Grace: dur(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	gone := []string{"unreferenced", "pendingOld", "strayOld", "expiredOnly", "orphanOnly"}
	kept := []string{"referenced", "leased", "pendingFresh", "strayYoung", "shared"}
	for _, n := range gone {
		if _, ok := w.idx.blobs[w.h[n]]; ok || w.blobs.has(w.h[n]) {
			t.Errorf("%s: still there", n)
		}
	}
	for _, n := range kept {
		_, row := w.idx.blobs[w.h[n]]
		if n == "strayYoung" {
			row = true
		}
		if n == "pendingFresh" {
			if !row {
				t.Errorf("%s: row gone", n)
			}
			continue
		}
		if !row || !w.blobs.has(w.h[n]) {
			t.Errorf("%s: deleted", n)
		}
	}
	if rep.Status != StatusSucceeded || rep.VersionsDeleted != 2 || rep.AssetsDeleted != 1 ||
		rep.BlobsDeleted != int64(len(gone)) || rep.BlobsKept != int64(len(kept)) {
		t.Errorf("report %+v", rep)
	}
	// unreferenced 200, pendingOld 400, strayOld 600, expiredOnly 800, orphanOnly 900
	if rep.BytesFreed != 200+400+600+800+900 {
		t.Errorf("bytes freed %d", rep.BytesFreed)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "retention,orphans,resume,mark,sweep,cleanup" {
		t.Errorf("phases %v", names)
	}
	stored, err := c.Run(ctx, rep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.BlobsDeleted != rep.BlobsDeleted || stored.Status != StatusSucceeded || stored.FinishedAt == nil {
		t.Errorf("stored report %+v", stored)
	}
	// A second sweep finds nothing more.
	rep2, err := c.Sweep(ctx, Request{Grace: dur(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.BlobsDeleted != 0 || rep2.VersionsDeleted != 0 || rep2.AssetsDeleted != 0 {
		t.Errorf("second sweep %+v", rep2)
	}
}

func TestDryRunWithFakes(t *testing.T) {
	ctx := context.Background()
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{MaxDeleteShare: 1})
	beforeBlobs, beforeStore := len(w.idx.blobs), len(w.blobs.m)
	dry, err := c.Sweep(ctx, Request{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.idx.blobs) != beforeBlobs || len(w.blobs.m) != beforeStore || len(w.idx.versions) != 2 || len(w.idx.orphans) != 1 {
		t.Fatal("dry run changed something")
	}
	if w.blobs.deletes != 0 {
		t.Fatal("dry run deleted bytes")
	}
	real, err := c.Sweep(ctx, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if dry.VersionsDeleted != real.VersionsDeleted || dry.AssetsDeleted != real.AssetsDeleted {
		t.Errorf("dry %+v real %+v", dry, real)
	}
	// expiredOnly and orphanOnly are freed only by this sweep's deletions:
	// the dry run leaves them out and says so.
	if dry.BlobsDeleted != real.BlobsDeleted-2 || len(dry.Notes) == 0 {
		t.Errorf("dry run: dry %d real %d notes %q", dry.BlobsDeleted, real.BlobsDeleted, dry.Notes)
	}
	if !dry.DryRun || real.DryRun {
		t.Error("dry_run flag")
	}
}

func TestSweepRunningIsErrRunning(t *testing.T) {
	ctx := context.Background()
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{})
	unlock, err := w.idx.TryLockGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sweep(ctx, Request{}); !errors.Is(err, ErrRunning) {
		t.Fatalf("Sweep: %v, want ErrRunning", err)
	}
	if _, err := c.Start(ctx, Request{}); !errors.Is(err, ErrRunning) {
		t.Fatalf("Start: %v, want ErrRunning", err)
	}
	unlock()
	if _, err := c.Sweep(ctx, Request{Grace: dur(-time.Second)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative grace: %v", err)
	}
	runs, _ := listRuns(ctx, c, 10)
	if len(runs) != 0 {
		t.Fatalf("refused sweeps stored %d reports", len(runs))
	}
}

func TestInterruptedSweepWithFakes(t *testing.T) {
	ctx := context.Background()
	for _, deleteFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("died-after-delete=%v", deleteFirst), func(t *testing.T) {
			w := newFakeWorld(t)
			c := w.collector(w.idx, Options{})
			w.blobs.failDelete, w.blobs.deleteFirst = errInjected, deleteFirst
			rep, err := c.Sweep(ctx, Request{})
			if !errors.Is(err, errInjected) {
				t.Fatalf("sweep: %v", err)
			}
			if rep.Status != StatusFailed || rep.Error == "" || rep.FinishedAt == nil {
				t.Fatalf("failed report %+v", rep)
			}
			var deleting int
			for _, b := range w.idx.blobs {
				if b.State == index.BlobDeleting {
					deleting++
				}
			}
			if deleting == 0 {
				t.Fatal("no claimed rows left by the failed sweep")
			}
			w.blobs.failDelete = nil
			rep, err = c.Sweep(ctx, Request{})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range w.idx.blobs {
				if b.State == index.BlobDeleting {
					t.Fatalf("row %s still deleting", b.Hash)
				}
			}
			for _, n := range []string{"unreferenced", "pendingOld", "strayOld", "expiredOnly", "orphanOnly"} {
				if w.blobs.has(w.h[n]) {
					t.Errorf("%s: bytes remain", n)
				}
			}
			if !w.blobs.has(w.h["referenced"]) || !w.blobs.has(w.h["shared"]) {
				t.Error("referenced bytes deleted")
			}
			if rep.Phases[2].Name != PhaseResume || rep.Phases[2].Items == 0 {
				t.Errorf("resume phase %+v", rep.Phases[2])
			}
		})
	}
}

func TestStartRunsInBackground(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{})
	defer c.Close()
	id, err := c.Start(ctx, Request{})
	if err != nil {
		t.Fatal(err)
	}
	cancel() // the request that started it ends; the sweep goes on
	rep, err := c.Wait(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != StatusSucceeded || rep.BlobsDeleted == 0 {
		t.Fatalf("report %+v", rep)
	}
	runs, err := listRuns(context.Background(), c, 10)
	if err != nil || len(runs) != 1 || runs[0].ID != id {
		t.Fatalf("runs %v %v", runs, err)
	}
	if _, err := c.Run(context.Background(), "nope"); !errors.Is(err, ErrNotFound) || !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("Run(nope): %v", err)
	}
}

func TestReportJSONFields(t *testing.T) {
	ctx := context.Background()
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{})
	rep, err := c.Sweep(ctx, Request{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "dry_run", "started_at", "finished_at", "versions_deleted", "assets_deleted",
		"blobs_deleted", "bytes_freed", "blobs_kept", "phases"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report JSON lacks %q: %s", k, b)
		}
	}
	phases := m["phases"].([]any)
	p0 := phases[0].(map[string]any)
	if _, ok := p0["name"]; !ok {
		t.Errorf("phase lacks name: %v", p0)
	}
	if _, ok := p0["seconds"].(float64); !ok {
		t.Errorf("phase seconds not a number: %v", p0)
	}
	if _, err := time.Parse(time.RFC3339, m["started_at"].(string)); err != nil {
		t.Error(err)
	}
	if !strings.HasSuffix(m["started_at"].(string), "Z") {
		t.Errorf("started_at not UTC: %v", m["started_at"])
	}
}

func TestDeadRunIsMarkedFailed(t *testing.T) {
	ctx := context.Background()
	w := newFakeWorld(t)
	dead, _ := json.Marshal(Report{ID: "dead", Status: StatusRunning, StartedAt: w.clk.now(), Phases: []Phase{}})
	w.idx.runs["dead"] = index.GCRun{ID: "dead", StartedAt: w.clk.now(), Report: dead}
	c := w.collector(w.idx, Options{})
	if _, err := c.Sweep(ctx, Request{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(ctx, "dead")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != StatusFailed || rep.FinishedAt == nil {
		t.Fatalf("dead run %+v", rep)
	}
}

func TestScheduleSkipsWhileLocked(t *testing.T) {
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unlock, _ := w.idx.TryLockGC(ctx)
	ticks := make(chan error, 64)
	c.ticked = func(_ Report, err error) {
		select {
		case ticks <- err:
		default:
		}
	}
	done := make(chan struct{})
	go func() { c.Schedule(ctx, 10*time.Millisecond); close(done) }()
	timeout := time.After(20 * time.Second)
	// The first ticks meet the lock: skipped, and nothing stored.
	for range 2 {
		select {
		case err := <-ticks:
			if !errors.Is(err, ErrRunning) {
				t.Fatalf("tick while locked: %v, want ErrRunning", err)
			}
		case <-timeout:
			t.Fatal("no tick")
		}
	}
	if runs, _ := listRuns(context.Background(), c, 10); len(runs) != 0 {
		t.Fatalf("sweeps ran while locked: %d", len(runs))
	}
	unlock()
	for succeeded := false; !succeeded; {
		select {
		case err := <-ticks:
			succeeded = err == nil
			if err != nil && !errors.Is(err, ErrRunning) {
				t.Fatalf("scheduled sweep: %v", err)
			}
		case <-timeout:
			t.Fatal("no scheduled sweep succeeded")
		}
	}
	cancel()
	<-done
	c.Schedule(context.Background(), 0) // off: returns at once
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err != nil {
		t.Fatalf("second registration: %v", err)
	}
	w := newFakeWorld(t)
	c := w.collector(w.idx, Options{Metrics: m})
	if _, err := c.Sweep(context.Background(), Request{}); err != nil {
		t.Fatal(err)
	}
	w.blobs.failDelete = errInjected
	w.blobs.put(hashN(-1), 5, time.Time{})
	_, _ = c.Sweep(context.Background(), Request{})
	if got := metricValue(t, m.blobsFreed); got != 5 {
		t.Errorf("blobs freed %v", got)
	}
	if got := metricValue(t, m.sweeps.WithLabelValues("false")); got != 2 {
		t.Errorf("sweeps %v", got)
	}
	if got := metricValue(t, m.failed.WithLabelValues("false")); got != 1 {
		t.Errorf("failed %v", got)
	}
	if got := metricValue(t, m.lastSuccess); got == 0 {
		t.Error("last success not set")
	}
	if got := metricValue(t, m.running); got != 0 {
		t.Errorf("running %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "blockstore_gc_phase_duration_seconds" && len(mf.GetMetric()) != 6 {
			t.Errorf("phase histograms %d", len(mf.GetMetric()))
		}
	}
}

func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &m)
	return 0
}

// lostLock is an index whose sweep lock is gone (its session died).
type lostLock struct{ *fakeIndex }

func (lostLock) CheckGCLock(context.Context) error { return errors.New("session terminated") }

// TestSweepStopsWhenTheLockIsLost: with the lock gone, the sweep claims
// and deletes nothing, and fails saying why.
func TestSweepStopsWhenTheLockIsLost(t *testing.T) {
	ctx := context.Background()
	w := newFakeWorld(t)
	c := w.collector(lostLock{w.idx}, Options{BatchSize: 2})
	rep, err := c.Sweep(ctx, Request{Grace: dur(24 * time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "lock was lost") {
		t.Fatalf("sweep with a lost lock: %v", err)
	}
	if rep.BlobsDeleted != 0 {
		t.Fatalf("deleted %d blobs without the lock", rep.BlobsDeleted)
	}
	for n, h := range w.h {
		if b, ok := w.idx.blobs[h]; ok && b.State == index.BlobDeleting {
			t.Errorf("%s claimed without the lock", n)
		}
	}
}
