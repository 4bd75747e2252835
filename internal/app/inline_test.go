package app

import (
	"context"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

// TestInlineOnlyDeployment: a deployment whose only blobs are inline OLX
// (nothing in the blob store) opens again without a store identity
// refusal, verify re-hashes its inline blobs, and a reopening with inline
// blobs off still reads them.
func TestInlineOnlyDeployment(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := d.cfg(t)
			a := openApp(t, cfg)
			var c index.Collection
			if _, err := a.Refs.CreateCollection(ctx, index.NewCollection{}, refs.Request[index.Collection]{Render: keepIt(&c)}); err != nil {
				t.Fatal(err)
			}
			olx := []byte("<problem>inline only</problem>")
			var u index.Unit
			if _, err := a.Refs.CreateUnit(ctx, refs.NewUnit{Collection: c.ID, OLX: olx}, refs.Request[index.Unit]{Render: keepIt(&u)}); err != nil {
				t.Fatal(err)
			}
			if n := countStored(t, a); n != 0 {
				t.Fatalf("the blob store holds %d blobs, want none (the OLX is inline)", n)
			}
			rep, err := a.Verify(ctx, VerifyOptions{})
			if err != nil || !rep.OK() || rep.BlobsStored != 1 || rep.BlobsChecked != 1 {
				t.Fatalf("Verify = %+v, %v; want one inline blob stored and checked, nothing wrong", rep, err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}

			cfg.InlineMaxBytes = -1
			b := openApp(t, cfg) // the identity check must not refuse
			_, got, err := b.Refs.UnitOLX(ctx, index.Latest(u.ID))
			if err != nil || string(got) != string(olx) {
				t.Fatalf("UnitOLX after reopening with inline blobs off = %q, %v", got, err)
			}
		})
	}
}

func keepIt[T any](out *T) func(T, bool) (int, []byte, error) {
	return func(v T, _ bool) (int, []byte, error) { *out = v; return 201, nil, nil }
}

func countStored(t *testing.T, a *App) int {
	t.Helper()
	n := 0
	if err := a.Blobs.Walk(context.Background(), func(cas.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
