package indextest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// The change feed (index.ChangeFeed, API.md "Changes"). Stores without it
// skip these tests, saying so.
var changeTests = []test{
	{"Events", testChangeEvents},
	{"NothingForNoOps", testChangeNoOps},
	{"Pages", testChangePages},
	{"Collection", testChangeCollection},
	{"Malformed", testChangeMalformed},
	{"Head", testChangeHead},
	{"Sweep", testChangeSweep},
	{"Retention", testChangeRetention},
	{"Wait", testChangeWait},
	{"ConcurrentWriters", testChangeConcurrent},
}

func (e *env) feed() index.ChangeFeed {
	e.t.Helper()
	f, ok := e.s.(index.ChangeFeed)
	if !ok {
		e.t.Skip("the store has no change feed (index.ChangeFeed)")
	}
	return f
}

// follow reads the feed from after to its end, in pages of limit, and
// returns the changes and the last NextCursor.
func (e *env) follow(after string, limit int, coll uuid.UUID) ([]index.FeedChange, string) {
	e.t.Helper()
	f := e.feed()
	var out []index.FeedChange
	for i := 0; i < 10000; i++ {
		p, err := f.Changes(e.ctx, index.ChangeQuery{After: after, Limit: limit, Collection: coll})
		if err != nil {
			e.t.Fatalf("Changes(after %q): %v", after, err)
		}
		if p.NextCursor == "" {
			e.t.Fatalf("Changes(after %q): no next cursor", after)
		}
		if len(p.Items) == 0 && p.Held {
			// Committed changes wait for older transactions to end
			// (PostgreSQL: possibly in another database of the cluster).
			if p, err = index.WaitChanges(e.ctx, f, index.ChangeQuery{After: after, Limit: limit, Collection: coll}, 30*time.Second); err != nil {
				e.t.Fatalf("WaitChanges(after %q): %v", after, err)
			}
		}
		out = append(out, p.Items...)
		after = p.NextCursor
		if len(p.Items) == 0 {
			return out, after
		}
	}
	e.t.Fatal("the feed does not end")
	return nil, ""
}

// change is what a test expects of a change.
type change struct {
	kind    index.Kind
	id      uuid.UUID
	coll    uuid.UUID
	version int64
	event   index.ChangeEvent
}

func (c change) String() string {
	return fmt.Sprintf("%s %s %s v%d (collection %s)", c.event, c.kind, c.id, c.version, c.coll)
}

func changesOf(cs []index.FeedChange) []change {
	out := make([]change, len(cs))
	for i, c := range cs {
		out[i] = change{c.Kind, c.ID, c.Collection, c.Version, c.Event}
	}
	return out
}

func (e *env) wantChanges(what string, got []index.FeedChange, want []change) {
	e.t.Helper()
	g := changesOf(got)
	if len(g) != len(want) {
		e.t.Errorf("%s: %d changes, want %d", what, len(g), len(want))
	}
	for i := 0; i < max(len(g), len(want)); i++ {
		switch {
		case i >= len(g):
			e.t.Errorf("%s: [%d] missing, want %s", what, i, want[i])
		case i >= len(want):
			e.t.Errorf("%s: [%d] %s, want none", what, i, g[i])
		case g[i] != want[i]:
			e.t.Errorf("%s: [%d] %s, want %s", what, i, g[i], want[i])
		}
	}
}

