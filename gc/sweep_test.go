package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

func TestRetention(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		d := map[string][]byte{}
		for _, n := range []string{"a1", "a2", "a3", "b1", "b2", "d1", "d2", "f1", "f2", "p1", "p2", "u1", "e1", "e2", "e3"} {
			d[n] = w.data(n)
		}
		yes, no := true, false
		// A collects; its v2 was created long ago but superseded only now.
		a := w.asset(true, d["a1"], d["a2"])
		// B does not collect.
		b := w.asset(false, d["b1"], d["b2"])
		// D's latest version sets the flag: its v1 goes.
		dd := w.asset(false, d["d1"])
		d2 := w.upload(d["d2"])
		w.update("D v2", func(tx index.Tx) error {
			_, _, err := tx.CommitAsset(dd, index.AssetChange{Hash: d2, GarbageCollect: &yes}, false)
			return err
		})
		// F's latest version clears the flag: nothing goes.
		f := w.asset(true, d["f1"])
		f2 := w.upload(d["f2"])
		w.update("F v2", func(tx index.Tx) error {
			_, _, err := tx.CommitAsset(f, index.AssetChange{Hash: f2, GarbageCollect: &no}, false)
			return err
		})
		// P's v1 is pinned by a unit.
		p := w.asset(true, d["p1"], d["p2"])
		w.unit(false, d["u1"], []index.Link{{Target: p, Version: 1}}, false)
		// E collects and has a draft.
		e := w.asset(true, d["e1"], d["e2"])
		w.assetVersion(e, d["e3"], true)

		w.clk.Advance(800 * time.Hour)
		w.assetVersion(a, d["a3"], false)

		c := w.collector(Options{})
		rep := w.sweep(c, Request{})
		if rep.VersionsDeleted != 3 {
			t.Errorf("versions deleted %d, want 3 (A v1, D v1, E v1)", rep.VersionsDeleted)
		}
		gone := map[uuid.UUID][]int64{a: {1}, dd: {1}, e: {1}}
		kept := map[uuid.UUID][]int64{a: {2, 3}, b: {1, 2}, dd: {2}, f: {1, 2}, p: {1, 2}, e: {2, 0}}
		for id, vs := range gone {
			for _, v := range vs {
				if w.version(index.KindAsset, id, v) {
					t.Errorf("asset %s v%d kept", id, v)
				}
			}
		}
		for id, vs := range kept {
			for _, v := range vs {
				if !w.version(index.KindAsset, id, v) {
					t.Errorf("asset %s v%d deleted", id, v)
				}
			}
		}
		// Their bytes go in the same sweep; the others stay.
		for n, data := range d {
			want := n != "a1" && n != "d1" && n != "e1"
			if got := w.stored(data); got != want {
				t.Errorf("blob %s stored %v, want %v", n, got, want)
			}
		}
		if rep.BlobsDeleted != 3 {
			t.Errorf("blobs deleted %d, want 3", rep.BlobsDeleted)
		}
		w.checkReferencedStored()
	})
}

func TestOrphans(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		d := map[string][]byte{}
		for _, n := range []string{"o1", "o2", "o3", "o4", "u1", "u3", "u4", "u4d"} {
			d[n] = w.data(n)
		}
		o1 := w.asset(true, d["o1"])  // linked, then unlinked: an orphan after the grace
		o2 := w.asset(true, d["o2"])  // never linked: no orphan
		o3 := w.asset(false, d["o3"]) // linked then unlinked, but no flag
		o4 := w.asset(true, d["o4"])  // linked by a draft only
		u1 := w.unit(false, d["u1"], []index.Link{{Target: o1}}, false)
		u3 := w.unit(false, d["u3"], []index.Link{{Target: o3}}, false)
		u4 := w.unit(false, d["u4"], nil, false)
		w.unitVersion(u4, d["u4d"], []index.Link{{Target: o4}}, true)
		w.update("delete units", func(tx index.Tx) error {
			if err := tx.DeleteEntity(u1); err != nil {
				return err
			}
			return tx.DeleteEntity(u3)
		})
		c := w.collector(Options{})
		rep := w.sweep(c, Request{})
		if rep.AssetsDeleted != 0 {
			t.Fatalf("assets deleted within the grace: %d", rep.AssetsDeleted)
		}
		// A day later o1 is an orphan; the deleted units' bytes, whose
		// leases have ended, go too.
		w.clk.Advance(25 * time.Hour)
		rep = w.sweep(c, Request{})
		if rep.AssetsDeleted != 1 {
			t.Fatalf("assets deleted %d, want 1", rep.AssetsDeleted)
		}
		if w.version(index.KindAsset, o1, 1) {
			t.Error("orphan o1 kept")
		}
		for _, id := range []uuid.UUID{o2, o3, o4} {
			if !w.version(index.KindAsset, id, 1) {
				t.Errorf("asset %s deleted", id)
			}
		}
		for n, data := range d {
			want := n != "o1" && n != "u1" && n != "u3"
			if got := w.stored(data); got != want {
				t.Errorf("blob %s stored %v, want %v", n, got, want)
			}
		}
		w.checkReferencedStored()
	})
}

