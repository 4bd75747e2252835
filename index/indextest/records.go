package indextest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

var idempotencyTests = []test{
	{"PutGetExpire", testIdempotency},
	{"DeleteExpired", testIdempotencyDeleteExpired},
}

var txTests = []test{
	{"Rollback", testRollback},
	{"RollbackOnRuleError", testRollbackRuleError},
	{"CancelledContext", testCancelledContext},
	{"Closed", testClosed},
}

func testIdempotency(e *env) {
	key := "POST /api/v1/units\x00retry-1"
	_, err := e.s.Idempotency(e.ctx, key)
	e.wantErr("Idempotency of an unknown key", err, index.ErrNotFound)
	body := []byte("{\"uuid\":\"…\"}\x00\xff binary is fine")
	rec := index.IdempotencyRecord{
		Key: key, Fingerprint: cas.Sum([]byte("request")), Status: 201, Body: body,
		ExpiresAt: e.clock.Peek().Add(24 * time1h),
	}
	// Written in the same transaction as what the request created.
	var created index.Collection
	e.must("CreateCollection + PutIdempotency", func(tx index.Tx) (err error) {
		created, err = tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "c"}})
		if err != nil {
			return err
		}
		return tx.PutIdempotency(rec)
	})
	got, err := e.s.Idempotency(e.ctx, key)
	e.wantOK("Idempotency", err)
	if got.Key != key || got.Fingerprint != rec.Fingerprint || got.Status != 201 || !bytes.Equal(got.Body, body) || !got.ExpiresAt.Equal(rec.ExpiresAt) {
		e.t.Fatalf("Idempotency = %+v, want %+v", got, rec)
	}
	// The same key again while live: conflict, and the transaction's other writes go too.
	err = e.update(func(tx index.Tx) error {
		if _, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "dup"}}); err != nil {
			return err
		}
		return tx.PutIdempotency(index.IdempotencyRecord{Key: key, Fingerprint: cas.Sum([]byte("other")), Status: 200, ExpiresAt: rec.ExpiresAt})
	})
	e.wantErr("PutIdempotency of a live key", err, index.ErrConflict)
	cs := pages(e, "Collections", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Collection], error) {
		return e.s.Collections(e.ctx, o)
	})
	e.wantIDs("Collections after a refused duplicate key", collectionIDs(cs), []uuid.UUID{created.ID})
	if got, _ := e.s.Idempotency(e.ctx, key); got.Status != 201 {
		e.t.Fatalf("the first record changed: %+v", got)
	}
	// Keys differ by scope: another path is another key.
	other := "POST /api/v1/collections\x00retry-1"
	e.must("PutIdempotency", func(tx index.Tx) error {
		return tx.PutIdempotency(index.IdempotencyRecord{Key: other, Status: 201, Body: []byte("{}"), ExpiresAt: rec.ExpiresAt})
	})
	// Long keys (up to 1024 bytes), unicode, empty bodies.
	long := "POST /api/v1/assets\x00" + strings.Repeat("키", 334)
	e.must("PutIdempotency long", func(tx index.Tx) error {
		return tx.PutIdempotency(index.IdempotencyRecord{Key: long, Status: 204, ExpiresAt: rec.ExpiresAt})
	})
	if got, err := e.s.Idempotency(e.ctx, long); err != nil || got.Status != 204 || len(got.Body) != 0 {
		e.t.Fatalf("Idempotency(long key) = %+v, %v", got, err)
	}
	// Expiry.
	e.clock.Advance(24*time1h + time1h)
	_, err = e.s.Idempotency(e.ctx, key)
	e.wantErr("Idempotency of an expired key", err, index.ErrNotFound)
	// An expired key may be used again.
	rec2 := rec
	rec2.Status, rec2.Body, rec2.ExpiresAt = 200, []byte("second"), e.clock.Peek().Add(24*time1h)
	e.must("PutIdempotency over an expired record", func(tx index.Tx) error { return tx.PutIdempotency(rec2) })
	got, err = e.s.Idempotency(e.ctx, key)
	e.wantOK("Idempotency", err)
	if got.Status != 200 || string(got.Body) != "second" {
		e.t.Fatalf("Idempotency after reuse = %+v", got)
	}
}

