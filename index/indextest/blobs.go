package indextest

import (
	"bytes"
	"slices"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

var blobTests = []test{
	{"StateMachine", testBlobStateMachine},
	{"RenewBlobs", testBlobRenew},
	{"CommitNeedsLiveBlob", testBlobCommitNeedsLive},
	{"SizeFromRegistry", testBlobSizeFromRegistry},
	{"ClaimBlobs", testClaimBlobs},
	{"ClaimedCannotBeReferenced", testClaimedNotReferenced},
	{"DeletingAndForget", testDeletingAndForget},
	{"Stream", testBlobsStream},
	{"StaleTicket", testStaleTicket},
}

// testStaleTicket: an upload whose registration a sweep claimed and forgot
// cannot finish the next registration of the same hash (whose bytes may not
// be written yet); that registration's own ticket can.
func testStaleTicket(e *env) {
	h := e.unregistered()
	st, first, err := e.s.BeginBlob(e.ctx, h)
	if err != nil || st != index.BlobPending || first == 0 {
		e.t.Fatalf("BeginBlob = %v, ticket %d, %v; want pending with a ticket", st, first, err)
	}
	if _, again, err := e.s.BeginBlob(e.ctx, h); err != nil || again != first {
		e.t.Fatalf("BeginBlob of a pending hash gave ticket %d, %v; want the registration's %d", again, err, first)
	}
	e.clock.Advance(2 * time1h)
	if claimed, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{h}, e.clock.Now()); err != nil || len(claimed) != 1 {
		e.t.Fatalf("ClaimBlobs = %d rows, %v", len(claimed), err)
	}
	e.wantOK("ForgetBlobs", e.s.ForgetBlobs(e.ctx, testSweep, []cas.Hash{h}))
	st, second, err := e.s.BeginBlob(e.ctx, h)
	if err != nil || st != index.BlobPending || second == first || second == 0 {
		e.t.Fatalf("BeginBlob after ForgetBlobs = %v, ticket %d (first %d), %v", st, second, first, err)
	}
	e.wantBlobMissing("FinishBlob with the ticket of a forgotten registration", e.s.FinishBlob(e.ctx, h, 9, first), h)
	if b := e.getBlob(h); b.State != index.BlobPending {
		e.t.Fatalf("a stale FinishBlob changed the new registration to %v", b.State)
	}
	e.wantOK("FinishBlob with the new ticket", e.s.FinishBlob(e.ctx, h, 9, second))
	// Once live, any finisher only renews (its bytes are the same bytes).
	e.wantOK("FinishBlob of a live blob with an old ticket", e.s.FinishBlob(e.ctx, h, 9, first))
	if b := e.getBlob(h); b.State != index.BlobLive || b.Size != 9 {
		e.t.Fatalf("blob = %+v, want live of size 9", b)
	}
}

