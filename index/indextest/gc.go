package indextest

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

var gcTests = []test{
	{"ReferencedHashes", testReferencedHashes},
	{"ExpiredVersions", testExpiredVersions},
	{"RetentionFollowsNewerDraftFlag", testRetentionDraftFlag},
	{"DeleteVersionsRechecks", testDeleteVersionsRechecks},
	{"OrphanedAssets", testOrphanedAssets},
	{"LockGC", testLockGC},
	{"Runs", testGCRuns},
	{"ClaimsCarryTheirSweep", testClaimsCarryTheirSweep},
}

// testSweep is the sweep id the registry tests claim under.
const testSweep = "indextest-sweep"

// testClaimsCarryTheirSweep: a claim records its sweep and a wall-clock
// time; only that sweep forgets the row; another sweep takes it over only
// once the claim is older than it asks, and then holds it alone.
func testClaimsCarryTheirSweep(e *env) {
	h := e.blob()
	e.clock.Advance(2 * time1h)
	before := time.Now()
	claimed, err := e.s.ClaimBlobs(e.ctx, "sweep-a", []cas.Hash{h}, e.clock.Now())
	e.wantOK("ClaimBlobs", err)
	if len(claimed) != 1 || claimed[0].ClaimedBy != "sweep-a" {
		e.t.Fatalf("ClaimBlobs = %+v, want one row claimed by sweep-a", claimed)
	}
	// The claim is stamped with the engine's wall clock, not the test clock.
	if at := claimed[0].ClaimedAt; at.Before(before.Add(-time.Minute)) || at.After(time.Now().Add(time.Minute)) {
		e.t.Fatalf("ClaimedAt = %v, want about %v", at, before)
	}
	var rows []index.Blob
	e.wantOK("DeletingBlobs", e.s.DeletingBlobs(e.ctx, func(b index.Blob) error { rows = append(rows, b); return nil }))
	if len(rows) != 1 || rows[0].ClaimedBy != "sweep-a" || rows[0].ClaimedAt.IsZero() {
		e.t.Fatalf("DeletingBlobs = %+v, want the row claimed by sweep-a", rows)
	}
	// Another sweep's forget leaves the row alone.
	e.wantOK("ForgetBlobs by sweep-b", e.s.ForgetBlobs(e.ctx, "sweep-b", []cas.Hash{h}))
	if b, err := e.s.Blob(e.ctx, h); err != nil || b.State != index.BlobDeleting {
		e.t.Fatalf("after another sweep's ForgetBlobs: %+v, %v; want the row deleting", b, err)
	}
	// A young claim is not taken over; the claimant does not reclaim its own.
	if got, err := e.s.ReclaimBlobs(e.ctx, "sweep-b", []cas.Hash{h}, time.Hour); err != nil || len(got) != 0 {
		e.t.Fatalf("ReclaimBlobs of a young claim = %+v, %v; want none", got, err)
	}
	if got, err := e.s.ReclaimBlobs(e.ctx, "sweep-a", []cas.Hash{h}, 0); err != nil || len(got) != 0 {
		e.t.Fatalf("ReclaimBlobs by the claimant = %+v, %v; want none", got, err)
	}
	// Wait out a tiny bound on the wall clock (what the fence measures).
	deadline := time.Now().Add(10 * time.Second)
	var got []index.Blob
	for len(got) == 0 && time.Now().Before(deadline) {
		got, err = e.s.ReclaimBlobs(e.ctx, "sweep-b", []cas.Hash{h, e.blob(), e.unregistered()}, time.Millisecond)
		e.wantOK("ReclaimBlobs", err)
	}
	if len(got) != 1 || got[0].Hash != h || got[0].ClaimedBy != "sweep-b" || !got[0].ClaimedAt.After(claimed[0].ClaimedAt) {
		e.t.Fatalf("ReclaimBlobs of an old claim = %+v, want h taken over by sweep-b with a later time", got)
	}
	// The first sweep has lost it: its forget does nothing; the new holder's works.
	e.wantOK("ForgetBlobs by sweep-a", e.s.ForgetBlobs(e.ctx, "sweep-a", []cas.Hash{h}))
	if _, err := e.s.Blob(e.ctx, h); err != nil {
		e.t.Fatalf("the row after the old holder's ForgetBlobs: %v", err)
	}
	e.wantOK("ForgetBlobs by sweep-b", e.s.ForgetBlobs(e.ctx, "sweep-b", []cas.Hash{h}))
	_, err = e.s.Blob(e.ctx, h)
	e.wantErr("Blob after the holder's ForgetBlobs", err, index.ErrNotFound)
}

