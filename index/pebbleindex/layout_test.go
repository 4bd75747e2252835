package pebbleindex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

func TestTimeKeysSortByTime(t *testing.T) {
	times := []int64{math.MinInt64, -1e18, -1, 0, 1, 1e9, time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano(), math.MaxInt64}
	for i := range times {
		if got := readTime(appendTime(nil, times[i])); got != times[i] {
			t.Fatalf("readTime(appendTime(%d)) = %d", times[i], got)
		}
		if i == 0 {
			continue
		}
		a, b := appendTime(nil, times[i-1]), appendTime(nil, times[i])
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("key of %d does not sort before key of %d", times[i-1], times[i])
		}
	}
}

func TestKeysRoundTrip(t *testing.T) {
	id, coll := uuid.New(), uuid.New()
	created := time.Now().UnixNano()

	vk := versionKey(id, 42)
	if len(vk) != sizeVersionKey || versionOfKey(vk) != 42 || !bytes.HasPrefix(vk, versionPrefix(id)) {
		t.Fatalf("versionKey = %x", vk)
	}
	// Versions of one entity sort by number, the draft (0) first.
	if bytes.Compare(versionKey(id, 0), versionKey(id, 1)) >= 0 || bytes.Compare(versionKey(id, 9), versionKey(id, 10)) >= 0 {
		t.Fatal("version keys do not sort by number")
	}
	for _, k := range [][]byte{
		collectionListKey(created, id),
		memberKey(coll, index.KindUnit, created, id),
		edgeKey(coll, roleLatest, created, id),
	} {
		at, got := listPosition(k)
		if at != created || got != id {
			t.Fatalf("listPosition(%x) = %d %s, want %d %s", k, at, got, created, id)
		}
	}
	if !bytes.HasPrefix(memberKey(coll, index.KindAsset, created, id), memberKindPrefix(coll, index.KindAsset)) {
		t.Fatal("member key outside its kind's prefix")
	}
	if !bytes.HasPrefix(edgeKey(coll, roleDraft, created, id), edgePrefix(coll)) {
		t.Fatal("edge key outside its target's prefix")
	}

	h := cas.Sum([]byte("x"))
	set := cas.Sum([]byte("set"))
	rk := reverseKey(id, 7, set)
	if !bytes.HasPrefix(rk, reversePinPrefix(id, 7)) || bytes.HasPrefix(rk, reversePinPrefix(id, 8)) || !bytes.HasPrefix(rk, reversePrefix(id)) {
		t.Fatalf("reverse key %x outside its prefixes", rk)
	}
	hk := hashRefKey(h, index.KindUnit, id, 3)
	if !bytes.HasPrefix(hk, hashRefPrefix(h)) || readHash(hk[1:]) != h {
		t.Fatalf("hash key %x", hk)
	}
	sk := supersededKey(created, id, 5)
	if readTime(sk[1:]) != created || readUUID(sk[1+sizeTime:]) != id || readU64(sk[1+sizeTime+sizeUUID:]) != 5 {
		t.Fatalf("superseded key %x", sk)
	}
	if bytes.Compare(sk, timeBound(pSuperseded, created)) < 0 || bytes.Compare(sk, timeBound(pSuperseded, created+1)) >= 0 {
		t.Fatal("superseded key outside its time bounds")
	}
	if got := prefixEnd([]byte{'a', 0xff}); !bytes.Equal(got, []byte{'b'}) {
		t.Fatalf("prefixEnd(a ff) = %x", got)
	}
	if got := prefixEnd([]byte{0xff, 0xff}); got != nil {
		t.Fatalf("prefixEnd(ff ff) = %x, want nil", got)
	}
}