func testBlobStateMachine(e *env) {
	h := e.unregistered()
	_, err := e.s.Blob(e.ctx, h)
	e.wantErr("Blob of an unregistered hash", err, index.ErrNotFound)
	e.wantBlobMissing("FinishBlob without BeginBlob", e.finish(h, 10), h)
	_, err = e.s.Blob(e.ctx, h)
	e.wantErr("Blob after a refused FinishBlob", err, index.ErrNotFound)

	// absent → pending.
	t0 := e.clock.Peek()
	st, err := e.begin(h)
	e.wantOK("BeginBlob", err)
	if st != index.BlobPending {
		e.t.Fatalf("BeginBlob of a new hash = %v, want pending", st)
	}
	b := e.getBlob(h)
	if b.Hash != h || b.State != index.BlobPending || b.Size != -1 {
		e.t.Fatalf("pending blob = %+v, want size -1", b)
	}
	e.within("pending CreatedAt", b.CreatedAt, t0, e.clock.Peek())
	e.within("pending LeasedAt", b.LeasedAt, t0, e.clock.Peek())
	created := b.CreatedAt

	// pending → pending, lease renewed.
	e.clock.Advance(time1h)
	t1 := e.clock.Peek()
	st, err = e.begin(h)
	if err != nil || st != index.BlobPending {
		e.t.Fatalf("BeginBlob of a pending hash = %v, %v; want pending", st, err)
	}
	b = e.getBlob(h)
	e.within("renewed pending LeasedAt", b.LeasedAt, t1, e.clock.Peek())
	if !b.CreatedAt.Equal(created) {
		e.t.Fatalf("BeginBlob changed CreatedAt from %s to %s", created, b.CreatedAt)
	}

	// pending → live with the size, lease renewed.
	e.clock.Advance(time1h)
	t2 := e.clock.Peek()
	e.wantOK("FinishBlob", e.finish(h, 12345))
	b = e.getBlob(h)
	if b.State != index.BlobLive || b.Size != 12345 || !b.CreatedAt.Equal(created) {
		e.t.Fatalf("finished blob = %+v", b)
	}
	e.within("live LeasedAt", b.LeasedAt, t2, e.clock.Peek())

	// live → live: BeginBlob renews and reports live; FinishBlob again is fine.
	e.clock.Advance(time1h)
	t3 := e.clock.Peek()
	st, err = e.begin(h)
	if err != nil || st != index.BlobLive {
		e.t.Fatalf("BeginBlob of a live hash = %v, %v; want live", st, err)
	}
	b = e.getBlob(h)
	if b.State != index.BlobLive || b.Size != 12345 {
		e.t.Fatalf("BeginBlob of a live blob changed it: %+v", b)
	}
	e.within("live LeasedAt renewed by BeginBlob", b.LeasedAt, t3, e.clock.Peek())
	e.wantOK("FinishBlob of a live blob", e.finish(h, 12345))
	if b = e.getBlob(h); b.State != index.BlobLive || b.Size != 12345 {
		e.t.Fatalf("blob after a second FinishBlob = %+v", b)
	}
	// Blob renews nothing.
	e.clock.Advance(time1h)
	if again := e.getBlob(h); !again.LeasedAt.Equal(b.LeasedAt) {
		e.t.Fatalf("Blob renewed the lease: %s → %s", b.LeasedAt, again.LeasedAt)
	}
	// An empty blob is a blob.
	empty := cas.Sum(nil)
	e.register(empty, 0)
	if b := e.getBlob(empty); b.State != index.BlobLive || b.Size != 0 {
		e.t.Fatalf("empty blob = %+v", b)
	}
}

func testBlobRenew(e *env) {
	live := e.blob()
	other := e.blob()
	pend := e.pending()
	absent := e.unregistered()
	deleting := e.blob()
	e.clock.Advance(2 * time1h)
	claimed, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{deleting}, e.clock.Peek())
	e.wantOK("ClaimBlobs", err)
	if len(claimed) != 1 {
		e.t.Fatalf("ClaimBlobs of an unreferenced blob with an old lease = %d rows", len(claimed))
	}
	before := e.getBlob(other).LeasedAt
	t0 := e.clock.Peek()
	got, err := e.s.RenewBlobs(e.ctx, []cas.Hash{live, pend, absent, deleting, live})
	e.wantOK("RenewBlobs", err)
	if len(got) != 1 {
		e.t.Fatalf("RenewBlobs returned %d rows, want only the live one", len(got))
	}
	b, ok := got[live]
	if !ok || b.Hash != live || b.State != index.BlobLive || b.Size != e.getBlob(live).Size {
		e.t.Fatalf("RenewBlobs row = %+v", b)
	}
	e.within("RenewBlobs lease", e.getBlob(live).LeasedAt, t0, e.clock.Peek())
	if !e.getBlob(other).LeasedAt.Equal(before) {
		e.t.Fatal("RenewBlobs renewed a blob it was not given")
	}
	if b := e.getBlob(pend); b.State != index.BlobPending || !b.LeasedAt.Before(t0) {
		e.t.Fatalf("RenewBlobs touched a pending blob: %+v", b)
	}
	if b := e.getBlob(deleting); b.State != index.BlobDeleting {
		e.t.Fatalf("RenewBlobs touched a deleting blob: %+v", b)
	}
	_, err = e.s.Blob(e.ctx, absent)
	e.wantErr("RenewBlobs registered an absent hash", err, index.ErrNotFound)
	got, err = e.s.RenewBlobs(e.ctx, nil)
	if err != nil || len(got) != 0 {
		e.t.Fatalf("RenewBlobs(nil) = %v, %v", got, err)
	}
}

