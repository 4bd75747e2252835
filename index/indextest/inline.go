package indextest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// RunInline checks the optional inline blobs (index.InlineWriter,
// index.InlineReader) of the stores open returns: a blob written in a
// version's transaction is live and inline and read back with the unit; it
// keeps the registry's states and the sweep's claim, delete and forget; a
// rolled-back transaction leaves nothing. A store without them is skipped,
// saying so.
func RunInline(t *testing.T, open func(t *testing.T, opt index.Options) index.Store) {
	for _, tc := range []test{
		{"Lifecycle", testInlineLifecycle},
		{"PendingBecomesInline", testInlinePending},
		{"LiveStaysWhereItIs", testInlineLiveElsewhere},
		{"DeletingIsMissing", testInlineDeleting},
		{"RollbackLeavesNothing", testInlineRollback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(newEnv(t, open))
		})
	}
}

func (e *env) inline() index.InlineReader {
	e.t.Helper()
	r, ok := e.s.(index.InlineReader)
	if !ok {
		e.t.Skipf("%T does not implement index.InlineReader", e.s)
	}
	return r
}

// olx returns new bytes and their hash.
func (e *env) olx() ([]byte, cas.Hash) {
	b := fmt.Appendf(nil, "<html>%s %d</html>", e.t.Name(), e.seq.Add(1))
	return b, cas.Sum(b)
}

// inlineUnit creates a unit in coll whose content is b, stored inline in
// the same transaction.
func (e *env) inlineUnit(coll uuid.UUID, b []byte) (index.Unit, error) {
	var u index.Unit
	err := e.update(func(tx index.Tx) error {
		w, ok := tx.(index.InlineWriter)
		if !ok {
			return fmt.Errorf("%T does not implement index.InlineWriter", tx)
		}
		h := cas.Sum(b)
		if err := w.PutInlineBlob(h, b); err != nil {
			return err
		}
		var err error
		u, err = tx.CreateUnit(index.NewUnit{Collection: coll, Hash: h})
		return err
	})
	return u, err
}

func (e *env) wantInline(what string, h cas.Hash, want []byte) {
	e.t.Helper()
	got, err := e.inline().InlineBlobs(e.ctx, []cas.Hash{h, h})
	e.wantOK(what+": InlineBlobs", err)
	b, ok := got[h]
	switch {
	case want == nil && ok:
		e.t.Fatalf("%s: InlineBlobs has %s, want none", what, short(h))
	case want != nil && !bytes.Equal(b, want):
		e.t.Fatalf("%s: InlineBlobs[%s] = %q (%v), want %q", what, short(h), b, ok, want)
	}
}

func testInlineLifecycle(e *env) {
	e.inline()
	c := e.collection("c")
	b, h := e.olx()
	u, err := e.inlineUnit(c.ID, b)
	e.wantOK("a unit with inline content", err)
	if u.Hash != h || u.Size != int64(len(b)) {
		e.t.Fatalf("unit = %+v, want hash %s size %d", u, short(h), len(b))
	}
	row, err := e.s.Blob(e.ctx, h)
	e.wantOK("Blob", err)
	if row.State != index.BlobLive || !row.Inline || row.Size != int64(len(b)) {
		e.t.Fatalf("Blob = %+v, want live, inline, size %d", row, len(b))
	}
	e.wantInline("after the commit", h, b)
	got, content, err := e.inline().UnitInline(e.ctx, index.Latest(u.ID))
	e.wantOK("UnitInline", err)
	if got.ID != u.ID || !bytes.Equal(content, b) {
		e.t.Fatalf("UnitInline = %+v, %q; want %s with %q", got, content, u.ID, b)
	}
	_, _, err = e.inline().UnitInline(e.ctx, index.Latest(uuid.New()))
	e.wantErr("UnitInline of no unit", err, index.ErrNotFound)
	_, _, err = e.inline().UnitInline(e.ctx, index.Latest(c.ID))
	e.wantErr("UnitInline of a collection", err, index.ErrNotFound)

	// The same bytes again: deduplicated, one row.
	u2, err := e.inlineUnit(c.ID, b)
	e.wantOK("a second unit with the same content", err)

	// Unreferenced and past its lease, it is claimed, then forgotten with
	// its bytes.
	for _, id := range []uuid.UUID{u.ID, u2.ID} {
		e.must("DeleteEntity", func(tx index.Tx) error { return tx.DeleteEntity(id) })
	}
	e.clock.Advance(2 * time1h)
	claimed, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{h}, e.clock.Now())
	e.wantOK("ClaimBlobs", err)
	if len(claimed) != 1 || !claimed[0].Inline {
		e.t.Fatalf("ClaimBlobs = %+v, want the inline row", claimed)
	}
	e.wantInline("claimed, not yet forgotten", h, b)
	e.wantOK("ForgetBlobs", e.s.ForgetBlobs(e.ctx, testSweep, []cas.Hash{h}))
	_, err = e.s.Blob(e.ctx, h)
	e.wantErr("Blob after ForgetBlobs", err, index.ErrNotFound)
	e.wantInline("after ForgetBlobs", h, nil)
}

