package indextest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// RunCopy runs the conformance tests of the copy capability
// (index.Exporter and index.Importer) against the stores open returns: a
// history exported from one store and imported into another reads the
// same, a second import changes nothing, changes at the source converge,
// and the destination keeps every rule for the writes that follow.
func RunCopy(t *testing.T, open func(t *testing.T, opt index.Options) index.Store) {
	tests := []struct {
		name string
		run  func(c *copyEnv)
	}{
		{"RoundTrip", testCopyRoundTrip},
		{"Converges", testCopyConverges},
		{"Refusals", testCopyRefusals},
		{"Source", testCopySource},
		{"SwappedNames", testCopySwappedNames},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, dst := newEnv(t, open), newEnv(t, open)
			if _, ok := src.s.(index.Exporter); !ok {
				t.Fatalf("%T is not an index.Exporter", src.s)
			}
			if _, ok := dst.s.(index.Importer); !ok {
				t.Fatalf("%T is not an index.Importer", dst.s)
			}
			tc.run(&copyEnv{src: src, dst: dst})
		})
	}
}

// copyEnv is a source store and a destination store.
type copyEnv struct {
	src, dst *env
	// ids of the source world, by name.
	ids map[string]uuid.UUID
}

func (c *copyEnv) importer() index.Importer { return c.dst.s.(index.Importer) }

// world builds, in the source, a history with everything a copy must keep:
// collection versions, units with pinned and floating links across
// collections, asset versions, drafts (of a published unit and draft-only),
// a version deleted by retention, an asset that lost its last link.
func (c *copyEnv) world() {
	e := c.src
	c.ids = map[string]uuid.UUID{}
	c1 := e.collection("course one")
	c2 := e.collection("course two")
	e.must("UpdateCollection", func(tx index.Tx) error {
		d := "second description"
		_, _, err := tx.UpdateCollection(c1.ID, index.CollectionPatch{Description: &d})
		return err
	})
	a1 := e.asset(c1.ID, "static/a.png")
	e.commitAsset(a1.ID, index.AssetChange{Hash: e.blob(), MediaType: ptr("image/webp")}, false)
	u2 := e.unit(c1.ID, "vertical/2.xml")
	u1 := e.unit(c1.ID, "vertical/1.xml", index.Link{Target: u2.ID}, index.Link{Target: a1.ID, Version: 1})
	e.commitUnit(u1.ID, index.UnitChange{Hash: e.blob()}, false)
	e.commitUnit(u1.ID, index.UnitChange{Hash: e.blob(), Name: ptr("vertical/1-draft.xml"),
		Links: &[]index.Link{{Target: u2.ID, Version: 1}}}, true)
	d1 := e.createAsset(index.NewAsset{Collection: c2.ID, Name: "draft.png", MediaType: "image/png", Draft: true})
	a2 := e.asset(c2.ID, "static/old.pdf")
	u3 := e.createUnit(index.NewUnit{Collection: c2.ID, Name: "u3", GarbageCollect: true,
		Links: []index.Link{{Target: u1.ID}, {Target: a2.ID}}})
	e.commitUnit(u3.ID, index.UnitChange{Hash: e.blob(), Links: &[]index.Link{{Target: u1.ID, Version: 2}}}, false)
	e.commitUnit(u3.ID, index.UnitChange{Hash: e.blob()}, false)
	// Retention deletes u3@1, the only version that linked a2.
	e.clock.Advance(2 * time.Hour)
	now := e.clock.Now()
	exp := e.expired(now, time.Hour)
	got, err := e.s.DeleteVersions(e.ctx, now, time.Hour, exp)
	e.wantOK("DeleteVersions", err)
	if len(got) == 0 {
		e.t.Fatalf("retention deleted nothing of %v", exp)
	}
	for k, v := range map[string]uuid.UUID{"c1": c1.ID, "c2": c2.ID, "a1": a1.ID, "a2": a2.ID, "u1": u1.ID, "u2": u2.ID, "u3": u3.ID, "d1": d1.ID} {
		c.ids[k] = v
	}
}

// export returns every history of e's store.
func export(e *env) []index.History {
	e.t.Helper()
	var out []index.History
	e.wantOK("Export", e.s.(index.Exporter).Export(e.ctx, func(h index.History) error {
		out = append(out, h)
		return nil
	}))
	return out
}