func testIdempotencyDeleteExpired(e *env) {
	now := e.clock.Peek()
	for i, d := range []int{1, 2, 48} {
		key := "POST /api/v1/units\x00k" + string(rune('0'+i))
		e.must("PutIdempotency", func(tx index.Tx) error {
			return tx.PutIdempotency(index.IdempotencyRecord{Key: key, Status: 201, ExpiresAt: now.Add(time1h * time.Duration(d))})
		})
	}
	n, err := e.s.DeleteExpiredIdempotency(e.ctx, e.clock.Peek())
	if err != nil || n != 0 {
		e.t.Fatalf("DeleteExpiredIdempotency before any expiry = %d, %v", n, err)
	}
	e.clock.Advance(3 * time1h)
	n, err = e.s.DeleteExpiredIdempotency(e.ctx, e.clock.Peek())
	if err != nil || n != 2 {
		e.t.Fatalf("DeleteExpiredIdempotency = %d, %v; want 2", n, err)
	}
	if _, err := e.s.Idempotency(e.ctx, "POST /api/v1/units\x00k2"); err != nil {
		e.t.Fatalf("the live record went: %v", err)
	}
	n, err = e.s.DeleteExpiredIdempotency(e.ctx, e.clock.Peek())
	if err != nil || n != 0 {
		e.t.Fatalf("DeleteExpiredIdempotency again = %d, %v; want 0", n, err)
	}
	// The time given is what counts, not the store's clock.
	n, err = e.s.DeleteExpiredIdempotency(e.ctx, now.Add(100*time1h))
	if err != nil || n != 1 {
		e.t.Fatalf("DeleteExpiredIdempotency at a later time = %d, %v; want 1", n, err)
	}
}

var errBoom = errors.New("indextest: boom")

func testRollback(e *env) {
	keep := e.collection("keep")
	h := e.blob()
	var c index.Collection
	var u index.Unit
	var a index.Asset
	err := e.update(func(tx index.Tx) (err error) {
		if c, err = tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "rolled back"}}); err != nil {
			return err
		}
		if _, _, err = tx.UpdateCollection(keep.ID, index.CollectionPatch{Name: ptr("changed")}); err != nil {
			return err
		}
		if a, err = tx.CreateAsset(index.NewAsset{Collection: c.ID, Name: "a", Hash: h, MediaType: "image/png"}); err != nil {
			return err
		}
		if u, err = tx.CreateUnit(index.NewUnit{Collection: c.ID, Name: "u", Hash: h, Links: []index.Link{{Target: a.ID}}}); err != nil {
			return err
		}
		// The transaction reads its own writes.
		if got, err := tx.Unit(e.ctx, index.Latest(u.ID)); err != nil || got.Name != "u" {
			e.t.Errorf("Unit inside the transaction = %+v, %v", got, err)
		}
		units, err := tx.Units(e.ctx, c.ID, index.ListOptions{})
		if err != nil || len(units.Items) != 1 {
			e.t.Errorf("Units inside the transaction = %d, %v", len(units.Items), err)
		}
		lb, err := tx.LinkedBy(e.ctx, a.ID, index.ListOptions{})
		if err != nil || len(lb.Items) != 1 {
			e.t.Errorf("LinkedBy inside the transaction = %d, %v", len(lb.Items), err)
		}
		if err := tx.PutIdempotency(index.IdempotencyRecord{Key: "k", Status: 201, ExpiresAt: e.clock.Peek().Add(time1d)}); err != nil {
			return err
		}
		if _, err := tx.Idempotency(e.ctx, "k"); err != nil {
			e.t.Errorf("Idempotency inside the transaction: %v", err)
		}
		return errBoom
	})
	e.wantErr("Update returns fn's error", err, errBoom)
	for _, id := range []uuid.UUID{c.ID, u.ID, a.ID} {
		_, err := e.s.Kind(e.ctx, id)
		e.wantErr("Kind of an entity created in a rolled back transaction", err, index.ErrNotFound)
	}
	_, err = e.s.Idempotency(e.ctx, "k")
	e.wantErr("Idempotency record of a rolled back transaction", err, index.ErrNotFound)
	got, err := e.s.Collection(e.ctx, keep.ID, 0)
	e.wantOK("Collection", err)
	e.wantCollection("a collection updated in a rolled back transaction", got, keep)
	cs := pages(e, "Collections", index.ListOptions{}, 0, func(o index.ListOptions) (index.Page[index.Collection], error) {
		return e.s.Collections(e.ctx, o)
	})
	e.wantIDs("Collections after a rollback", collectionIDs(cs), []uuid.UUID{keep.ID})
	if refs := e.referenced(); len(refs) != 0 {
		e.t.Fatalf("ReferencedHashes after a rollback = %v", shorts(refs))
	}
	// The names are free and the blob can be named.
	e.must("CreateUnit after a rollback", func(tx index.Tx) error {
		_, err := tx.CreateUnit(index.NewUnit{Collection: keep.ID, Name: "u", Hash: h})
		return err
	})
}