// testInlinePending: an upload of the same bytes under way (pending) does
// not stop the commit; its FinishBlob then finds the row live.
func testInlinePending(e *env) {
	e.inline()
	c := e.collection("c")
	b, h := e.olx()
	st, err := e.begin(h)
	e.wantOK("BeginBlob", err)
	if st != index.BlobPending {
		e.t.Fatalf("BeginBlob = %v, want pending", st)
	}
	_, err = e.inlineUnit(c.ID, b)
	e.wantOK("a unit with inline content over a pending row", err)
	e.wantOK("FinishBlob of the upload", e.finish(h, int64(len(b))))
	row, err := e.s.Blob(e.ctx, h)
	e.wantOK("Blob", err)
	if row.State != index.BlobLive || !row.Inline {
		e.t.Fatalf("Blob = %+v, want live and inline", row)
	}
	e.wantInline("after the upload finished", h, b)
}

// testInlineLiveElsewhere: bytes already live in the blob store stay there.
func testInlineLiveElsewhere(e *env) {
	e.inline()
	c := e.collection("c")
	b, h := e.olx()
	e.register(h, int64(len(b)))
	u, err := e.inlineUnit(c.ID, b)
	e.wantOK("a unit whose content is live in the blob store", err)
	row, err := e.s.Blob(e.ctx, h)
	e.wantOK("Blob", err)
	if row.Inline {
		e.t.Fatalf("Blob = %+v, want it not inline", row)
	}
	e.wantInline("live in the blob store", h, nil)
	_, content, err := e.inline().UnitInline(e.ctx, index.Latest(u.ID))
	e.wantOK("UnitInline", err)
	if content != nil {
		e.t.Fatalf("UnitInline content = %q, want nil", content)
	}
}

// testInlineDeleting: while a sweep holds the row, a commit of the same
// bytes is ErrBlobMissing; once forgotten, it succeeds.
func testInlineDeleting(e *env) {
	e.inline()
	c := e.collection("c")
	b, h := e.olx()
	u, err := e.inlineUnit(c.ID, b)
	e.wantOK("first unit", err)
	e.must("DeleteEntity", func(tx index.Tx) error { return tx.DeleteEntity(u.ID) })
	e.clock.Advance(2 * time1h)
	_, err = e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{h}, e.clock.Now())
	e.wantOK("ClaimBlobs", err)
	_, err = e.inlineUnit(c.ID, b)
	e.wantErr("a commit while the sweep holds the row", err, index.ErrBlobMissing)
	e.wantOK("ForgetBlobs", e.s.ForgetBlobs(e.ctx, testSweep, []cas.Hash{h}))
	_, err = e.inlineUnit(c.ID, b)
	e.wantOK("the commit after the sweep", err)
	e.wantInline("stored again", h, b)
}

func testInlineRollback(e *env) {
	e.inline()
	b, h := e.olx()
	errAbort := errors.New("abort")
	err := e.update(func(tx index.Tx) error {
		if err := tx.(index.InlineWriter).PutInlineBlob(h, b); err != nil {
			return err
		}
		return errAbort
	})
	e.wantErr("the aborted transaction", err, errAbort)
	_, err = e.s.Blob(e.ctx, h)
	e.wantErr("Blob after a rollback", err, index.ErrNotFound)
	e.wantInline("after a rollback", h, nil)
}
