package pgindex

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// TestCreateOneMatchesReadingPath: a create whose links give their kinds
// (one blockstore_create_member call) and the same create with the kinds
// left out (which reads them first) give the same errors, in the same
// order, and store the same rows.
func TestCreateOneMatchesReadingPath(t *testing.T) {
	f := newFixture(t)
	var asset uuid.UUID
	f.must(func(tx index.Tx) error {
		a, err := tx.CreateAsset(index.NewAsset{Collection: f.coll, Name: "a.png", Hash: f.blob(), MediaType: "image/png"})
		asset = a.ID
		return err
	})
	missing := cas.Sum([]byte(t.Name() + " never stored"))
	cases := []struct {
		name  string
		coll  uuid.UUID
		hash  cas.Hash
		names string
		links []index.Link
		check func(error) bool
	}{
		{"no collection", uuid.New(), f.blob(), "", nil, func(err error) bool { return errors.Is(err, index.ErrNotFound) }},
		{"collection is a unit", f.unit, f.blob(), "", nil, func(err error) bool { return errors.Is(err, index.ErrNotFound) }},
		{"collection before links", uuid.New(), f.blob(), "", []index.Link{{Target: uuid.New(), Kind: index.KindUnit}},
			func(err error) bool { return errors.Is(err, index.ErrNotFound) }},
		{"unknown target", f.coll, f.blob(), "", []index.Link{{Target: asset, Kind: index.KindAsset}, {Target: uuid.New(), Kind: index.KindUnit}},
			func(err error) bool {
				return errors.Is(err, index.ErrInvalid) && strings.Contains(err.Error(), "does not exist")
			}},
		{"target of another kind", f.coll, f.blob(), "", []index.Link{{Target: f.unit, Kind: index.KindAsset}},
			func(err error) bool {
				return errors.Is(err, index.ErrInvalid) && strings.Contains(err.Error(), "is a unit, not a asset")
			}},
		{"target is a collection", f.coll, f.blob(), "", []index.Link{{Target: f.coll, Kind: index.KindUnit}},
			func(err error) bool {
				return errors.Is(err, index.ErrInvalid) && strings.Contains(err.Error(), "is a collection")
			}},
		{"links before blob", f.coll, missing, "", []index.Link{{Target: uuid.New(), Kind: index.KindUnit}},
			func(err error) bool { return errors.Is(err, index.ErrInvalid) }},
		{"blob missing", f.coll, missing, "", []index.Link{{Target: asset, Kind: index.KindAsset}},
			func(err error) bool { return errors.Is(err, index.ErrBlobMissing) }},
		{"name taken", f.coll, f.blob(), "a.png", []index.Link{{Target: asset, Kind: index.KindAsset}},
			func(err error) bool {
				var ce *index.ConflictError
				return errors.As(err, &ce) && ce.Holder == asset && strings.Contains(ce.Reason, `"a.png"`)
			}},
	}
	for _, c := range cases {
		var errs [2]error
		for i, withKinds := range []bool{true, false} {
			links := make([]index.Link, len(c.links))
			for j, l := range c.links {
				if !withKinds {
					l.Kind = 0
				}
				links[j] = l
			}
			errs[i] = f.s.Update(f.ctx, func(tx index.Tx) error {
				_, err := tx.CreateUnit(index.NewUnit{Collection: c.coll, Name: c.names, Hash: c.hash, Links: links})
				return err
			})
		}
		if !c.check(errs[0]) {
			t.Errorf("%s: kinds given: %v", c.name, errs[0])
		}
		if c.name == "target of another kind" {
			// Without the kind given, the link is to whatever the target is.
			if errs[1] != nil {
				t.Errorf("%s: kinds read: %v", c.name, errs[1])
			}
			continue
		}
		if !c.check(errs[1]) {
			t.Errorf("%s: kinds read: %v", c.name, errs[1])
		}
		// The same error, but for where it was found: a taken name fails
		// the create at once, and the reading path's commit.
		if c.name != "target is a collection" && cause(errs[0]) != cause(errs[1]) {
			t.Errorf("%s: kinds given: %v\nkinds read: %v", c.name, errs[0], errs[1])
		}
	}

	// The same unit created both ways: the same versions, names, links.
	h := f.blob()
	var made [2]index.Unit
	for i, withKinds := range []bool{true, false} {
		links := []index.Link{{Target: asset, Kind: index.KindAsset}, {Target: f.unit, Kind: index.KindUnit, Version: 1}, {Target: asset, Kind: index.KindAsset}}
		if !withKinds {
			for j := range links {
				links[j].Kind = 0
			}
		}
		f.must(func(tx index.Tx) error {
			var err error
			made[i], err = tx.CreateUnit(index.NewUnit{Collection: f.coll, Name: "u" + string(rune('0'+i)), Hash: h, Links: links, Draft: i == 1, GarbageCollect: true})
			return err
		})
	}
	for i, u := range made {
		ref := index.Latest(u.ID)
		if i == 1 {
			ref = index.Ref{ID: u.ID, Draft: true}
		}
		got, err := f.s.Unit(f.ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != h || got.Size != 100 || !got.GarbageCollect || len(got.Links) != 2 ||
			got.Links[0] != (index.Link{Target: asset, Kind: index.KindAsset}) || got.Links[1] != (index.Link{Target: f.unit, Kind: index.KindUnit, Version: 1}) {
			t.Errorf("unit %d read back as %+v", i, got)
		}
		if got.Links[0] != u.Links[0] || got.Hash != u.Hash || got.Size != u.Size || got.Version != u.Version || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("unit %d: returned %+v, read back %+v", i, u, got)
		}
	}
	if made[0].Version != 1 || made[1].Version != 0 {
		t.Errorf("versions %d and %d, want 1 and 0 (draft)", made[0].Version, made[1].Version)
	}
	page, err := f.s.LinkedBy(f.ctx, asset, index.ListOptions{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != made[0].ID {
		t.Errorf("LinkedBy(asset) = %+v, %v; want the published unit", page.Items, err)
	}
}

// TestCreateTakesQueuedInline: the inline blob queued just before a create
// that names it goes out in the create's one statement, and is stored.
func TestCreateTakesQueuedInline(t *testing.T) {
	f := newFixture(t)
	b := []byte(t.Name() + " OLX")
	h := cas.Sum(b)
	var id uuid.UUID
	err := f.s.update(f.ctx, func(tx *tx) error {
		if err := tx.PutInlineBlob(h, b); err != nil {
			return err
		}
		if len(tx.pending) != 1 {
			t.Errorf("%d statements queued after PutInlineBlob, want 1", len(tx.pending))
		}
		r, err := tx.createMember(index.KindUnit, f.coll, h, nil, false, func(links []index.Link) index.Content {
			return index.NewUnit{Hash: h}.Content(links)
		})
		if err != nil {
			return err
		}
		id = r.id
		if len(tx.pending) != 0 || tx.inline != nil {
			t.Errorf("after the create: %d statements queued, inline %v; want the blob sent with the create", len(tx.pending), tx.inline)
		}
		if r.size != int64(len(b)) {
			t.Errorf("size %d, want %d", r.size, len(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.s.InlineBlobs(f.ctx, []cas.Hash{h})
	if err != nil || string(got[h]) != string(b) {
		t.Fatalf("InlineBlobs = %q, %v", got[h], err)
	}
	u, olx, err := f.s.UnitInline(f.ctx, index.Latest(id))
	if err != nil || string(olx) != string(b) || u.Size != int64(len(b)) {
		t.Fatalf("UnitInline = %+v, %q, %v", u, olx, err)
	}
	rows, err := f.s.RenewBlobs(f.ctx, []cas.Hash{h})
	if err != nil || rows[h].State != index.BlobLive || rows[h].Size != int64(len(b)) {
		t.Fatalf("registry row %+v, %v; want live, %d bytes", rows[h], err, len(b))
	}
}

// cause is the message of err without the operation it is wrapped in.
func cause(err error) string {
	msg := err.Error()
	for _, op := range []string{"pgindex: create unit: ", "pgindex: commit: "} {
		msg = strings.TrimPrefix(msg, op)
	}
	return msg
}

// TestInlineBytesCompressedWithLZ4: on a server with lz4 (migration
// 00011), a new inline blob large enough to be compressed is compressed
// with it.
func TestInlineBytesCompressedWithLZ4(t *testing.T) {
	f := newFixture(t)
	var lz4 bool
	if err := f.s.pool.QueryRow(f.ctx, `SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))`).Scan(&lz4); err != nil {
		t.Fatal(err)
	}
	if !lz4 {
		t.Skip("this PostgreSQL has no lz4")
	}
	b := []byte(strings.Repeat("<p>What is the velocity of the block?</p>\n", 100))
	h := cas.Sum(b)
	f.must(func(tx index.Tx) error {
		if err := tx.(index.InlineWriter).PutInlineBlob(h, b); err != nil {
			return err
		}
		_, err := tx.CreateUnit(index.NewUnit{Collection: f.coll, Hash: h})
		return err
	})
	var method *string
	if err := f.s.pool.QueryRow(f.ctx, `SELECT pg_column_compression(content) FROM blob_content WHERE hash = $1`, h[:]).Scan(&method); err != nil {
		t.Fatal(err)
	}
	if method == nil || *method != "lz4" {
		t.Fatalf("inline bytes compressed with %v, want lz4", method)
	}
}