func testRollbackRuleError(e *env) {
	c := e.collection("c")
	holder := e.unit(c.ID, "taken")
	var fresh index.Unit
	h1, h2, h3 := e.blob(), e.blob(), e.blob()
	err := e.update(func(tx index.Tx) (err error) {
		if fresh, err = tx.CreateUnit(index.NewUnit{Collection: c.ID, Name: "fresh", Hash: h1}); err != nil {
			return err
		}
		if _, _, err = tx.CommitUnit(holder.ID, index.UnitChange{Hash: h2}, false); err != nil {
			return err
		}
		_, err = tx.CreateUnit(index.NewUnit{Collection: c.ID, Name: "taken", Hash: h3})
		return err
	})
	e.wantHolder("a taken name inside a larger transaction", err, holder.ID)
	_, err = e.s.Kind(e.ctx, fresh.ID)
	e.wantErr("a unit created before the failing call", err, index.ErrNotFound)
	e.wantUnit("a unit committed before the failing call", e.getUnit(index.Latest(holder.ID)), holder)
	e.wantOK("the name fresh is free", e.tryCreateUnit(c.ID, "fresh"))
}

func testCancelledContext(e *env) {
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	err := e.s.Update(ctx, func(tx index.Tx) error {
		_, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "cancelled"}})
		return err
	})
	if err == nil {
		e.t.Fatal("Update with a cancelled context succeeded")
	}
	cs, err := e.s.Collections(e.ctx, index.ListOptions{})
	e.wantOK("Collections", err)
	if len(cs.Items) != 0 {
		e.t.Fatal("Update with a cancelled context left a collection behind")
	}
}

func testClosed(e *env) {
	c := e.collection("c")
	e.wantOK("Ping", e.s.Ping(e.ctx))
	e.wantOK("Close", e.s.Close())
	h := e.unregistered()
	for what, err := range map[string]error{
		"Ping":   e.s.Ping(e.ctx),
		"Update": e.update(func(tx index.Tx) error { _, err := tx.CreateCollection(index.NewCollection{}); return err }),
		"Collection": func() error {
			_, err := e.s.Collection(e.ctx, c.ID, 0)
			return err
		}(),
		"Collections": func() error { _, err := e.s.Collections(e.ctx, index.ListOptions{}); return err }(),
		"Unit":        func() error { _, err := e.s.Unit(e.ctx, index.Latest(c.ID)); return err }(),
		"BeginBlob":   func() error { _, err := e.begin(h); return err }(),
		"FinishBlob":  e.finish(h, 1),
		"Blobs":       e.s.Blobs(e.ctx, func(index.Blob) error { return nil }),
		"ReferencedHashes": e.s.ReferencedHashes(e.ctx, func(cas.Hash) error {
			return nil
		}),
		"TryLockGC": func() error { _, err := e.s.TryLockGC(e.ctx); return err }(),
	} {
		e.wantErr(what+" on a closed store", err, index.ErrClosed)
	}
}