func testChangeEvents(e *env) {
	e.feed()
	c := e.collection("feed")
	u := e.unit(c.ID, "u")
	u2 := e.nextUnit(u.ID)
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	e.must("PublishUnitDraft", func(tx index.Tx) error { _, err := tx.PublishUnitDraft(u.ID); return err })
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob()}, true)
	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(u.ID) })
	d := e.draftUnit(c.ID, "d")
	e.must("PublishUnitDraft d", func(tx index.Tx) error { _, err := tx.PublishUnitDraft(d.ID); return err })
	a := e.asset(c.ID, "a.png")
	a2, _ := e.commitAsset(a.ID, index.AssetChange{Hash: e.blob()}, false)
	e.commitAsset(a.ID, index.AssetChange{Hash: e.blob()}, true)
	e.must("PublishAssetDraft", func(tx index.Tx) error { _, err := tx.PublishAssetDraft(a.ID); return err })
	da := e.createAsset(index.NewAsset{Collection: c.ID, Name: "draft.png", MediaType: "image/png", Draft: true})
	e.must("DeleteAssetDraft", func(tx index.Tx) error { return tx.DeleteAssetDraft(da.ID) })
	name := "renamed"
	e.must("UpdateCollection", func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(c.ID, index.CollectionPatch{Name: &name})
		return err
	})
	if err := e.deleteEntity(d.ID); err != nil {
		e.t.Fatalf("DeleteEntity: %v", err)
	}
	c2 := e.collection("gone")
	e.must("DeleteCollection", func(tx index.Tx) error { return tx.DeleteCollection(c2.ID, false) })

	U, A, C := index.KindUnit, index.KindAsset, index.KindCollection
	got, _ := e.follow("", 0, uuid.Nil)
	e.wantChanges("the feed", got, []change{
		{C, c.ID, c.ID, 1, index.EventCreated},
		{U, u.ID, c.ID, 1, index.EventCreated},
		{U, u.ID, c.ID, u2.Version, index.EventPublished},
		{U, u.ID, c.ID, 0, index.EventDraftSaved},
		{U, u.ID, c.ID, 3, index.EventPublished},
		{U, u.ID, c.ID, 0, index.EventDraftSaved},
		{U, u.ID, c.ID, 0, index.EventDraftDeleted},
		{U, d.ID, c.ID, 0, index.EventDraftSaved},
		{U, d.ID, c.ID, 1, index.EventCreated},
		{A, a.ID, c.ID, 1, index.EventCreated},
		{A, a.ID, c.ID, a2.Version, index.EventPublished},
		{A, a.ID, c.ID, 0, index.EventDraftSaved},
		{A, a.ID, c.ID, 3, index.EventPublished},
		{A, da.ID, c.ID, 0, index.EventDraftSaved},
		{A, da.ID, c.ID, 0, index.EventDraftDeleted},
		{C, c.ID, c.ID, 2, index.EventUpdated},
		{U, d.ID, c.ID, 0, index.EventDeleted},
		{C, c2.ID, c2.ID, 1, index.EventCreated},
		{C, c2.ID, c2.ID, 0, index.EventDeleted},
	})
	for i, ch := range got {
		if ch.At.IsZero() || ch.At.Location() != time.UTC {
			e.t.Errorf("change %d: At %v, want a time in UTC", i, ch.At)
		}
		if i > 0 && ch.At.Before(got[i-1].At) {
			e.t.Errorf("change %d: At %v before the previous %v", i, ch.At, got[i-1].At)
		}
	}
}

// testChangeNoOps: writes that create nothing, and rolled back
// transactions, are no change.
func testChangeNoOps(e *env) {
	e.feed()
	c := e.collection("noop")
	u := e.unit(c.ID, "u")
	_, head := e.follow("", 0, uuid.Nil)

	if _, created := e.commitUnit(u.ID, index.UnitChange{Hash: u.Hash}, false); created {
		e.t.Fatal("an identical version was created")
	}
	e.must("UpdateCollection", func(tx index.Tx) error {
		_, _, err := tx.UpdateCollection(c.ID, index.CollectionPatch{})
		return err
	})
	errRollback := errors.New("roll back")
	err := e.update(func(tx index.Tx) error {
		if _, err := tx.CreateCollection(index.NewCollection{}); err != nil {
			return err
		}
		if _, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: e.blob()}, false); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		e.t.Fatalf("Update: %v, want the closure's error", err)
	}
	// A refused write in a transaction that goes on records nothing either.
	e.must("refused delete", func(tx index.Tx) error {
		if err := tx.DeleteUnitDraft(u.ID); !errors.Is(err, index.ErrNotFound) {
			return fmt.Errorf("DeleteUnitDraft without a draft: %v, want ErrNotFound", err)
		}
		return nil
	})
	got, _ := e.follow(head, 0, uuid.Nil)
	e.wantChanges("after no-ops", got, nil)
}