func TestMarkAndSweep(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		d := map[string][]byte{}
		for _, n := range []string{"ref", "d1", "d2", "unrefOld", "pendingOld", "strayOld", "g1",
			"unrefLeased", "pendingFresh", "strayYoung", "renewed"} {
			d[n] = w.data(n)
		}
		w.asset(false, d["ref"])
		dr := w.asset(false, d["d1"])
		w.assetVersion(dr, d["d2"], true)
		w.upload(d["unrefOld"])
		if _, _, err := w.idx.BeginBlob(w.ctx, cas.Sum(d["pendingOld"])); err != nil {
			t.Fatal(err)
		}
		if _, err := w.store.Put(w.ctx, bytesReader(d["strayOld"]), cas.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		g := w.asset(false, d["g1"])
		w.update("delete g", func(tx index.Tx) error { return tx.DeleteEntity(g) })
		w.upload(d["renewed"])

		w.clk.Advance(25 * time.Hour)
		w.upload(d["unrefLeased"])
		if _, _, err := w.idx.BeginBlob(w.ctx, cas.Sum(d["pendingFresh"])); err != nil {
			t.Fatal(err)
		}
		if _, err := w.store.Put(w.ctx, bytesReader(d["strayYoung"]), cas.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		touch(t, w.dir.Path(cas.Sum(d["strayYoung"])), w.now())
		if _, err := w.idx.RenewBlobs(w.ctx, []cas.Hash{cas.Sum(d["renewed"])}); err != nil {
			t.Fatal(err)
		}

		c := w.collector(Options{BatchSize: 2})
		rep := w.sweep(c, Request{})
		for n, want := range map[string]bool{
			"ref": true, "d1": true, "d2": true, "unrefLeased": true, "renewed": true,
			"unrefOld": false, "g1": false,
		} {
			if got := w.stored(d[n]); got != want {
				t.Errorf("blob %s stored %v, want %v", n, got, want)
			}
		}
		if w.hasBytes(d["strayOld"]) || !w.hasBytes(d["strayYoung"]) {
			t.Error("strays: old one kept or young one deleted")
		}
		if _, ok := w.row(d["strayOld"]); ok {
			t.Error("a claimed stray left a registry row")
		}
		if _, ok := w.row(d["pendingOld"]); ok {
			t.Error("pending blob with an ended lease kept")
		}
		if b, ok := w.row(d["pendingFresh"]); !ok || b.State != index.BlobPending {
			t.Error("pending blob with a live lease claimed")
		}
		wantBytes := int64(len(d["unrefOld"]) + len(d["strayOld"]) + len(d["g1"]))
		if rep.BlobsDeleted != 4 || rep.BytesFreed != wantBytes || rep.BlobsKept != 7 {
			t.Errorf("deleted %d (want 4), freed %d (want %d), kept %d (want 7)", rep.BlobsDeleted, rep.BytesFreed, wantBytes, rep.BlobsKept)
		}
		w.checkReferencedStored()

		// A day later the leases have ended.
		w.clk.Advance(25 * time.Hour)
		rep = w.sweep(c, Request{})
		if rep.BlobsDeleted != 4 || rep.BlobsKept != 3 {
			t.Errorf("second sweep: deleted %d (want 4), kept %d (want 3)", rep.BlobsDeleted, rep.BlobsKept)
		}
		for _, n := range []string{"unrefLeased", "renewed", "strayYoung"} {
			if w.hasBytes(d[n]) {
				t.Errorf("%s kept after its lease", n)
			}
		}
		rows, blobs := w.counts()
		if rows != 3 || blobs != 3 {
			t.Errorf("left %d rows and %d blobs, want 3 and 3", rows, blobs)
		}
		w.checkReferencedStored()
	})
}

