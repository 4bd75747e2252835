package pgindex

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/cas"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
)

func TestCopyConformance(t *testing.T) {
	indextest.RunCopy(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, opt)
	})
}

// TestImportRebuildsEveryRow: a database built by Import holds the same
// rows as one built by the writes in every table derived from the
// versions (entities with their link-set columns, flag and orphan
// tracking; versions; names; link sets and their members). Blob rows
// differ (times and tickets are the destination's) and are left out.
func TestImportRebuildsEveryRow(t *testing.T) {
	ctx := testCtx(t)
	src, dst := openTest(t, index.Options{}), openTest(t, index.Options{})
	live := func(s *Store, h cas.Hash, size int64) {
		t.Helper()
		_, tk, err := s.BeginBlob(ctx, h)
		if err == nil {
			err = s.FinishBlob(ctx, h, size, tk)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	blob := func() cas.Hash {
		n++
		h := cas.Sum(fmt.Appendf(nil, "rows %d", n))
		live(src, h, int64(n))
		return h
	}
	var coll, b, u, a uuid.UUID
	err := src.Update(ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "c"}})
		if err != nil {
			return err
		}
		coll = c.ID
		as, err := tx.CreateAsset(index.NewAsset{Collection: coll, Name: "a.png", MediaType: "image/png", Hash: blob()})
		if err != nil {
			return err
		}
		a = as.ID
		bu, err := tx.CreateUnit(index.NewUnit{Collection: coll, Name: "b.xml", Hash: blob()})
		if err != nil {
			return err
		}
		b = bu.ID
		uu, err := tx.CreateUnit(index.NewUnit{Collection: coll, Name: "u.xml", Hash: blob(),
			Links: []index.Link{{Target: b}, {Target: a, Version: 1}}})
		u = uu.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []func(tx index.Tx) error{
		func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(u, index.UnitChange{Hash: blob(), Links: &[]index.Link{{Target: b, Version: 1}}}, false)
			return err
		},
		func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(u, index.UnitChange{Hash: blob(), Links: &[]index.Link{}}, true)
			return err
		},
		func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(b, index.UnitChange{Hash: blob()}, false)
			return err
		},
		func(tx index.Tx) error { _, err := tx.PublishUnitDraft(u); return err },
	} {
		if err := src.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	err = src.Export(ctx, func(h index.History) error {
		for _, v := range h.Versions {
			if h.Kind != index.KindCollection {
				live(dst, v.Hash, v.Size)
			}
		}
		_, err := dst.Import(ctx, h)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dump := func(s *Store) string {
		var b strings.Builder
		for _, q := range []string{
			`SELECT row(e.*)::text FROM entities e ORDER BY id`,
			`SELECT row(v.*)::text FROM versions v ORDER BY entity, version NULLS LAST`,
			`SELECT row(n.*)::text FROM names n ORDER BY collection, name`,
			`SELECT row(l.*)::text FROM link_sets l ORDER BY id`,
			`SELECT row(m.*)::text FROM link_set_members m ORDER BY set_id, position`,
		} {
			err := s.query(ctx, func(rows pgx.Rows) error {
				var line string
				if err := rows.Scan(&line); err != nil {
					return err
				}
				b.WriteString(line + "\n")
				return nil
			}, q)
			if err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	if s, d := dump(src), dump(dst); s != d {
		t.Fatalf("imported rows differ:\n%s\nwritten:\n%s", d, s)
	}
}