// testChangePages: pages of any size list every change once, in order; an
// empty page's cursor still works.
func testChangePages(e *env) {
	e.feed()
	c := e.collection("pages")
	for i := 0; i < 7; i++ {
		e.unit(c.ID, fmt.Sprintf("u%d", i))
	}
	all, end := e.follow("", 0, uuid.Nil)
	if len(all) != 8 {
		e.t.Fatalf("%d changes, want 8", len(all))
	}
	for _, limit := range []int{1, 2, 3, 1000} {
		got, _ := e.follow("", limit, uuid.Nil)
		e.wantChanges(fmt.Sprintf("pages of %d", limit), got, changesOf(all))
	}
	// From the cursor of each change: the rest.
	for i, ch := range all {
		got, _ := e.follow(ch.Cursor, 2, uuid.Nil)
		e.wantChanges(fmt.Sprintf("after change %d", i), got, changesOf(all[i+1:]))
	}
	// From the end: nothing yet, then what comes next.
	got, end2 := e.follow(end, 0, uuid.Nil)
	e.wantChanges("at the end", got, nil)
	u := e.unit(c.ID, "late")
	got, _ = e.follow(end2, 0, uuid.Nil)
	e.wantChanges("after the end", got, []change{{index.KindUnit, u.ID, c.ID, 1, index.EventCreated}})
}

func testChangeCollection(e *env) {
	e.feed()
	c1, c2 := e.collection("one"), e.collection("two")
	u1 := e.unit(c1.ID, "u")
	e.unit(c2.ID, "u")
	a1 := e.asset(c1.ID, "a")
	for i := 0; i < 5; i++ {
		e.unit(c2.ID, fmt.Sprintf("x%d", i))
	}
	U := index.KindUnit
	want := []change{
		{index.KindCollection, c1.ID, c1.ID, 1, index.EventCreated},
		{U, u1.ID, c1.ID, 1, index.EventCreated},
		{index.KindAsset, a1.ID, c1.ID, 1, index.EventCreated},
	}
	for _, limit := range []int{1, 100} {
		got, end := e.follow("", limit, c1.ID)
		e.wantChanges(fmt.Sprintf("collection one, pages of %d", limit), got, want)
		// The filtered cursor moved past the other collection's changes.
		u2 := e.nextUnit(u1.ID)
		got, _ = e.follow(end, limit, c1.ID)
		e.wantChanges("collection one, next", got, []change{{U, u1.ID, c1.ID, u2.Version, index.EventPublished}})
		want = append(want, change{U, u1.ID, c1.ID, u2.Version, index.EventPublished})
	}
}

func testChangeMalformed(e *env) {
	f := e.feed()
	e.collection("x")
	for _, cur := range []string{"x", "AAAA", "not a cursor!", "%%", "AQAAAAAAAAAAAAAAAAAAAAA="} {
		if _, err := f.Changes(e.ctx, index.ChangeQuery{After: cur}); !errors.Is(err, index.ErrInvalid) {
			e.t.Errorf("Changes(after %q): %v, want ErrInvalid", cur, err)
		}
	}
	for _, limit := range []int{-1, index.MaxLimit + 1} {
		if _, err := f.Changes(e.ctx, index.ChangeQuery{Limit: limit}); !errors.Is(err, index.ErrInvalid) {
			e.t.Errorf("Changes(limit %d): %v, want ErrInvalid", limit, err)
		}
	}
}

func testChangeHead(e *env) {
	f := e.feed()
	empty, err := f.ChangesHead(e.ctx)
	if err != nil {
		e.t.Fatalf("ChangesHead: %v", err)
	}
	c := e.collection("head")
	got, _ := e.follow(empty, 0, uuid.Nil)
	e.wantChanges("from the empty feed's head", got, []change{{index.KindCollection, c.ID, c.ID, 1, index.EventCreated}})
	head, err := f.ChangesHead(e.ctx)
	if err != nil {
		e.t.Fatalf("ChangesHead: %v", err)
	}
	if head != got[0].Cursor {
		e.t.Errorf("ChangesHead = %q, want the last change's cursor %q", head, got[0].Cursor)
	}
	u := e.unit(c.ID, "u")
	got, _ = e.follow(head, 0, uuid.Nil)
	e.wantChanges("from the head", got, []change{{index.KindUnit, u.ID, c.ID, 1, index.EventCreated}})
}