func (e *env) referenced() []cas.Hash {
	e.t.Helper()
	var out []cas.Hash
	e.wantOK("ReferencedHashes", e.s.ReferencedHashes(e.ctx, func(h cas.Hash) error {
		if n := len(out); n > 0 && bytes.Compare(out[n-1][:], h[:]) >= 0 {
			return fmt.Errorf("hash %s after %s: not ascending and distinct", short(h), short(out[n-1]))
		}
		out = append(out, h)
		return nil
	}))
	return out
}

func testReferencedHashes(e *env) {
	if got := e.referenced(); len(got) != 0 {
		e.t.Fatalf("ReferencedHashes of an empty store = %d hashes", len(got))
	}
	c := e.collection("c")
	var want []cas.Hash
	ref := func() cas.Hash { h := e.blob(); want = append(want, h); return h }
	a := e.createAsset(index.NewAsset{Collection: c.ID, Hash: ref(), MediaType: "image/png"})
	e.commitAsset(a.ID, index.AssetChange{Hash: ref()}, false)
	e.commitAsset(a.ID, index.AssetChange{Hash: ref()}, true)
	shared := ref()
	u := e.createUnit(index.NewUnit{Collection: c.ID, Hash: shared, Links: []index.Link{{Target: a.ID}}})
	e.commitUnit(u.ID, index.UnitChange{Hash: ref()}, false)
	e.commitUnit(u.ID, index.UnitChange{Hash: shared}, false) // back to the first bytes: v3
	e.commitUnit(u.ID, index.UnitChange{Hash: ref()}, true)
	e.createUnit(index.NewUnit{Collection: c.ID, Hash: shared})
	e.createAsset(index.NewAsset{Collection: c.ID, Hash: shared, MediaType: "text/xml"})
	e.createUnit(index.NewUnit{Collection: c.ID, Hash: ref(), Draft: true})
	e.createAsset(index.NewAsset{Collection: c.ID, Hash: ref(), MediaType: "image/png", Draft: true})
	other := e.collection("other")
	e.createUnit(index.NewUnit{Collection: other.ID, Hash: ref()})
	// Not referenced: a deleted unit's, a registered blob nothing names, a pending one.
	gone := e.createUnit(index.NewUnit{Collection: c.ID})
	e.nextUnit(gone.ID)
	e.wantOK("DeleteEntity", e.deleteEntity(gone.ID))
	e.blob()
	e.pending()
	goneColl := e.collection("gone")
	e.createUnit(index.NewUnit{Collection: goneColl.ID})
	e.must("DeleteCollection", func(tx index.Tx) error { return tx.DeleteCollection(goneColl.ID, true) })

	sortHashes(want)
	got := e.referenced()
	if !slices.Equal(got, want) {
		e.t.Fatalf("ReferencedHashes = %v\nwant %v", shorts(got), shorts(want))
	}
	n := 0
	err := e.s.ReferencedHashes(e.ctx, func(cas.Hash) error {
		n++
		if n == 2 {
			return errStop
		}
		return nil
	})
	e.wantErr("ReferencedHashes stopped by its callback", err, errStop)
}

func (e *env) expired(now time.Time, retention time.Duration) []index.VersionKey {
	e.t.Helper()
	var out []index.VersionKey
	e.wantOK("ExpiredVersions", e.s.ExpiredVersions(e.ctx, now, retention, func(k index.VersionKey) error {
		out = append(out, k)
		return nil
	}))
	sortKeys(out)
	return out
}