func testBlobCommitNeedsLive(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	a := e.asset(c.ID, "a")
	missing := e.unregistered()
	pend := e.pending()
	deleting := e.blob()
	e.clock.Advance(2 * time1h)
	if _, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{deleting}, e.clock.Peek()); err != nil {
		e.t.Fatalf("ClaimBlobs: %v", err)
	}
	for _, h := range []cas.Hash{missing, pend, deleting} {
		for what, fn := range map[string]func(tx index.Tx) error{
			"CreateUnit": func(tx index.Tx) error {
				_, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: h})
				return err
			},
			"CreateUnit draft": func(tx index.Tx) error {
				_, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: h, Draft: true})
				return err
			},
			"CommitUnit": func(tx index.Tx) error {
				_, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: h}, false)
				return err
			},
			"CommitUnit draft": func(tx index.Tx) error {
				_, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: h}, true)
				return err
			},
			"CreateAsset": func(tx index.Tx) error {
				_, err := tx.CreateAsset(index.NewAsset{Collection: c.ID, Hash: h, MediaType: "text/plain"})
				return err
			},
			"CreateAsset draft": func(tx index.Tx) error {
				_, err := tx.CreateAsset(index.NewAsset{Collection: c.ID, Hash: h, MediaType: "text/plain", Draft: true})
				return err
			},
			"CommitAsset": func(tx index.Tx) error {
				_, _, err := tx.CommitAsset(a.ID, index.AssetChange{Hash: h}, false)
				return err
			},
			"CommitAsset draft": func(tx index.Tx) error {
				_, _, err := tx.CommitAsset(a.ID, index.AssetChange{Hash: h}, true)
				return err
			},
		} {
			e.wantBlobMissing(what+" naming a "+blobState(e, h)+" blob", e.update(fn), h)
		}
	}
	e.wantUnit("unit after refused commits", e.getUnit(index.Latest(u.ID)), u)
	e.wantAsset("asset after refused commits", e.getAsset(index.Latest(a.ID)), a)
	units := pages(e, "Units", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Unit], error) {
		return e.s.Units(e.ctx, c.ID, o)
	})
	e.wantIDs("Units after refused creates", unitIDs(units), []uuid.UUID{u.ID})
	// Publishing a draft whose blob is still live works; the pending blob,
	// once finished, can be named.
	e.wantOK("FinishBlob", e.finish(pend, 77))
	v, _ := e.commitUnit(u.ID, index.UnitChange{Hash: pend}, false)
	if v.Size != 77 {
		e.t.Fatalf("size of a version naming a finished blob = %d, want 77", v.Size)
	}
}

func blobState(e *env, h cas.Hash) string {
	b, err := e.s.Blob(e.ctx, h)
	if err != nil {
		return "unregistered"
	}
	return b.State.String()
}

func testBlobSizeFromRegistry(e *env) {
	c := e.collection("c")
	h, _ := e.blobSized(999_999_999_999)
	u := e.createUnit(index.NewUnit{Collection: c.ID, Hash: h})
	a := e.createAsset(index.NewAsset{Collection: c.ID, Hash: h, MediaType: "video/mp4"})
	if u.Size != 999_999_999_999 || a.Size != 999_999_999_999 {
		e.t.Fatalf("sizes = %d, %d; want the registry's", u.Size, a.Size)
	}
	if got := e.getUnit(index.Latest(u.ID)).Size; got != 999_999_999_999 {
		e.t.Fatalf("stored unit size = %d", got)
	}
	zero, _ := e.blobSized(0)
	if a := e.createAsset(index.NewAsset{Collection: c.ID, Hash: zero, MediaType: "text/plain"}); a.Size != 0 {
		e.t.Fatalf("size of an empty asset = %d", a.Size)
	}
}

