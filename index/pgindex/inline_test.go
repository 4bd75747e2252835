package pgindex

import (
	"strings"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/indextest"
)

func TestInline(t *testing.T) {
	indextest.RunInline(t, func(t *testing.T, opt index.Options) index.Store {
		return openTest(t, opt)
	})
}

// TestInlineBytesCompressedWithLZ4: on a server with lz4 (migration
// 00010), a new inline blob large enough to be compressed is compressed
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