func sortKeys(ks []index.VersionKey) {
	slices.SortFunc(ks, func(a, b index.VersionKey) int {
		if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
}

func (e *env) wantKeys(what string, got, want []index.VersionKey, names map[uuid.UUID]string) {
	e.t.Helper()
	sortKeys(got)
	sortKeys(want)
	if !slices.Equal(got, want) {
		e.t.Fatalf("%s:\n got %s\nwant %s", what, fmtKeys(got, names), fmtKeys(want, names))
	}
}

func fmtKeys(ks []index.VersionKey, names map[uuid.UUID]string) string {
	var b bytes.Buffer
	for _, k := range ks {
		n := names[k.ID]
		if n == "" {
			n = k.ID.String()[:8]
		}
		fmt.Fprintf(&b, "%s:%s@%d ", k.Kind, n, k.Version)
	}
	return "[" + b.String() + "]"
}

// retentionFixture builds, day by day, entities whose versions retention
// should and should not delete at day 30 with a retention of 15 days (the
// cutoff is day 15). It returns the expected expired versions.
type retentionFixture struct {
	e      *env
	names  map[uuid.UUID]string
	expect []index.VersionKey
	keys   map[string]index.VersionKey
	day0   time.Time
}

func (e *env) retentionFixture() *retentionFixture {
	f := &retentionFixture{e: e, names: map[uuid.UUID]string{}, keys: map[string]index.VersionKey{}}
	c := e.collection("c")
	f.day0 = e.clock.Peek()
	gc := index.UnitChange{GarbageCollect: ptr(true)}
	unit := func(name string, flag bool, links ...index.Link) uuid.UUID {
		u := e.createUnit(index.NewUnit{Collection: c.ID, Name: name, GarbageCollect: flag, Links: links})
		f.names[u.ID] = name
		return u.ID
	}
	commit := func(id uuid.UUID, ch index.UnitChange) {
		ch.Hash = e.blob()
		e.commitUnit(id, ch, false)
	}
	day := func(d int) {
		target := f.day0.Add(time.Duration(d) * time1d)
		e.clock.Advance(target.Sub(e.clock.Peek()))
	}
	asset := func(name string) uuid.UUID {
		a := e.createAsset(index.NewAsset{Collection: c.ID, Name: name, MediaType: "image/png", GarbageCollect: true})
		f.names[a.ID] = name
		return a.ID
	}
	nextAsset := func(id uuid.UUID) { e.commitAsset(id, index.AssetChange{Hash: e.blob()}, false) }
	collection := func(name string, flag bool) uuid.UUID {
		var id uuid.UUID
		e.must("CreateCollection", func(tx index.Tx) error {
			c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: name}, GarbageCollect: flag})
			id = c.ID
			return err
		})
		f.names[id] = name
		return id
	}
	patch := func(id uuid.UUID) {
		e.must("UpdateCollection", func(tx index.Tx) error {
			_, _, err := tx.UpdateCollection(id, index.CollectionPatch{Description: ptr(uuid.NewString())})
			return err
		})
	}
	expect := func(k index.Kind, id uuid.UUID, vs ...int64) {
		for _, v := range vs {
			f.expect = append(f.expect, index.VersionKey{Kind: k, ID: id, Version: v})
		}
	}

	// Day 0.
	a := unit("A superseded at days 10 and 20", true)
	b := unit("B superseded at day 25", true)
	cc := unit("C flag turned off", true)
	d := unit("D flag turned on", false)
	ee := unit("E with a draft", true)
	ff := unit("F v1 pinned by a latest version", true)
	g := unit("G v2 pinned by a draft", true)
	k := collection("K collection", true)
	l := collection("L collection without the flag", false)
	m := asset("M asset")
	n := asset("N asset v1 pinned")
	x := unit("X deleted", true)
	e.nextUnit(x)
	unit("P pins F@1", false, index.Link{Target: ff, Version: 1}, index.Link{Target: n, Version: 1})
	// Day 1.
	day(1)
	for _, id := range []uuid.UUID{d, ee, ff, g} {
		e.nextUnit(id)
	}
	patch(k)
	patch(l)
	nextAsset(m)
	nextAsset(n)
	// Day 2.
	day(2)
	commit(d, gc)
	for _, id := range []uuid.UUID{ee, ff, g} {
		e.nextUnit(id)
	}
	patch(k)
	patch(l)
	nextAsset(m)
	nextAsset(n)
	e.createUnit(index.NewUnit{Collection: c.ID, Name: "Q's draft pins G@2", Links: []index.Link{{Target: g, Version: 2}}, Draft: true})
	// Day 3.
	day(3)
	e.commitUnit(ee, index.UnitChange{Hash: e.blob()}, true)
	e.wantOK("DeleteEntity", e.deleteEntity(x))
	// Day 10.
	day(10)
	e.nextUnit(a)
	commit(cc, index.UnitChange{GarbageCollect: ptr(false)})
	// Day 11.
	day(11)
	e.nextUnit(cc)
	// Day 20.
	day(20)
	e.nextUnit(a)
	// Day 25.
	day(25)
	e.nextUnit(b)
	day(30)

	expect(index.KindUnit, a, 1)
	expect(index.KindUnit, d, 1, 2)
	expect(index.KindUnit, ee, 1, 2)
	expect(index.KindUnit, ff, 2)
	expect(index.KindUnit, g, 1)
	expect(index.KindCollection, k, 1, 2)
	expect(index.KindAsset, m, 1, 2)
	expect(index.KindAsset, n, 2)
	f.keys["A3"] = index.VersionKey{Kind: index.KindUnit, ID: a, Version: 3}
	f.keys["A2"] = index.VersionKey{Kind: index.KindUnit, ID: a, Version: 2}
	f.keys["B1"] = index.VersionKey{Kind: index.KindUnit, ID: b, Version: 1}
	f.keys["F1"] = index.VersionKey{Kind: index.KindUnit, ID: ff, Version: 1}
	f.keys["C1"] = index.VersionKey{Kind: index.KindUnit, ID: cc, Version: 1}
	f.keys["E0"] = index.VersionKey{Kind: index.KindUnit, ID: ee, Version: 0}
	f.keys["L1"] = index.VersionKey{Kind: index.KindCollection, ID: l, Version: 1}
	f.keys["M1"] = index.VersionKey{Kind: index.KindAsset, ID: m, Version: 1}
	f.keys["M3"] = index.VersionKey{Kind: index.KindAsset, ID: m, Version: 3}
	f.keys["X1"] = index.VersionKey{Kind: index.KindUnit, ID: x, Version: 1}
	f.names[c.ID] = "collection c"
	return f
}