// testClaimBlobs: ClaimBlobs claims only unreferenced blobs whose lease is
// older than the cutoff (pending or live), or that have no row.
func testClaimBlobs(e *env) {
	c := e.collection("c")
	refLatest := e.blob()
	refOld := e.blob()
	refDraft := e.blob()
	refDraftOnly := e.blob()
	refAsset := e.blob()
	refAssetOld := e.blob()
	oldLive := e.blob()
	oldPending := e.pending()
	u := e.createUnit(index.NewUnit{Collection: c.ID, Hash: refOld})
	e.commitUnit(u.ID, index.UnitChange{Hash: refLatest}, false)
	e.commitUnit(u.ID, index.UnitChange{Hash: refDraft}, true)
	e.createUnit(index.NewUnit{Collection: c.ID, Hash: refDraftOnly, Draft: true})
	a := e.createAsset(index.NewAsset{Collection: c.ID, Hash: refAssetOld, MediaType: "image/png"})
	e.commitAsset(a.ID, index.AssetChange{Hash: refAsset}, false)

	e.clock.Advance(2 * time1h)
	cutoff := e.clock.Now()
	e.clock.Advance(time1h)
	freshLive := e.blob()
	freshPending := e.pending()
	noRow := e.unregistered()
	all := []cas.Hash{refLatest, refOld, refDraft, refDraftOnly, refAsset, refAssetOld, oldLive, oldPending, freshLive, freshPending, noRow}

	claimed, err := e.s.ClaimBlobs(e.ctx, testSweep, all, cutoff)
	e.wantOK("ClaimBlobs", err)
	want := []cas.Hash{oldLive, oldPending, noRow}
	got := make([]cas.Hash, 0, len(claimed))
	for _, b := range claimed {
		got = append(got, b.Hash)
		if b.State != index.BlobDeleting {
			e.t.Fatalf("claimed row %s in state %v, want deleting", short(b.Hash), b.State)
		}
	}
	sortHashes(got)
	sortHashes(want)
	if !slices.Equal(got, want) {
		e.t.Fatalf("ClaimBlobs claimed %v, want the unreferenced old live, old pending and rowless blobs %v", shorts(got), shorts(want))
	}
	for _, h := range want {
		if b := e.getBlob(h); b.State != index.BlobDeleting {
			e.t.Fatalf("claimed blob %s is %v, want deleting", short(h), b.State)
		}
	}
	if b := e.getBlob(noRow); b.Size != -1 {
		e.t.Fatalf("claimed rowless blob has size %d, want -1", b.Size)
	}
	if b := e.getBlob(oldLive); b.Size <= 0 {
		e.t.Fatalf("claimed live blob lost its size: %d", b.Size)
	}
	for _, h := range []cas.Hash{refLatest, refOld, refDraft, refDraftOnly, refAsset, refAssetOld, freshLive} {
		if b := e.getBlob(h); b.State != index.BlobLive {
			e.t.Fatalf("unclaimed blob %s is %v, want live", short(h), b.State)
		}
	}
	if b := e.getBlob(freshPending); b.State != index.BlobPending {
		e.t.Fatalf("unclaimed pending blob is %v", b.State)
	}

	// A referenced blob is never claimed, however old its lease.
	e.clock.Advance(1000 * time1d)
	claimed, err = e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{refLatest, refOld, refDraft, refDraftOnly, refAsset, refAssetOld}, e.clock.Now())
	e.wantOK("ClaimBlobs", err)
	if len(claimed) != 0 {
		e.t.Fatalf("ClaimBlobs claimed %d referenced blobs", len(claimed))
	}
	// Once nothing references it (the entity deleted), it may be claimed.
	e.wantOK("DeleteEntity", e.deleteEntity(a.ID))
	claimed, err = e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{refAsset, refAssetOld, refLatest}, e.clock.Now())
	e.wantOK("ClaimBlobs", err)
	got = got[:0]
	for _, b := range claimed {
		got = append(got, b.Hash)
	}
	sortHashes(got)
	want = []cas.Hash{refAsset, refAssetOld}
	sortHashes(want)
	if !slices.Equal(got, want) {
		e.t.Fatalf("ClaimBlobs after delete claimed %v, want the deleted asset's %v", shorts(got), shorts(want))
	}
	claimed, err = e.s.ClaimBlobs(e.ctx, testSweep, nil, e.clock.Now())
	if err != nil || len(claimed) != 0 {
		e.t.Fatalf("ClaimBlobs(nil) = %v, %v", claimed, err)
	}
}

func testClaimedNotReferenced(e *env) {
	c := e.collection("c")
	u := e.unit(c.ID, "u")
	h := e.blob()
	e.clock.Advance(2 * time1h)
	claimed, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{h}, e.clock.Now())
	if err != nil || len(claimed) != 1 {
		e.t.Fatalf("ClaimBlobs = %d rows, %v", len(claimed), err)
	}
	err = e.update(func(tx index.Tx) error {
		_, _, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: h}, false)
		return err
	})
	e.wantBlobMissing("a commit naming a claimed blob", err, h)
	_, err = e.begin(h)
	e.wantErr("BeginBlob of a claimed blob", err, index.ErrBlobBusy)
	e.wantBlobMissing("FinishBlob of a claimed blob", e.finish(h, 5), h)
	if b := e.getBlob(h); b.State != index.BlobDeleting {
		e.t.Fatalf("claimed blob became %v", b.State)
	}
	// Claiming does not renew: a pending blob whose upload then finishes late is lost too.
	p := e.pending()
	e.clock.Advance(2 * time1h)
	if _, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{p}, e.clock.Now()); err != nil {
		e.t.Fatalf("ClaimBlobs: %v", err)
	}
	e.wantBlobMissing("FinishBlob of a claimed pending blob", e.finish(p, 5), p)
}