// copyAll registers the blobs of every source history in the destination
// (live, with the version's size) and imports it; it returns the results.
func (c *copyEnv) copyAll() []index.ImportResult {
	c.src.t.Helper()
	var out []index.ImportResult
	for _, h := range export(c.src) {
		for _, v := range h.Versions {
			if h.Kind != index.KindCollection {
				c.dst.register(v.Hash, v.Size)
			}
		}
		r, err := c.importer().Import(c.dst.ctx, h)
		c.dst.wantOK("Import "+h.ID.String(), err)
		out = append(out, r)
	}
	return out
}

// describe formats histories so that two stores' can be compared, times
// to the nanosecond.
func describe(hs []index.History) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%s %s coll=%s created=%s ever=%v unlinked=%s\n", h.Kind, h.ID, h.Collection,
			h.CreatedAt.Format(time.RFC3339Nano), h.EverLinked, h.LastUnlinked.Format(time.RFC3339Nano))
		for _, v := range h.Versions {
			fmt.Fprintf(&b, "  v%d created=%s superseded=%s gc=%v name=%q hash=%s size=%d media=%q links=%v fields=%q/%q/%q/%q\n",
				v.Number, v.CreatedAt.Format(time.RFC3339Nano), v.SupersededAt.Format(time.RFC3339Nano), v.GarbageCollect,
				v.Name, v.Hash, v.Size, v.MediaType, v.Links, v.Description, v.Owner, v.Author, v.License)
		}
	}
	return b.String()
}

// wantSame fails unless the destination exports what the source does and
// answers the API's reads alike.
func (c *copyEnv) wantSame(what string) {
	c.src.t.Helper()
	s, d := describe(export(c.src)), describe(export(c.dst))
	if s != d {
		c.src.t.Fatalf("%s: the destination exports\n%s\nthe source\n%s", what, d, s)
	}
	reads := func(e *env) string {
		var b strings.Builder
		ctx := e.ctx
		cs, err := e.s.Collections(ctx, index.ListOptions{})
		e.wantOK("Collections", err)
		fmt.Fprintf(&b, "%v\n", cs)
		for _, coll := range cs.Items {
			us, err := e.s.Units(ctx, coll.ID, index.ListOptions{})
			e.wantOK("Units", err)
			as, err := e.s.Assets(ctx, coll.ID, index.ListOptions{})
			e.wantOK("Assets", err)
			fmt.Fprintf(&b, "%v\n%v\n", us, as)
			for _, u := range us.Items {
				lb, err := e.s.LinkedBy(ctx, u.ID, index.ListOptions{})
				e.wantOK("LinkedBy", err)
				vs, err := e.s.UnitVersions(ctx, u.ID, index.ListOptions{})
				e.wantOK("UnitVersions", err)
				fmt.Fprintf(&b, "%v\n%v\n", lb, vs)
			}
		}
		var refs []index.Ref
		for _, name := range slices.Sorted(maps.Keys(c.ids)) {
			id := c.ids[name]
			refs = append(refs, index.Ref{ID: id}, index.Ref{ID: id, Draft: true}, index.Ref{ID: id, Version: 1})
		}
		got, err := e.s.Lookup(ctx, refs)
		e.wantOK("Lookup", err)
		for i, g := range got {
			fmt.Fprintf(&b, "%s: %s\n", refs[i], entityString(g))
		}
		var hs []cas.Hash
		e.wantOK("ReferencedHashes", e.s.ReferencedHashes(ctx, func(h cas.Hash) error { hs = append(hs, h); return nil }))
		fmt.Fprintf(&b, "%v\n", hs)
		return b.String()
	}
	if s, d := reads(c.src), reads(c.dst); s != d {
		c.src.t.Fatalf("%s: the destination reads\n%s\nthe source\n%s", what, d, s)
	}
}

func entityString(e index.Entity) string {
	switch e.Kind {
	case index.KindCollection:
		return fmt.Sprintf("%v", *e.Collection)
	case index.KindUnit:
		return fmt.Sprintf("%v", *e.Unit)
	case index.KindAsset:
		return fmt.Sprintf("%v", *e.Asset)
	}
	return "none"
}