// testChangeSweep: the sweep's deletions of versions and orphans are
// changes too.
func testChangeSweep(e *env) {
	e.feed()
	const day = 24 * time.Hour
	c := e.collection("sweep")
	gc := true
	a := e.createAsset(index.NewAsset{Collection: c.ID, Name: "a.png", MediaType: "image/png", GarbageCollect: true})
	u := e.createUnit(index.NewUnit{Collection: c.ID, Name: "u", GarbageCollect: true,
		Links: []index.Link{{Target: a.ID, Kind: index.KindAsset}}})
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), GarbageCollect: &gc}, false)
	// The link goes away: the asset becomes an orphan, v1 and v2 of the
	// unit expire once v3 is old enough.
	none := []index.Link{}
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), Links: &none}, false)
	_, head := e.follow("", 0, uuid.Nil)

	e.clock.Advance(30 * day)
	now := e.clock.Now()
	var expired []index.VersionKey
	if err := e.s.ExpiredVersions(e.ctx, now, 10*day, func(k index.VersionKey) error {
		expired = append(expired, k)
		return nil
	}); err != nil {
		e.t.Fatalf("ExpiredVersions: %v", err)
	}
	deleted, err := e.s.DeleteVersions(e.ctx, now, 10*day, expired)
	if err != nil || len(deleted) != 2 {
		e.t.Fatalf("DeleteVersions: %v, %v; want unit versions 1 and 2", deleted, err)
	}
	// Deleting the versions that linked the asset unlinked it just now.
	e.clock.Advance(2 * day)
	orphans, err := e.s.DeleteOrphans(e.ctx, e.clock.Now().Add(-day), []uuid.UUID{a.ID})
	if err != nil || len(orphans) != 1 {
		e.t.Fatalf("DeleteOrphans: %v, %v; want the asset", orphans, err)
	}
	got, _ := e.follow(head, 0, uuid.Nil)
	var want []change
	for _, k := range deleted {
		want = append(want, change{index.KindUnit, u.ID, c.ID, k.Version, index.EventDeleted})
	}
	want = append(want, change{index.KindAsset, a.ID, c.ID, 0, index.EventDeleted})
	e.wantChanges("the sweep's changes", got, want)
	for _, ch := range got {
		if !ch.At.After(now.Add(-time.Second)) {
			e.t.Errorf("a sweep's change at %v, want the sweep's time (about %v)", ch.At, now)
		}
	}
}