func testDeletingAndForget(e *env) {
	a := e.blob()
	b := e.blob()
	keep := e.blob()
	pend := e.pending()
	none := e.unregistered()
	e.clock.Advance(2 * time1h)
	cutoff := e.clock.Now()
	fresh := e.blob()
	claimed, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{a, b, none, pend, fresh}, cutoff)
	e.wantOK("ClaimBlobs", err)
	if len(claimed) != 4 {
		e.t.Fatalf("ClaimBlobs claimed %d, want 4", len(claimed))
	}
	var deleting []cas.Hash
	e.wantOK("DeletingBlobs", e.s.DeletingBlobs(e.ctx, func(bl index.Blob) error {
		if bl.State != index.BlobDeleting {
			e.t.Errorf("DeletingBlobs streamed a %v row", bl.State)
		}
		deleting = append(deleting, bl.Hash)
		return nil
	}))
	sortHashes(deleting)
	want := []cas.Hash{a, b, none, pend}
	sortHashes(want)
	if !slices.Equal(deleting, want) {
		e.t.Fatalf("DeletingBlobs = %v, want %v", shorts(deleting), shorts(want))
	}
	// ForgetBlobs removes deleting rows only.
	e.wantOK("ForgetBlobs", e.s.ForgetBlobs(e.ctx, testSweep, []cas.Hash{a, none, keep, fresh, e.unregistered()}))
	for _, h := range []cas.Hash{a, none} {
		_, err := e.s.Blob(e.ctx, h)
		e.wantErr("Blob after ForgetBlobs", err, index.ErrNotFound)
	}
	for _, h := range []cas.Hash{keep, fresh} {
		if bl := e.getBlob(h); bl.State != index.BlobLive {
			e.t.Fatalf("ForgetBlobs touched a live blob: %+v", bl)
		}
	}
	deleting = deleting[:0]
	e.wantOK("DeletingBlobs", e.s.DeletingBlobs(e.ctx, func(bl index.Blob) error {
		deleting = append(deleting, bl.Hash)
		return nil
	}))
	sortHashes(deleting)
	want = []cas.Hash{b, pend}
	sortHashes(want)
	if !slices.Equal(deleting, want) {
		e.t.Fatalf("DeletingBlobs after ForgetBlobs = %v, want %v", shorts(deleting), shorts(want))
	}
	// A forgotten hash starts a new life.
	st, err := e.begin(a)
	if err != nil || st != index.BlobPending {
		e.t.Fatalf("BeginBlob after ForgetBlobs = %v, %v; want pending", st, err)
	}
	e.wantOK("FinishBlob", e.finish(a, 3))
	c := e.collection("c")
	e.createUnit(index.NewUnit{Collection: c.ID, Hash: a})
	e.wantOK("ForgetBlobs(nil)", e.s.ForgetBlobs(e.ctx, testSweep, nil))
}

func testBlobsStream(e *env) {
	var want []cas.Hash
	for range 20 {
		want = append(want, e.blob())
	}
	want = append(want, e.pending())
	d := e.blob()
	want = append(want, d)
	e.clock.Advance(2 * time1h)
	if _, err := e.s.ClaimBlobs(e.ctx, testSweep, []cas.Hash{d}, e.clock.Now()); err != nil {
		e.t.Fatalf("ClaimBlobs: %v", err)
	}
	sortHashes(want)
	var got []cas.Hash
	states := map[index.BlobState]int{}
	e.wantOK("Blobs", e.s.Blobs(e.ctx, func(b index.Blob) error {
		got = append(got, b.Hash)
		states[b.State]++
		return nil
	}))
	if !slices.Equal(got, want) {
		e.t.Fatalf("Blobs streamed %v, want every row in ascending hash order %v", shorts(got), shorts(want))
	}
	if states[index.BlobLive] != 20 || states[index.BlobPending] != 1 || states[index.BlobDeleting] != 1 {
		e.t.Fatalf("Blobs states = %v", states)
	}
	// The callback's error stops the stream and comes back.
	n := 0
	err := e.s.Blobs(e.ctx, func(index.Blob) error {
		n++
		if n == 3 {
			return errStop
		}
		return nil
	})
	e.wantErr("Blobs stopped by its callback", err, errStop)
	if n != 3 {
		e.t.Fatalf("Blobs called back %d times after an error at 3", n)
	}
}

func sortHashes(hs []cas.Hash) {
	slices.SortFunc(hs, func(a, b cas.Hash) int { return bytes.Compare(a[:], b[:]) })
}

func shorts(hs []cas.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = short(h)
	}
	return out
}