func testCopyRoundTrip(c *copyEnv) {
	c.world()
	for _, r := range c.copyAll() {
		if !r.Created || r.Written == 0 {
			c.src.t.Errorf("first import: %+v, want created with versions", r)
		}
	}
	c.wantSame("after the copy")
	for _, r := range c.copyAll() {
		if r.Changed() {
			c.src.t.Errorf("second import changed %+v", r)
		}
	}
	c.wantSame("after a second copy")

	// The destination keeps every rule for what comes next.
	d := c.dst
	u1, u2 := c.ids["u1"], c.ids["u2"]
	next := d.nextUnit(u1)
	if next.Version != 3 {
		d.t.Errorf("next version of an imported unit is %d, want 3", next.Version)
	}
	d.wantErr("a name the copy holds", d.tryCreateUnit(c.ids["c1"], "vertical/2.xml"), index.ErrConflict)
	d.wantErr("a draft's name the copy holds", d.tryCreateUnit(c.ids["c1"], "vertical/1-draft.xml"), index.ErrConflict)
	d.wantErr("delete a linked unit", d.deleteEntity(u2), index.ErrConflict)
	d.must("publish the imported draft", func(tx index.Tx) error {
		u, err := tx.PublishUnitDraft(u1)
		if err == nil && u.Version != 4 {
			err = fmt.Errorf("published as version %d, want 4", u.Version)
		}
		return err
	})
	d.wantOK("delete the imported draft-only asset", d.update(func(tx index.Tx) error { return tx.DeleteAssetDraft(c.ids["d1"]) }))
	d.wantErr("a cycle through imported links", d.tryLinks(u2, false, index.Link{Target: c.ids["u3"]}), index.ErrInvalid)
}

func testCopyConverges(c *copyEnv) {
	c.world()
	c.copyAll()
	s := c.src
	u1, u2, u3 := c.ids["u1"], c.ids["u2"], c.ids["u3"]
	// Changes at the source: a new version, a draft published, a draft
	// replaced, a draft written, a draft-only entity deleted, retention.
	s.nextUnit(u2)
	s.must("publish", func(tx index.Tx) error { _, err := tx.PublishUnitDraft(u1); return err })
	s.commitUnit(u1, index.UnitChange{Hash: s.blob()}, true)
	s.commitUnit(u1, index.UnitChange{Hash: s.blob(), Links: &[]index.Link{}}, true)
	s.commitAsset(c.ids["a1"], index.AssetChange{Hash: s.blob()}, true)
	s.wantOK("delete draft-only", s.update(func(tx index.Tx) error { return tx.DeleteAssetDraft(c.ids["d1"]) }))
	s.commitUnit(u3, index.UnitChange{Hash: s.blob()}, false)
	s.clock.Advance(2 * time.Hour)
	now := s.clock.Now()
	_, err := s.s.DeleteVersions(s.ctx, now, time.Hour, s.expired(now, time.Hour))
	s.wantOK("DeleteVersions", err)

	changed := 0
	for _, r := range c.copyAll() {
		if r.Changed() {
			changed++
		}
	}
	if changed == 0 {
		c.src.t.Fatal("the second copy changed nothing")
	}
	// The entity deleted at the source is the copier's to delete.
	var extra []uuid.UUID
	have := map[uuid.UUID]bool{}
	s.wantOK("Entities", s.s.(index.Exporter).Entities(s.ctx, func(_ index.Kind, id uuid.UUID) error { have[id] = true; return nil }))
	c.dst.wantOK("Entities", c.dst.s.(index.Exporter).Entities(c.dst.ctx, func(k index.Kind, id uuid.UUID) error {
		if !have[id] {
			extra = append(extra, id)
		}
		return nil
	}))
	c.dst.wantIDs("entities only the destination has", extra, []uuid.UUID{c.ids["d1"]})
	c.dst.wantOK("delete it", c.dst.deleteEntity(c.ids["d1"]))
	delete(c.ids, "d1")
	c.wantSame("after the changes are copied")
	for _, r := range c.copyAll() {
		if r.Changed() {
			c.src.t.Errorf("a copy after convergence changed %+v", r)
		}
	}
}