func testExpiredVersions(e *env) {
	if got := e.expired(e.clock.Peek(), 0); len(got) != 0 {
		e.t.Fatalf("ExpiredVersions of an empty store = %v", got)
	}
	f := e.retentionFixture()
	now := e.clock.Peek()
	e.wantKeys("ExpiredVersions at day 30, retention 15 days", e.expired(now, 15*time1d), f.expect, f.names)
	// A longer retention keeps more; none at all keeps only what the other rules keep.
	if got := e.expired(now, 40*time1d); len(got) != 0 {
		e.t.Fatalf("ExpiredVersions with a retention longer than the history = %s", fmtKeys(got, f.names))
	}
	all := e.expired(now, 0)
	for _, k := range []string{"A2", "B1"} {
		if !slices.Contains(all, f.keys[k]) {
			e.t.Fatalf("ExpiredVersions with no retention misses %s: %s", k, fmtKeys(all, f.names))
		}
	}
	for _, k := range []string{"A3", "F1", "C1", "E0", "L1", "M3", "X1"} {
		if slices.Contains(all, f.keys[k]) {
			e.t.Fatalf("ExpiredVersions with no retention lists %s: %s", k, fmtKeys(all, f.names))
		}
	}
	for _, v := range all {
		if v.Version <= 0 {
			e.t.Fatalf("ExpiredVersions lists a draft: %s", fmtKeys([]index.VersionKey{v}, f.names))
		}
	}
	// Retention is measured from the supersession: at day 16, A v1 (superseded at day 10) is 6 days past.
	if got := e.expired(f.day0.Add(16*time1d), 15*time1d); slices.Contains(got, f.keys["A2"]) {
		e.t.Fatalf("A v2 (superseded at day 20) expired at day 16")
	}

	// DeleteVersions deletes what may go and nothing else.
	ask := append(slices.Clone(f.expect), f.keys["A3"], f.keys["B1"], f.keys["F1"], f.keys["C1"], f.keys["L1"], f.keys["M3"])
	deleted, err := e.s.DeleteVersions(e.ctx, now, 15*time1d, ask)
	e.wantOK("DeleteVersions", err)
	e.wantKeys("DeleteVersions", deleted, f.expect, f.names)
	for _, k := range f.expect {
		var err error
		switch k.Kind {
		case index.KindUnit:
			_, err = e.s.Unit(e.ctx, index.Ref{ID: k.ID, Version: k.Version})
		case index.KindAsset:
			_, err = e.s.Asset(e.ctx, index.Ref{ID: k.ID, Version: k.Version})
		case index.KindCollection:
			_, err = e.s.Collection(e.ctx, k.ID, k.Version)
		}
		e.wantErr("a deleted version", err, index.ErrNotFound)
	}
	a := f.keys["A3"].ID
	hist := pages(e, "UnitVersions", index.ListOptions{}, 1, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.UnitVersions(e.ctx, a, o)
	})
	e.wantVersions("UnitVersions after retention", unitVersions(hist), []int64{3, 2})
	if got := e.expired(now, 15*time1d); len(got) != 0 {
		e.t.Fatalf("ExpiredVersions after DeleteVersions = %s", fmtKeys(got, f.names))
	}
	// Numbers are never reused.
	if v := e.nextUnit(a); v.Version != 4 {
		e.t.Fatalf("version after retention = %d, want 4", v.Version)
	}
	// The deleted versions' hashes are no longer referenced.
	refs := e.referenced()
	if len(refs) == 0 {
		e.t.Fatal("no referenced hashes")
	}
	deleted, err = e.s.DeleteVersions(e.ctx, now, 15*time1d, nil)
	if err != nil || len(deleted) != 0 {
		e.t.Fatalf("DeleteVersions(nil) = %v, %v", deleted, err)
	}
}

