package refs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pebbleindex"
)

// inlineFixture is one index and one blob store with two services over
// them: one storing OLX inline, one with the threshold at 0 (off), as
// before and after a change of --inline-max-bytes.
type inlineFixture struct {
	idx       *pebbleindex.Store
	blobs     *cas.Store
	on, off   *Service
	coll      uuid.UUID
	inlineMax int64
}

func newInlineFixture(t *testing.T) *inlineFixture {
	t.Helper()
	idx, err := pebbleindex.Open("", pebbleindex.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	backend, err := dirstore.Open(t.TempDir(), dirstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := cas.New(backend, cas.Options{})
	t.Cleanup(func() {
		idx.Close()
		blobs.Close()
	})
	f := &inlineFixture{idx: idx, blobs: blobs, inlineMax: 1024}
	// No cache: every read goes where the bytes are.
	f.on = New(idx, blobs, Options{CacheBytes: -1, InlineMaxBytes: f.inlineMax})
	f.off = New(idx, blobs, Options{CacheBytes: -1, InlineMaxBytes: -1})
	var c index.Collection
	if _, err := f.on.CreateCollection(context.Background(), index.NewCollection{}, Request[index.Collection]{Render: asIs(&c)}); err != nil {
		t.Fatal(err)
	}
	f.coll = c.ID
	return f
}

func (f *inlineFixture) create(t *testing.T, s *Service, olx []byte) (index.Unit, error) {
	t.Helper()
	var u index.Unit
	_, err := s.CreateUnit(context.Background(), NewUnit{Collection: f.coll, OLX: olx}, Request[index.Unit]{Render: asIs(&u)})
	return u, err
}

// where says where the bytes of h are: "inline", "blob store" or "nowhere".
func (f *inlineFixture) where(t *testing.T, h cas.Hash) string {
	t.Helper()
	ctx := context.Background()
	in, err := f.idx.InlineBlobs(ctx, []cas.Hash{h})
	if err != nil {
		t.Fatal(err)
	}
	_, serr := f.blobs.Stat(ctx, h)
	switch {
	case in[h] != nil && serr == nil:
		return "both"
	case in[h] != nil:
		return "inline"
	case serr == nil:
		return "blob store"
	case errors.Is(serr, cas.ErrNotFound):
		return "nowhere"
	}
	t.Fatal(serr)
	return ""
}

func (f *inlineFixture) wantOLX(t *testing.T, s *Service, u index.Unit, want []byte) {
	t.Helper()
	ctx := context.Background()
	_, got, err := s.UnitOLX(ctx, index.Latest(u.ID))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("UnitOLX = %.20q, %v; want %.20q", got, err, want)
	}
	r, err := s.OpenBlob(ctx, u.Hash)
	if err != nil {
		t.Fatalf("OpenBlob: %v", err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(r)
	r.Close()
	if err != nil || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("OpenBlob read %.20q, %v; want %.20q", buf.Bytes(), err, want)
	}
	res, err := s.Resolve(ctx, []index.Ref{index.Latest(u.ID)}, true)
	if err != nil || len(res) != 1 || !bytes.Equal(res[0].OLX, want) {
		t.Fatalf("Resolve = %+v, %v; want the OLX", res, err)
	}
}

// TestInlineWhereBytesLive: small OLX is inline, large OLX and OLX stored
// with the threshold off are in the blob store, and every one of them is
// read by both services.
func TestInlineWhereBytesLive(t *testing.T) {
	f := newInlineFixture(t)
	small := []byte("<problem>small</problem>")
	large := []byte("<problem>" + strings.Repeat("x", int(f.inlineMax)) + "</problem>")
	before := []byte("<problem>stored with inline blobs off</problem>")

	us, err := f.create(t, f.on, small)
	if err != nil {
		t.Fatal(err)
	}
	ul, err := f.create(t, f.on, large)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := f.create(t, f.off, before)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		u    index.Unit
		olx  []byte
		want string
	}{{us, small, "inline"}, {ul, large, "blob store"}, {ub, before, "blob store"}} {
		if got := f.where(t, c.u.Hash); got != c.want {
			t.Errorf("%.20q is in %s, want %s", c.olx, got, c.want)
		}
		for _, s := range []*Service{f.on, f.off} {
			f.wantOLX(t, s, c.u, c.olx)
		}
	}
	// The same bytes committed with inline on after they were stored in
	// the blob store stay there, once.
	if _, err := f.create(t, f.on, before); err != nil {
		t.Fatal(err)
	}
	if got := f.where(t, ub.Hash); got != "blob store" {
		t.Errorf("re-committed bytes are in %s, want the blob store only", got)
	}
}

// TestInlineCommitWaitsOutASweep: a commit of bytes that a sweep is
// deleting waits until the sweep forgets them, then stores them again.
func TestInlineCommitWaitsOutASweep(t *testing.T) {
	f := newInlineFixture(t)
	ctx := context.Background()
	olx := []byte("<problem>swept</problem>")
	u, err := f.create(t, f.on, olx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.on.DeleteUnit(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	claimed, err := f.idx.ClaimBlobs(ctx, "test-sweep", []cas.Hash{u.Hash}, time.Now().Add(time.Hour))
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v (%d claimed)", err, len(claimed))
	}
	type result struct {
		u   index.Unit
		err error
	}
	watch := &blobWatch{Store: f.idx, polled: make(chan struct{}, 1)}
	s := New(watch, f.blobs, Options{CacheBytes: -1, InlineMaxBytes: f.inlineMax})
	done := make(chan result, 1)
	go func() {
		u, err := f.create(t, s, olx)
		done <- result{u, err}
	}()
	select {
	case <-watch.polled: // the commit failed and waits for the sweep
	case r := <-done:
		t.Fatalf("the commit finished while the sweep held the blob: %+v, %v", r.u, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the commit did not look at the blob's row")
	}
	if err := f.idx.ForgetBlobs(ctx, "test-sweep", []cas.Hash{u.Hash}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("commit after the sweep: %v", r.err)
		}
		f.wantOLX(t, f.on, r.u, olx)
	case <-time.After(30 * time.Second):
		t.Fatal("the commit did not finish after the sweep forgot the blob")
	}
}

// blobWatch reports each read of a registry row (the wait for a sweep).
type blobWatch struct {
	*pebbleindex.Store
	polled chan struct{}
}

func (w *blobWatch) Blob(ctx context.Context, h cas.Hash) (index.Blob, error) {
	select {
	case w.polled <- struct{}{}:
	default:
	}
	return w.Store.Blob(ctx, h)
}