func testCopyRefusals(c *copyEnv) {
	c.world()
	c.copyAll()
	before := describe(export(c.dst))
	hs := export(c.src)
	imp := c.importer()
	var u1 index.History
	for _, h := range hs {
		if h.ID == c.ids["u1"] {
			u1 = h
		}
	}
	// A published version with other content.
	bad := u1
	bad.Versions = append([]index.VersionRecord(nil), u1.Versions...)
	bad.Versions[0].Hash, bad.Versions[0].Size = c.dst.blobSized(11)
	_, err := imp.Import(c.dst.ctx, bad)
	c.dst.wantErr("a differing version", err, index.ErrDiverged)
	// Another creation time.
	bad = u1
	bad.CreatedAt = bad.CreatedAt.Add(time.Second)
	_, err = imp.Import(c.dst.ctx, bad)
	c.dst.wantErr("another creation time", err, index.ErrDiverged)
	if after := describe(export(c.dst)); after != before {
		c.dst.t.Fatalf("refused imports changed the destination:\n%s\nwas\n%s", after, before)
	}

	// A new entity whose blob the destination has not registered.
	nu := index.History{Kind: index.KindAsset, ID: uuid.New(), Collection: c.ids["c1"], CreatedAt: Epoch,
		Versions: []index.VersionRecord{{Number: 1, CreatedAt: Epoch, Hash: c.dst.unregistered(), Size: 3, MediaType: "text/plain"}}}
	_, err = imp.Import(c.dst.ctx, nu)
	c.dst.wantBlobMissing("an unregistered blob", err, nu.Versions[0].Hash)
	// A name another entity holds.
	nu.Versions[0].Hash, nu.Versions[0].Size = c.dst.blobSized(3)
	nu.Versions[0].Name = "static/a.png"
	_, err = imp.Import(c.dst.ctx, nu)
	c.dst.wantHolder("a taken name", err, c.ids["a1"])
	// A collection that does not exist.
	nu.Versions[0].Name, nu.Collection = "", uuid.New()
	_, err = imp.Import(c.dst.ctx, nu)
	c.dst.wantErr("no collection", err, index.ErrNotFound)
	// A history no engine could store.
	nu.Collection = c.ids["c1"]
	nu.Versions = append(nu.Versions, index.VersionRecord{Number: 0}, index.VersionRecord{Number: 1})
	_, err = imp.Import(c.dst.ctx, nu)
	c.dst.wantErr("a malformed history", err, index.ErrInvalid)
	if after := describe(export(c.dst)); after != before {
		c.dst.t.Fatalf("refused imports changed the destination:\n%s\nwas\n%s", after, before)
	}
}

func testCopySource(c *copyEnv) {
	imp := c.importer()
	got, err := imp.CopySource(c.dst.ctx)
	c.dst.wantOK("CopySource", err)
	if got != "" {
		c.dst.t.Fatalf("a new store names copy source %q", got)
	}
	c.dst.wantOK("SetCopySource", imp.SetCopySource(c.dst.ctx, "store-1"))
	c.dst.wantOK("SetCopySource again", imp.SetCopySource(c.dst.ctx, "store-2"))
	if got, err = imp.CopySource(c.dst.ctx); err != nil || got != "store-2" {
		c.dst.t.Fatalf("CopySource = %q, %v; want store-2", got, err)
	}
	if err := imp.SetCopySource(c.dst.ctx, ""); !errors.Is(err, index.ErrInvalid) {
		c.dst.t.Fatalf("SetCopySource(\"\") = %v, want ErrInvalid", err)
	}
}

func testCopySwappedNames(c *copyEnv) {
	c.world()
	s := c.src
	x := s.unit(c.ids["c1"], "x.xml")
	y := s.unit(c.ids["c1"], "y.xml")
	c.ids["x"], c.ids["y"] = x.ID, y.ID
	c.copyAll()
	for _, step := range []struct {
		id   uuid.UUID
		name string
	}{{x.ID, "tmp.xml"}, {y.ID, "x.xml"}, {x.ID, "y.xml"}} {
		s.commitUnit(step.id, index.UnitChange{Hash: s.blob(), Name: ptr(step.name)}, false)
	}
	var group []index.History
	for _, h := range export(s) {
		if h.ID == x.ID || h.ID == y.ID {
			for _, v := range h.Versions {
				c.dst.register(v.Hash, v.Size)
			}
			group = append(group, h)
		}
	}
	imp := c.importer()
	for _, h := range group {
		_, err := imp.Import(c.dst.ctx, h)
		c.dst.wantErr("a single import of a swapped name", err, index.ErrConflict)
	}
	rs, err := imp.ImportGroup(c.dst.ctx, group)
	c.dst.wantOK("ImportGroup", err)
	if len(rs) != 2 || rs[0].Written+rs[1].Written != 3 {
		c.dst.t.Fatalf("ImportGroup = %+v, want the three versions of the swap written", rs)
	}
	c.wantSame("after the swap")
	// The names are held as the source holds them.
	c.dst.wantHolder("x.xml", c.dst.tryCreateUnit(c.ids["c1"], "x.xml"), y.ID)
	c.dst.wantHolder("y.xml", c.dst.tryCreateUnit(c.ids["c1"], "y.xml"), x.ID)
	c.dst.wantOK("tmp.xml is free", c.dst.tryCreateUnit(c.ids["c1"], "tmp.xml"))
}