func TestValuesRoundTrip(t *testing.T) {
	e := entityRec{
		Kind: index.KindUnit, Collection: uuid.New(), Created: -5, Latest: 1 << 40, LatestCreated: 7,
		LatestGC: true, LatestName: "vertical/a.xml", LatestLinks: cas.Sum([]byte("l")), HasDraft: true,
		DraftCreated: 9, DraftName: "d", DraftLinks: cas.Sum([]byte("d")), EverLinked: true, LastUnlinked: 11,
	}
	got, err := decodeEntity(e.encode())
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("entity round trip = %+v, %v; want %+v", got, err, e)
	}
	a := entityRec{Kind: index.KindAsset, Collection: uuid.New(), Created: 3, EverLinked: true, DraftGC: true}
	if got, err := decodeEntity(a.encode()); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("asset entity round trip = %+v, %v", got, err)
	}

	v := versionRec{
		Created: 1, Superseded: 2, GC: true, Hash: cas.Sum([]byte("h")), Size: 1 << 40, Links: cas.Sum([]byte("s")),
		Name: "n", MediaType: "video/mp4", Description: "d", Owner: "o", Author: "a", License: "l",
	}
	if got, err := decodeVersion(v.encode()); err != nil || got != v {
		t.Fatalf("version round trip = %+v, %v", got, err)
	}

	ls := linkSet{Refs: 3, Links: []index.Link{
		{Target: uuid.New(), Kind: index.KindUnit},
		{Target: uuid.New(), Kind: index.KindAsset, Version: 1 << 53},
	}}
	if got, err := decodeLinkSet(ls.encode()); err != nil || !reflect.DeepEqual(got, ls) {
		t.Fatalf("link set round trip = %+v, %v", got, err)
	}

	now := time.Unix(0, time.Now().UnixNano()).UTC()
	b := index.Blob{Hash: cas.Sum([]byte("b")), Size: -1, State: index.BlobDeleting, CreatedAt: now, LeasedAt: now.Add(time.Hour)}
	if got, err := decodeBlob(b.Hash, encodeBlob(b, 7)); err != nil || got != b {
		t.Fatalf("blob round trip = %+v, %v", got, err)
	}
	r := index.IdempotencyRecord{Key: "POST /api/v1/units\x00k", Fingerprint: cas.Sum([]byte("f")), Status: 201, Body: []byte(`{}`), ExpiresAt: now}
	if got, err := decodeIdempotency(r.Key, encodeIdempotency(r)); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("idempotency round trip = %+v, %v", got, err)
	}
	run := index.GCRun{ID: "r1", StartedAt: now, Report: []byte(`{"id":"r1"}`)}
	if got, err := decodeRun(run.ID, encodeRun(run)); err != nil || !reflect.DeepEqual(got, run) {
		t.Fatalf("gc run round trip = %+v, %v", got, err)
	}

	// Truncated values are corrupt, not silently zero.
	enc := v.encode()
	if _, err := decodeVersion(enc[:len(enc)-1]); !errors.Is(err, errCorrupt) {
		t.Fatalf("truncated version: %v, want errCorrupt", err)
	}
	if _, err := decodeEntity(append(e.encode(), 0)); !errors.Is(err, errCorrupt) {
		t.Fatalf("entity with trailing bytes: %v, want errCorrupt", err)
	}
}

// fixture is a store with a collection and helpers to register blobs.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	s    *Store
	coll uuid.UUID
	n    int
}

func newFixture(t *testing.T, s *Store) *fixture {
	f := &fixture{t: t, ctx: context.Background(), s: s}
	err := s.Update(f.ctx, func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "c"}})
		f.coll = c.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) blob() cas.Hash {
	f.t.Helper()
	f.n++
	h := cas.Sum(fmt.Appendf(nil, "blob %s %d", f.t.Name(), f.n))
	_, tk, err := f.s.BeginBlob(f.ctx, h)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.FinishBlob(f.ctx, h, int64(f.n), tk); err != nil {
		f.t.Fatal(err)
	}
	return h
}