// dryRunFixture builds state in which each phase has work, and returns how
// many blobs only become unreferenced by the sweep's own deletions.
func dryRunFixture(w *world) int64 {
	a := w.asset(true, w.data("a1"), w.data("a2")) // a1 goes by retention
	_ = a
	o := w.asset(true, w.data("o1")) // o1 goes as an orphan
	u := w.unit(false, w.data("u"), []index.Link{{Target: o}}, false)
	w.update("delete u", func(tx index.Tx) error { return tx.DeleteEntity(u) })
	w.upload(w.data("unreferenced"))
	if _, err := w.store.Put(w.ctx, bytesReader(w.data("stray")), cas.PutOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.asset(false, w.data("kept"))
	w.clk.Advance(800 * time.Hour)
	return 2
}

func TestDryRunChangesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		freedBySweep := dryRunFixture(w)
		c := w.collector(Options{})
		rows, blobs := w.counts()
		var refs int
		_ = w.idx.ReferencedHashes(w.ctx, func(cas.Hash) error { refs++; return nil })
		dry := w.sweep(c, Request{DryRun: true})
		rows2, blobs2 := w.counts()
		var refs2 int
		_ = w.idx.ReferencedHashes(w.ctx, func(cas.Hash) error { refs2++; return nil })
		if rows != rows2 || blobs != blobs2 || refs != refs2 {
			t.Fatalf("dry run changed rows %d→%d, blobs %d→%d, references %d→%d", rows, rows2, blobs, blobs2, refs, refs2)
		}
		if !dry.DryRun || dry.VersionsDeleted != 1 || dry.AssetsDeleted != 1 {
			t.Errorf("dry report %+v", dry)
		}
		real := w.sweep(c, Request{})
		if real.VersionsDeleted != dry.VersionsDeleted || real.AssetsDeleted != dry.AssetsDeleted {
			t.Errorf("versions/assets: dry %d/%d, real %d/%d", dry.VersionsDeleted, dry.AssetsDeleted, real.VersionsDeleted, real.AssetsDeleted)
		}
		if dry.BlobsDeleted != real.BlobsDeleted-freedBySweep || dry.BlobsKept != real.BlobsKept+freedBySweep || len(dry.Notes) == 0 {
			t.Errorf("blobs: dry %d kept %d, real %d kept %d (freed by the sweep itself: %d), notes %q",
				dry.BlobsDeleted, dry.BlobsKept, real.BlobsDeleted, real.BlobsKept, freedBySweep, dry.Notes)
		}
		if real.BlobsDeleted != 5 { // a1, o1, u, unreferenced, stray
			t.Errorf("real sweep deleted %d blobs, want 5", real.BlobsDeleted)
		}
		// A dry run on the state the sweep left finds nothing to do.
		again := w.sweep(c, Request{DryRun: true})
		if again.VersionsDeleted+again.AssetsDeleted+again.BlobsDeleted != 0 {
			t.Errorf("dry run after the sweep: %+v", again)
		}
		w.checkReferencedStored()
	})
}

func TestReportsStoredAndListed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		dryRunFixture(w)
		c := w.collector(Options{})
		r1 := w.sweep(c, Request{DryRun: true})
		r2 := w.sweep(c, Request{Retention: dur(time.Hour), Grace: dur(0)})
		id3, err := c.Start(w.ctx, Request{})
		if err != nil {
			t.Fatal(err)
		}
		r3, err := c.Wait(w.ctx, id3)
		if err != nil {
			t.Fatal(err)
		}
		if r3.Status != StatusSucceeded {
			t.Fatalf("background sweep: %+v", r3)
		}
		runs, err := listRuns(w.ctx, c, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 3 || runs[0].ID != id3 || runs[1].ID != r2.ID || runs[2].ID != r1.ID {
			t.Fatalf("runs not newest first: %v", runIDs(runs))
		}
		if runs, _ := listRuns(w.ctx, c, 1); len(runs) != 1 {
			t.Errorf("limit 1 gave %d", len(runs))
		}
		got, err := c.Run(w.ctx, r2.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.BlobsDeleted != r2.BlobsDeleted || got.BytesFreed != r2.BytesFreed || got.Grace != "0s" ||
			got.Retention != "1h0m0s" || len(got.Phases) != 6 || got.FinishedAt == nil || !got.StartedAt.Equal(r2.StartedAt) {
			t.Errorf("stored report %+v\nreturned %+v", got, r2)
		}
		raw, err := w.idx.GCRun(w.ctx, r1.ID)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw.Report, &m); err != nil {
			t.Fatal(err)
		}
		if m["dry_run"] != true || m["status"] != "succeeded" {
			t.Errorf("stored JSON %s", raw.Report)
		}
		if _, err := c.Run(w.ctx, uuid.NewString()); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown run: %v", err)
		}
	})
}