// testRetentionDraftFlag: GC follows the flag of the latest version, the
// draft when it is newer than the latest published one.
func testRetentionDraftFlag(e *env) {
	c := e.collection("c")
	u := e.createUnit(index.NewUnit{Collection: c.ID, GarbageCollect: true})
	e.clock.Advance(time1d)
	e.nextUnit(u.ID)
	e.clock.Advance(time1d)
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), GarbageCollect: ptr(false)}, true)
	e.clock.Advance(10 * time1d)
	if got := e.expired(e.clock.Peek(), time1h); len(got) != 0 {
		e.t.Fatalf("ExpiredVersions lists %v although the newer draft turns the flag off", got)
	}
	e.commitUnit(u.ID, index.UnitChange{Hash: e.blob(), GarbageCollect: ptr(true)}, true)
	got := e.expired(e.clock.Peek(), time1h)
	want := []index.VersionKey{{Kind: index.KindUnit, ID: u.ID, Version: 1}}
	e.wantKeys("ExpiredVersions once the draft turns the flag on", got, want, nil)
}

func testDeleteVersionsRechecks(e *env) {
	c := e.collection("c")
	u := e.createUnit(index.NewUnit{Collection: c.ID, GarbageCollect: true})
	a := e.createAsset(index.NewAsset{Collection: c.ID, MediaType: "image/png", GarbageCollect: true})
	e.clock.Advance(time1d)
	e.nextUnit(u.ID)
	e.commitAsset(a.ID, index.AssetChange{Hash: e.blob()}, false)
	e.clock.Advance(time1d)
	e.nextUnit(u.ID)
	e.clock.Advance(10 * time1d)
	now := e.clock.Peek()
	listed := e.expired(now, time1h)
	if len(listed) != 3 {
		e.t.Fatalf("ExpiredVersions = %v, want u@1, u@2, a@1", listed)
	}
	// Between the listing and the delete: a pin on u@1 and a draft pinning a@1 appear,
	// and u's flag goes off for... nothing else: u@2 still goes.
	e.unit(c.ID, "pins u@1", index.Link{Target: u.ID, Version: 1})
	e.draftUnit(c.ID, "pins a@1", index.Link{Target: a.ID, Version: 1})
	deleted, err := e.s.DeleteVersions(e.ctx, now, time1h, listed)
	e.wantOK("DeleteVersions", err)
	e.wantKeys("DeleteVersions after new pins", deleted, []index.VersionKey{{Kind: index.KindUnit, ID: u.ID, Version: 2}}, nil)
	e.getUnit(index.Ref{ID: u.ID, Version: 1})
	e.getAsset(index.Ref{ID: a.ID, Version: 1})
	// The flag turned off between listing and deleting: nothing goes.
	w := e.createUnit(index.NewUnit{Collection: c.ID, GarbageCollect: true})
	e.clock.Advance(time1d)
	e.nextUnit(w.ID)
	e.clock.Advance(time1d)
	listed = e.expired(e.clock.Peek(), time1h)
	wantW := []index.VersionKey{{Kind: index.KindUnit, ID: w.ID, Version: 1}}
	e.wantKeys("ExpiredVersions", listed, wantW, nil)
	e.commitUnit(w.ID, index.UnitChange{Hash: e.blob(), GarbageCollect: ptr(false)}, false)
	deleted, err = e.s.DeleteVersions(e.ctx, e.clock.Peek(), time1h, wantW)
	e.wantOK("DeleteVersions", err)
	if len(deleted) != 0 {
		e.t.Fatalf("DeleteVersions deleted %v after the flag went off", deleted)
	}
	// A version that is not expired yet at the given time stays.
	deleted, err = e.s.DeleteVersions(e.ctx, e.clock.Peek(), 1000*time1d, []index.VersionKey{{Kind: index.KindUnit, ID: u.ID, Version: 1}})
	if err != nil || len(deleted) != 0 {
		e.t.Fatalf("DeleteVersions of a retained version = %v, %v", deleted, err)
	}
	// Unknown versions are skipped.
	deleted, err = e.s.DeleteVersions(e.ctx, e.clock.Peek(), 0, []index.VersionKey{{Kind: index.KindUnit, ID: uuid.New(), Version: 1}})
	if err != nil || len(deleted) != 0 {
		e.t.Fatalf("DeleteVersions of an unknown version = %v, %v", deleted, err)
	}
}