func (f *fixture) unit(name string, links ...index.Link) index.Unit {
	f.t.Helper()
	h := f.blob()
	var u index.Unit
	err := f.s.Update(f.ctx, func(tx index.Tx) (err error) {
		u, err = tx.CreateUnit(index.NewUnit{Collection: f.coll, Name: name, Hash: h, Links: links})
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s)
	target := f.unit("target")
	u := f.unit("linker", index.Link{Target: target.ID})
	pending := cas.Sum([]byte("pending"))
	if _, _, err := s.BeginBlob(f.ctx, pending); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Unit(f.ctx, index.Latest(u.ID)); !errors.Is(err, index.ErrClosed) {
		t.Fatalf("Unit after Close: %v, want ErrClosed", err)
	}
	if err := s.Update(f.ctx, func(index.Tx) error { return nil }); !errors.Is(err, index.ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Unit(f.ctx, index.Latest(u.ID))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != u.Hash || got.Size != u.Size || !index.SameLinks(got.Links, u.Links) || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("after reopen: %+v, want %+v", got, u)
	}
	p, err := s.LinkedBy(f.ctx, target.ID, index.ListOptions{})
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != u.ID {
		t.Fatalf("LinkedBy after reopen = %+v, %v", p, err)
	}
	b, err := s.Blob(f.ctx, pending)
	if err != nil || b.State != index.BlobPending {
		t.Fatalf("pending blob after reopen = %+v, %v", b, err)
	}
}

func TestOpenRefusesAnotherLayout(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set([]byte(layoutKey), []byte("something else"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a database of another layout")
	}
}

// TestGroupCommit runs writers concurrently: every commit is durable and
// versions of one unit are numbered without gaps or repeats.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, Options{})
	f := newFixture(t, s)
	u := f.unit("shared")
	hashes := []cas.Hash{f.blob(), f.blob()}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	vers := make(chan int64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := s.Update(f.ctx, func(tx index.Tx) error {
					got, created, err := tx.CommitUnit(u.ID, index.UnitChange{Hash: hashes[(w+i)%2], Name: ptr(fmt.Sprintf("w%d-%d", w, i))}, false)
					if err == nil && created {
						vers <- got.Version
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(vers)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for v := range vers {
		if seen[v] {
			t.Fatalf("version %d given twice", v)
		}
		seen[v] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d versions created, want %d", len(seen), writers*each)
	}
	for v := int64(2); v <= writers*each+1; v++ {
		if !seen[v] {
			t.Fatalf("version %d missing", v)
		}
	}
	if s.group.durable != s.group.applied || s.group.active != 0 {
		t.Fatalf("durable %d, applied %d, active %d after every Update returned", s.group.durable, s.group.applied, s.group.active)
	}
}

// TestFailedMethodLeavesBatch checks that a Tx method that fails changes
// nothing even when the closure goes on and commits.
func TestFailedMethodLeavesBatch(t *testing.T) {
	s := openTest(t, Options{InMemory: true})
	f := newFixture(t, s)
	a := f.unit("a")
	b := f.unit("b", index.Link{Target: a.ID})
	missing := cas.Sum([]byte("missing"))
	err := s.Update(f.ctx, func(tx index.Tx) error {
		// A cycle, a taken name, a missing blob: each refused, none written.
		if _, _, err := tx.CommitUnit(a.ID, index.UnitChange{Hash: a.Hash, Links: &[]index.Link{{Target: b.ID}}}, false); !errors.Is(err, index.ErrInvalid) {
			return fmt.Errorf("cycle: %v", err)
		}
		if _, _, err := tx.CommitUnit(a.ID, index.UnitChange{Hash: a.Hash, Name: ptr("b")}, true); !errors.Is(err, index.ErrConflict) {
			return fmt.Errorf("taken name: %v", err)
		}
		if _, err := tx.CreateUnit(index.NewUnit{Collection: f.coll, Name: "new", Hash: missing}); !errors.Is(err, index.ErrBlobMissing) {
			return fmt.Errorf("missing blob: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Unit(f.ctx, index.Latest(a.ID))
	if err != nil || got.Version != 1 || len(got.Links) != 0 {
		t.Fatalf("unit a = %+v, %v", got, err)
	}
	if _, err := s.Unit(f.ctx, index.Ref{ID: a.ID, Draft: true}); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("draft of a: %v, want ErrNotFound", err)
	}
	p, err := s.Units(f.ctx, f.coll, index.ListOptions{})
	if err != nil || len(p.Items) != 2 {
		t.Fatalf("Units = %d items, %v", len(p.Items), err)
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkCodec compares the binary encoding of a unit version record with
// JSON, for the "measure" in the design notes.
func BenchmarkCodec(b *testing.B) {
	v := versionRec{
		Created: time.Now().UnixNano(), Superseded: time.Now().UnixNano(), GC: true,
		Hash: cas.Sum([]byte("h")), Size: 4096, Links: cas.Sum([]byte("s")), Name: "vertical/3f2a0c1e.xml",
	}
	b.Run("binary", func(b *testing.B) {
		enc := v.encode()
		b.ReportMetric(float64(len(enc)), "bytes")
		for b.Loop() {
			if _, err := decodeVersion(v.encode()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		enc, _ := json.Marshal(v)
		b.ReportMetric(float64(len(enc)), "bytes")
		for b.Loop() {
			enc, err := json.Marshal(v)
			if err != nil {
				b.Fatal(err)
			}
			var out versionRec
			if err := json.Unmarshal(enc, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRegistryOutsideWriterTurn checks that blob registrations do not wait
// for the writer (an Update's closure may register a blob), while
// ClaimBlobs waits for the commit under way and then sees its reference.
func TestRegistryOutsideWriterTurn(t *testing.T) {
	s := openTest(t, Options{InMemory: true})
	f := newFixture(t, s)
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	h := cas.Sum([]byte("registered inside an update"))

	inside := make(chan struct{})
	release := make(chan struct{})
	claimed := make(chan []index.Blob, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx index.Tx) error {
			_, tk, err := s.BeginBlob(ctx, h)
			if err != nil {
				return err
			}
			if err := s.FinishBlob(ctx, h, 10, tk); err != nil {
				return err
			}
			close(inside)
			<-release
			_, err = tx.CreateUnit(index.NewUnit{Collection: f.coll, Hash: h})
			return err
		})
	}()
	select {
	case <-inside:
	case err := <-done:
		t.Fatalf("Update: %v", err)
	case <-ctx.Done():
		t.Fatal("BeginBlob inside an Update did not return")
	}
	go func() {
		// The lease cutoff is in the future: only a reference keeps h.
		c, err := s.ClaimBlobs(ctx, "layout-test", []cas.Hash{h}, time.Now().Add(time.Hour))
		if err != nil {
			t.Errorf("ClaimBlobs: %v", err)
		}
		claimed <- c
	}()
	select {
	case c := <-claimed:
		t.Fatalf("ClaimBlobs returned %v while a commit naming the blob was under way", c)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := <-claimed; len(c) != 0 {
		t.Fatalf("ClaimBlobs claimed %v, a blob a committed version names", c)
	}
	if b, err := s.Blob(ctx, h); err != nil || b.State != index.BlobLive {
		t.Fatalf("Blob = %+v, %v; want live", b, err)
	}
}

// TestReadOnlyUpdateIsDurable checks that an Update that writes nothing
// still returns only once every commit before it is synced.
func TestReadOnlyUpdateIsDurable(t *testing.T) {
	s := openTest(t, Options{})
	f := newFixture(t, s)
	f.unit("u")
	s.group.start()
	s.group.stop(true) // as if a commit were applied and its sync not yet run
	if err := s.Update(f.ctx, func(tx index.Tx) error {
		_, err := tx.Collection(f.ctx, f.coll, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s.group.durable < s.group.applied {
		t.Fatalf("durable %d < applied %d after a read-only Update", s.group.durable, s.group.applied)
	}
}