// gatedBlobs holds a sweep inside its walk until released.
type gatedBlobs struct {
	Blobs
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gatedBlobs) Walk(ctx context.Context, fn func(cas.Info) error) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Blobs.Walk(ctx, fn)
}

func TestConcurrentSweepIsErrRunning(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		g := &gatedBlobs{Blobs: w.store, entered: make(chan struct{}), release: make(chan struct{})}
		c1 := New(w.idx, g, testOptions(Options{Now: w.now}))
		defer c1.Close()
		id, err := c1.Start(w.ctx, Request{})
		if err != nil {
			t.Fatal(err)
		}
		<-g.entered
		// Another replica: its own handle on the same index where the engine
		// has one (PostgreSQL), else the same store.
		other := w.idx
		if p, ok := peers.Load(w.idx); ok {
			other = p.(func() index.Store)()
		}
		c2 := New(other, w.store, testOptions(Options{Now: w.now}))
		if _, err := c2.Sweep(w.ctx, Request{}); !errors.Is(err, ErrRunning) {
			t.Errorf("second Sweep: %v, want ErrRunning", err)
		}
		if _, err := c2.Start(w.ctx, Request{DryRun: true}); !errors.Is(err, ErrRunning) {
			t.Errorf("second Start: %v, want ErrRunning", err)
		}
		rep, err := c2.Run(w.ctx, id)
		if err != nil || rep.Status != StatusRunning || rep.Progress == nil || rep.FinishedAt != nil {
			t.Errorf("running report %+v %v", rep, err)
		}
		close(g.release)
		if rep, err = c1.Wait(w.ctx, id); err != nil {
			t.Fatal(err)
		}
		if rep.Status != StatusSucceeded {
			t.Fatalf("first sweep: %+v", rep)
		}
		if _, err := c2.Sweep(w.ctx, Request{}); err != nil {
			t.Errorf("sweep after the first ended: %v", err)
		}
	})
}

// faultyBlobs fails DeleteMany: before deleting (a sweep that died after its
// claim) or after (died between delete and forget).
type faultyBlobs struct {
	Blobs
	deleteFirst bool
}

func (f *faultyBlobs) DeleteMany(ctx context.Context, hs []cas.Hash) error {
	if f.deleteFirst {
		if err := f.Blobs.DeleteMany(ctx, hs); err != nil {
			return err
		}
	}
	return errInjected
}