func (e *env) orphans(cutoff time.Time) []uuid.UUID {
	e.t.Helper()
	var out []uuid.UUID
	e.wantOK("OrphanedAssets", e.s.OrphanedAssets(e.ctx, cutoff, func(id uuid.UUID) error {
		out = append(out, id)
		return nil
	}))
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func sortIDs(ids []uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func testOrphanedAssets(e *env) {
	c := e.collection("c")
	day0 := e.clock.Peek()
	day := func(d int) { e.clock.Advance(day0.Add(time.Duration(d) * time1d).Sub(e.clock.Peek())) }
	asset := func(name string, flag, draft bool) uuid.UUID {
		return e.createAsset(index.NewAsset{Collection: c.ID, Name: name, MediaType: "image/png", GarbageCollect: flag, Draft: draft}).ID
	}
	names := map[uuid.UUID]string{}
	x := asset("X linker deleted", true, false)
	y := asset("Y never linked", true, false)
	z := asset("Z draft link deleted", true, false)
	r := asset("R draft link replaced", true, false)
	w := asset("W flag off", true, false)
	v := asset("V old version deleted by retention", true, false)
	u := asset("U still linked", true, false)
	q := asset("Q relinked", true, false)
	o := asset("O draft-only", true, true)
	h := asset("H linked by an old version", true, false)
	for id, n := range map[uuid.UUID]string{x: "X", y: "Y", z: "Z", r: "R", w: "W", v: "V", u: "U", q: "Q", o: "O", h: "H"} {
		names[id] = n
	}
	e.commitAsset(w, index.AssetChange{Hash: e.blob(), GarbageCollect: ptr(false)}, false)
	ax := e.unit(c.ID, "", index.Link{Target: x})
	bz := e.unit(c.ID, "")
	e.commitUnit(bz.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{{Target: z}}}, true)
	fr := e.unit(c.ID, "")
	e.commitUnit(fr.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{{Target: r}}}, true)
	ww := e.unit(c.ID, "", index.Link{Target: w})
	av := e.createUnit(index.NewUnit{Collection: c.ID, Links: []index.Link{{Target: v}}, GarbageCollect: true})
	e.unit(c.ID, "", index.Link{Target: u})
	dq := e.unit(c.ID, "", index.Link{Target: q})
	gu := e.unit(c.ID, "", index.Link{Target: o})
	hh := e.unit(c.ID, "", index.Link{Target: h})

	day(1)
	e.wantOK("DeleteEntity", e.deleteEntity(ax.ID))
	e.must("DeleteUnitDraft", func(tx index.Tx) error { return tx.DeleteUnitDraft(bz.ID) })
	e.commitUnit(fr.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{}}, true)
	e.wantOK("DeleteEntity", e.deleteEntity(ww.ID))
	e.setLinks(av.ID)
	e.wantOK("DeleteEntity", e.deleteEntity(dq.ID))
	e.wantOK("DeleteEntity", e.deleteEntity(gu.ID))
	e.setLinks(hh.ID) // hh@1 still links h
	day(2)
	e.unit(c.ID, "", index.Link{Target: q})
	day(4)
	deleted, err := e.s.DeleteVersions(e.ctx, e.clock.Peek(), time1h, []index.VersionKey{{Kind: index.KindUnit, ID: av.ID, Version: 1}})
	e.wantOK("DeleteVersions", err)
	if len(deleted) != 1 {
		e.t.Fatalf("DeleteVersions of an expired version linking V = %v", deleted)
	}
	day(10)

	e.wantIDs("OrphanedAssets at a cutoff before the unlinks", e.orphans(day0.Add(time1d/2)), nil)
	e.wantIDs("OrphanedAssets, cutoff day 3 (V unlinked at day 4 is too recent)", e.orphans(day0.Add(3*time1d)), sortIDs([]uuid.UUID{x, z, r, o}))
	want := sortIDs([]uuid.UUID{x, z, r, o, v})
	e.wantIDs("OrphanedAssets, cutoff day 5", e.orphans(day0.Add(5*time1d)), want)

	// DeleteOrphans re-checks: U is linked, Y never was, W has the flag off;
	// Z was linked again since the listing.
	e.unit(c.ID, "", index.Link{Target: z})
	got, err := e.s.DeleteOrphans(e.ctx, day0.Add(5*time1d), []uuid.UUID{x, y, u, w, q, h, z, v, uuid.New()})
	e.wantOK("DeleteOrphans", err)
	e.wantIDs("DeleteOrphans", sortIDs(got), sortIDs([]uuid.UUID{x, v}))
	e.wantEntityGone(x, index.KindAsset)
	e.wantEntityGone(v, index.KindAsset)
	e.wantIDs("OrphanedAssets after DeleteOrphans", e.orphans(day0.Add(5*time1d)), sortIDs([]uuid.UUID{r, o}))
	// A later cutoff never finds the never-linked, the still-linked or the flag-off assets.
	for _, id := range e.orphans(e.clock.Peek()) {
		if id == y || id == u || id == w || id == q || id == h {
			e.t.Fatalf("OrphanedAssets lists %s", names[id])
		}
	}
}