// testChangeRetention: pruning drops a prefix of the feed; a cursor from
// within it is gone, later ones still work.
func testChangeRetention(e *env) {
	f := e.feed()
	p, ok := e.s.(index.ChangePruner)
	if !ok {
		e.t.Skip("the store does not prune changes (index.ChangePruner)")
	}
	const day = 24 * time.Hour
	c := e.collection("old")
	e.unit(c.ID, "old")
	old, oldEnd := e.follow("", 0, uuid.Nil)
	if n, err := p.PruneChanges(e.ctx, e.clock.Now().Add(-day)); err != nil || n != 0 {
		e.t.Fatalf("PruneChanges of nothing old: %d, %v", n, err)
	}
	e.clock.Advance(8 * day)
	u := e.unit(c.ID, "young")
	cutoff := e.clock.Now().Add(-7 * day)
	n, err := p.PruneChanges(e.ctx, cutoff)
	if err != nil || n != 2 {
		e.t.Fatalf("PruneChanges: %d, %v; want the 2 old changes", n, err)
	}
	young := []change{{index.KindUnit, u.ID, c.ID, 1, index.EventCreated}}
	got, _ := e.follow("", 0, uuid.Nil)
	e.wantChanges("after pruning, from the start", got, young)
	if _, err := f.Changes(e.ctx, index.ChangeQuery{After: old[0].Cursor}); !errors.Is(err, index.ErrGone) {
		e.t.Errorf("Changes after a pruned change: %v, want ErrGone", err)
	}
	// A follower that had seen everything pruned misses nothing.
	got, _ = e.follow(oldEnd, 0, uuid.Nil)
	e.wantChanges("after pruning, from the old end", got, young)
	// Pruning again changes nothing; the head is not gone.
	if n, err := p.PruneChanges(e.ctx, cutoff); err != nil || n != 0 {
		e.t.Errorf("PruneChanges again: %d, %v", n, err)
	}
	head, err := f.ChangesHead(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	got, _ = e.follow(head, 0, uuid.Nil)
	e.wantChanges("from the head", got, nil)
	// Everything pruned: the head is still a valid cursor.
	e.clock.Advance(8 * day)
	if _, err := p.PruneChanges(e.ctx, e.clock.Now().Add(-7*day)); err != nil {
		e.t.Fatal(err)
	}
	head2, err := f.ChangesHead(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	u2 := e.unit(c.ID, "after")
	for _, from := range []string{head, head2} {
		got, _ = e.follow(from, 0, uuid.Nil)
		e.wantChanges("after pruning everything", got, []change{{index.KindUnit, u2.ID, c.ID, 1, index.EventCreated}})
	}
}

// testChangeWait: a waiting follower wakes when a change is committed.
func testChangeWait(e *env) {
	f := e.feed()
	head, err := f.ChangesHead(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	p, err := index.WaitChanges(e.ctx, f, index.ChangeQuery{After: head}, 50*time.Millisecond)
	if err != nil || len(p.Items) != 0 {
		e.t.Fatalf("WaitChanges with nothing new: %d items, %v", len(p.Items), err)
	}
	if time.Since(start) < 50*time.Millisecond {
		e.t.Errorf("WaitChanges returned after %v, before its wait", time.Since(start))
	}
	type result struct {
		p   index.ChangePage
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := index.WaitChanges(e.ctx, f, index.ChangeQuery{After: head}, 30*time.Second)
		done <- result{p, err}
	}()
	c := e.collection("wake")
	select {
	case r := <-done:
		if r.err != nil {
			e.t.Fatalf("WaitChanges: %v", r.err)
		}
		e.wantChanges("woken", r.p.Items, []change{{index.KindCollection, c.ID, c.ID, 1, index.EventCreated}})
	case <-time.After(20 * time.Second):
		e.t.Fatal("WaitChanges did not wake within 20s of a commit")
	}
}

// testChangeConcurrent: 8 writers commit versions while a follower reads;
// the follower sees every committed version once, each unit's in order.
func testChangeConcurrent(e *env) {
	f := e.feed()
	c := e.collection("busy")
	_, start := e.follow("", 0, uuid.Nil)
	const writers, each = 8, 12
	units := make([]index.Unit, writers)
	for i := range units {
		units[i] = e.unit(c.ID, fmt.Sprintf("w%d", i))
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	stop := make(chan struct{})
	var seen []index.FeedChange
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		after := start
		for i := 0; i < 100000; i++ {
			p, err := f.Changes(e.ctx, index.ChangeQuery{After: after, Limit: 5})
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("follower: %w", err))
				mu.Unlock()
				return
			}
			seen = append(seen, p.Items...)
			after = p.NextCursor
			if len(p.Items) == 0 {
				select {
				case <-stop:
					return
				default:
				}
			}
		}
	}()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(u index.Unit) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				h := e.blob()
				err := e.update(func(tx index.Tx) error {
					_, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: h}, false)
					return err
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}(units[w])
	}
	wg.Wait()
	// Every write is acknowledged: one more pass of the follower after
	// this finds them all.
	close(stop)
	<-followDone
	for _, err := range errs {
		e.t.Error(err)
	}
	rest, _ := e.follow(lastCursor(seen, start), 0, uuid.Nil)
	seen = append(seen, rest...)
	next := make(map[uuid.UUID]int64)
	for _, u := range units {
		next[u.ID] = 2
	}
	for _, ch := range seen[writers:] {
		want, ok := next[ch.ID]
		if !ok || ch.Event != index.EventPublished || ch.Version != want {
			e.t.Errorf("change %v v%d %s, want version %d of a writer's unit", ch.ID, ch.Version, ch.Event, want)
			continue
		}
		next[ch.ID] = want + 1
	}
	for id, n := range next {
		if n != each+2 {
			e.t.Errorf("unit %s: the feed reached version %d, want %d", id, n-1, each+1)
		}
	}
	if len(seen) != writers+writers*each {
		e.t.Errorf("%d changes, want %d", len(seen), writers+writers*each)
	}
}

func lastCursor(cs []index.FeedChange, def string) string {
	if len(cs) == 0 {
		return def
	}
	return cs[len(cs)-1].Cursor
}