func TestInterruptedSweepIsCompleted(t *testing.T) {
	for _, deleteFirst := range []bool{false, true} {
		name := "died-after-claim"
		if deleteFirst {
			name = "died-after-delete"
		}
		t.Run(name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, w *world) {
				ref := w.data("ref")
				w.asset(false, ref)
				var garbage [][]byte
				for i := 0; i < 5; i++ {
					g := w.data("garbage")
					garbage = append(garbage, g)
					w.upload(g)
				}
				w.clk.Advance(25 * time.Hour)
				broken := New(w.idx, &faultyBlobs{Blobs: w.store, deleteFirst: deleteFirst}, testOptions(Options{Now: w.now, BatchSize: 2}))
				rep, err := broken.Sweep(w.ctx, Request{})
				if !errors.Is(err, errInjected) {
					t.Fatalf("broken sweep: %v", err)
				}
				if rep.Status != StatusFailed {
					t.Fatalf("report %+v", rep)
				}
				var deleting []cas.Hash
				_ = w.idx.DeletingBlobs(w.ctx, func(b index.Blob) error { deleting = append(deleting, b.Hash); return nil })
				if len(deleting) != 2 {
					t.Fatalf("%d rows deleting, want one batch of 2", len(deleting))
				}
				// While claimed, a commit naming it fails (404) and an upload waits.
				h := deleting[0]
				err = w.idx.Update(w.ctx, func(tx index.Tx) error {
					_, err := tx.CreateAsset(index.NewAsset{Collection: w.coll, MediaType: "x/y", Hash: h})
					return err
				})
				if !errors.Is(err, index.ErrBlobMissing) {
					t.Errorf("commit naming a claimed blob: %v, want ErrBlobMissing", err)
				}
				if _, _, err := w.idx.BeginBlob(w.ctx, h); !errors.Is(err, index.ErrBlobBusy) {
					t.Errorf("upload of a claimed blob: %v, want ErrBlobBusy", err)
				}
				stored, err := w.Run(broken, rep.ID)
				if err != nil || stored.Status != StatusFailed || stored.Error == "" {
					t.Errorf("stored failed report %+v %v", stored, err)
				}

				c := w.collector(Options{})
				rep = w.sweep(c, Request{})
				if rep.Phases[2].Name != PhaseResume || rep.Phases[2].Items != 2 {
					t.Errorf("resume phase %+v", rep.Phases[2])
				}
				if rep.BlobsDeleted != 5 {
					t.Errorf("blobs deleted %d, want 5", rep.BlobsDeleted)
				}
				for _, g := range garbage {
					if w.stored(g) {
						t.Errorf("garbage %s kept", cas.Sum(g))
					}
				}
				if !w.stored(ref) {
					t.Fatal("referenced blob deleted")
				}
				// The blob can be uploaded and named again.
				again := w.upload(garbage[0])
				w.update("commit again", func(tx index.Tx) error {
					_, err := tx.CreateAsset(index.NewAsset{Collection: w.coll, MediaType: "x/y", Hash: again})
					return err
				})
				if !w.stored(garbage[0]) {
					t.Error("re-uploaded blob missing")
				}
				w.checkReferencedStored()
			})
		})
	}
}

func (w *world) Run(c *Collector, id string) (Report, error) { return c.Run(w.ctx, id) }

func runIDs(rs []Report) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// listRuns returns the first page of up to limit reports.
func listRuns(ctx context.Context, c *Collector, limit int) ([]Report, error) {
	page, err := c.Runs(ctx, limit, "")
	return page.Items, err
}

// TestMassDeleteGuard: a plan deleting more than MaxDeleteShare of the
// blobs or bytes stops before deleting any blob (status failed, a note, and
// ErrMassDelete) unless forced; a dry run says the same in a note.
func TestMassDeleteGuard(t *testing.T) {
	forEachEngine(t, func(t *testing.T, w *world) {
		keep := w.data("kept")
		w.asset(false, keep)
		var garbage [][]byte
		for i := range 3 {
			d := w.data(fmt.Sprintf("garbage %d", i))
			w.upload(d)
			garbage = append(garbage, d)
		}
		w.clk.Advance(48 * time.Hour)
		c := w.collector(Options{MaxDeleteShare: 0.5})
		dry := w.sweep(c, Request{DryRun: true})
		if dry.Status != StatusSucceeded || !hasNote(dry.Notes, "more than the limit of 50%") {
			t.Errorf("dry run: status %s, notes %q; want a warning", dry.Status, dry.Notes)
		}
		rep, err := c.Sweep(w.ctx, Request{})
		if !errors.Is(err, ErrMassDelete) {
			t.Fatalf("sweep: %v, want ErrMassDelete", err)
		}
		if rep.Status != StatusFailed || rep.BlobsDeleted != 0 || !hasNote(rep.Notes, "stopped before deleting any blob") ||
			!strings.Contains(rep.Error, "3 of 4 blobs") {
			t.Errorf("refused report: %+v", rep)
		}
		stored, err := c.Run(w.ctx, rep.ID)
		if err != nil || stored.Status != StatusFailed || stored.Error == "" {
			t.Errorf("stored report: %+v, %v", stored, err)
		}
		for _, d := range append(garbage, keep) {
			if !w.stored(d) {
				t.Fatalf("blob %s deleted by a refused sweep", cas.Sum(d))
			}
		}
		// A larger share lets it through; so does Force.
		forced := w.sweep(c, Request{Force: true})
		if forced.Status != StatusSucceeded || forced.BlobsDeleted != 3 || !hasNote(forced.Notes, "forced") {
			t.Errorf("forced sweep: %+v", forced)
		}
		for _, d := range garbage {
			if w.stored(d) {
				t.Errorf("garbage %s kept by a forced sweep", cas.Sum(d))
			}
		}
		if !w.stored(keep) {
			t.Error("the referenced blob went")
		}
	})
}

func hasNote(notes []string, part string) bool {
	for _, n := range notes {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}