func testLockGC(e *env) {
	unlock, err := e.s.TryLockGC(e.ctx)
	e.wantOK("TryLockGC", err)
	_, err = e.s.TryLockGC(e.ctx)
	e.wantErr("a second TryLockGC", err, index.ErrConflict)
	unlock()
	unlock2, err := e.s.TryLockGC(e.ctx)
	e.wantOK("TryLockGC after unlock", err)
	unlock2()
}

func testGCRuns(e *env) {
	runs, err := e.s.GCRuns(e.ctx, 10, "")
	if err != nil || len(runs) != 0 {
		e.t.Fatalf("GCRuns of an empty store = %v, %v", runs, err)
	}
	_, err = e.s.GCRun(e.ctx, "nope")
	e.wantErr("GCRun of an unknown id", err, index.ErrNotFound)
	start := e.clock.Peek()
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("run-%d-%s", i, uuid.NewString())
		ids = append(ids, id)
		run := index.GCRun{ID: id, StartedAt: start.Add(time.Duration(i) * time1h), Report: fmt.Appendf(nil, `{"id":%q,"n":%d}`, id, i)}
		e.wantOK("PutGCRun", e.s.PutGCRun(e.ctx, run))
	}
	runs, err = e.s.GCRuns(e.ctx, 3, "")
	e.wantOK("GCRuns", err)
	if len(runs) != 3 || runs[0].ID != ids[4] || runs[1].ID != ids[3] || runs[2].ID != ids[2] {
		e.t.Fatalf("GCRuns(3) = %v, want the 3 newest, newest first", runs)
	}
	if !runs[0].StartedAt.Equal(start.Add(4*time1h)) || string(runs[0].Report) != fmt.Sprintf(`{"id":%q,"n":4}`, ids[4]) {
		e.t.Fatalf("GCRuns item = %+v", runs[0])
	}
	// Insert or replace by ID: a run's progress is rewritten until it ends.
	done := index.GCRun{ID: ids[1], StartedAt: start.Add(time1h), Report: []byte(`{"done":true}`)}
	e.wantOK("PutGCRun replace", e.s.PutGCRun(e.ctx, done))
	got, err := e.s.GCRun(e.ctx, ids[1])
	e.wantOK("GCRun", err)
	if got.ID != ids[1] || string(got.Report) != `{"done":true}` || !got.StartedAt.Equal(done.StartedAt) {
		e.t.Fatalf("GCRun after replace = %+v", got)
	}
	runs, err = e.s.GCRuns(e.ctx, 100, "")
	e.wantOK("GCRuns", err)
	if len(runs) != 5 {
		e.t.Fatalf("GCRuns after a replace = %d runs, want 5", len(runs))
	}
	for i, r := range runs {
		if r.ID != ids[4-i] {
			e.t.Fatalf("GCRuns order: item %d is %s, want %s", i, r.ID, ids[4-i])
		}
	}
	// Pages continue after the last run of the previous one.
	runs, err = e.s.GCRuns(e.ctx, 2, ids[3])
	e.wantOK("GCRuns after", err)
	if len(runs) != 2 || runs[0].ID != ids[2] || runs[1].ID != ids[1] {
		e.t.Fatalf("GCRuns(2, after %s) = %v, want runs 2 and 1", ids[3], runs)
	}
	runs, err = e.s.GCRuns(e.ctx, 10, ids[0])
	if err != nil || len(runs) != 0 {
		e.t.Fatalf("GCRuns after the oldest = %v, %v; want none", runs, err)
	}
	_, err = e.s.GCRuns(e.ctx, 10, "no-such-run")
	e.wantErr("GCRuns after an unknown run", err, index.ErrNotFound)
}
