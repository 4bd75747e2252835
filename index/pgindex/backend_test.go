package pgindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/testenv"
)

// Tests of what is particular to PostgreSQL: migrations, error
// translation, the lock protocols seen from two connections.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestMigrateTwice(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.NewDatabase(t)
	for i := range 2 {
		if err := Migrate(ctx, url); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	current, latest, err := SchemaVersion(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if current != latest || latest < 1 {
		t.Fatalf("schema version %d, binary's %d", current, latest)
	}
	s := openURL(t, url)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateConcurrently: replicas that start together migrate once (the
// advisory lock), and all of them start.
func TestMigrateConcurrently(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.NewDatabase(t)
	const replicas = 4
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { errs[i] = Migrate(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var applied, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	_, latest, err := SchemaVersion(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if applied != distinct || int64(applied) != latest {
		t.Fatalf("goose_db_version has %d rows for %d versions; want each of the %d once", applied, distinct, latest)
	}
}

func openURL(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(testCtx(t), url, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestErrorsHidePassword: a URL's password never shows in an error.
func TestErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const secret = "s3cr3t-pa55"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, url := range []string{
		"postgres://alice:" + secret + "@" + addr + "/db?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=" + addr[strings.LastIndex(addr, ":")+1:] + " user=alice password=" + secret + " dbname=db sslmode=disable connect_timeout=2",
		"postgres://alice:" + secret + "@" + addr + "/db?sslmode=disable&pool_max_conns=nope",
		"postgres://alice:" + secret + "@[::1/db",
	} {
		_, err := Open(ctx, url, index.Options{})
		if err == nil {
			t.Fatalf("Open of a server that does not exist succeeded")
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the password: %v", err)
		}
		if err := Migrate(ctx, url); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if got := RedactURL("dial postgres://bob:" + secret + "@h/db failed"); strings.Contains(got, secret) {
		t.Fatalf("RedactURL = %q", got)
	}
	if got := RedactURL("cannot parse `user=bob password=" + secret + " host=h`"); strings.Contains(got, secret) {
		t.Fatalf("RedactURL = %q", got)
	}
}

func TestTranslate(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	for _, tc := range []struct {
		err      error
		sentinel error
		retry    bool
	}{
		{pg("23505"), index.ErrConflict, false},
		{pg("23503"), index.ErrConflict, false},
		{pg("40001"), index.ErrUnavailable, true},
		{pg("40P01"), index.ErrUnavailable, true},
		{pg("08006"), index.ErrUnavailable, false},
		{pg("57P01"), index.ErrUnavailable, false},
		{pg("53300"), index.ErrUnavailable, false},
		{pgx.ErrNoRows, index.ErrNotFound, false},
		{io.ErrUnexpectedEOF, index.ErrUnavailable, false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, index.ErrUnavailable, false},
		{context.DeadlineExceeded, index.ErrUnavailable, false},
	} {
		got := translate(tc.err)
		if !errors.Is(got, tc.sentinel) {
			t.Errorf("translate(%v) = %v, want %v", tc.err, got, tc.sentinel)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("translate(%v) lost the native error", tc.err)
		}
		if retryable(got) != tc.retry {
			t.Errorf("retryable(translate(%v)) = %v", tc.err, !tc.retry)
		}
	}
	for _, err := range []error{pg("22001"), errors.New("x"), context.Canceled} {
		got := translate(err)
		for _, s := range []error{index.ErrConflict, index.ErrUnavailable, index.ErrNotFound} {
			if errors.Is(got, s) {
				t.Errorf("translate(%v) = %v: is %v", err, got, s)
			}
		}
	}
	if translate(nil) != nil {
		t.Error("translate(nil) != nil")
	}
}

// fixture is a store with a collection, a unit and live blobs.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	s    *Store
	coll uuid.UUID
	unit uuid.UUID
	seq  atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, ctx: testCtx(t), s: openTest(t, index.Options{})}
	h := f.blob()
	f.must(func(tx index.Tx) error {
		c, err := tx.CreateCollection(index.NewCollection{})
		if err != nil {
			return err
		}
		u, err := tx.CreateUnit(index.NewUnit{Collection: c.ID, Hash: h})
		f.coll, f.unit = c.ID, u.ID
		return err
	})
	return f
}

func (f *fixture) blob() cas.Hash {
	f.t.Helper()
	h := cas.Sum(fmt.Appendf(nil, "%s %d", f.t.Name(), f.seq.Add(1)))
	_, tk, err := f.s.BeginBlob(f.ctx, h)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.FinishBlob(f.ctx, h, 100, tk); err != nil {
		f.t.Fatal(err)
	}
	return h
}

func (f *fixture) must(fn func(tx index.Tx) error) {
	f.t.Helper()
	if err := f.s.Update(f.ctx, fn); err != nil {
		f.t.Fatal(err)
	}
}

// waiting reports whether ch stays empty for a moment: the call behind it
// is blocked on a lock.
func waiting[T any](ch <-chan T) bool {
	select {
	case <-ch:
		return false
	case <-time.After(300 * time.Millisecond):
		return true
	}
}

// TestClaimWaitsForCommit: a claim that meets a commit naming the blob
// waits for it and then sees the new version (keeps the blob); a commit
// that meets a claim fails with ErrBlobMissing; a commit that rolls back
// leaves the blob to the claim. Both for a unit's new version and for a
// new unit.
func TestClaimWaitsForCommit(t *testing.T) {
	f := newFixture(t)
	cutoff := time.Now().Add(time.Hour) // every lease is older
	// A new version of a unit, and a new unit.
	writes := []struct {
		name  string
		write func(tx index.Tx, h cas.Hash) error
	}{
		{"commit", func(tx index.Tx, h cas.Hash) error {
			_, _, err := tx.CommitUnit(f.unit, index.UnitChange{Hash: h}, false)
			return err
		}},
		{"create", func(tx index.Tx, h cas.Hash) error {
			_, err := tx.CreateUnit(index.NewUnit{Collection: f.coll, Hash: h, Links: []index.Link{{Target: f.unit, Kind: index.KindUnit}}})
			return err
		}},
	}
	for _, w := range writes {
		for _, commit := range []bool{true, false} {
			h := f.blob()
			inside, release := make(chan struct{}), make(chan struct{})
			updated := make(chan error, 1)
			go func() {
				first := true
				updated <- f.s.Update(f.ctx, func(tx index.Tx) error {
					if err := w.write(tx, h); err != nil {
						return err
					}
					if first {
						first = false
						close(inside)
						<-release
					}
					if !commit {
						return io.EOF
					}
					return nil
				})
			}()
			<-inside
			claimed := make(chan []index.Blob, 1)
			go func() {
				bs, err := f.s.ClaimBlobs(f.ctx, "test-sweep", []cas.Hash{h}, cutoff)
				if err != nil {
					t.Errorf("ClaimBlobs: %v", err)
				}
				claimed <- bs
			}()
			if !waiting(claimed) {
				t.Fatalf("%s: ClaimBlobs did not wait for the transaction naming the blob", w.name)
			}
			close(release)
			if err := <-updated; commit && err != nil || !commit && err != io.EOF {
				t.Fatalf("%s: Update: %v", w.name, err)
			}
			bs := <-claimed
			b, err := f.s.Blob(f.ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if commit && (len(bs) != 0 || b.State != index.BlobLive) {
				t.Fatalf("%s committed: claimed %d, state %v; want 0, live", w.name, len(bs), b.State)
			}
			if !commit && (len(bs) != 1 || b.State != index.BlobDeleting) {
				t.Fatalf("%s rolled back: claimed %d, state %v; want 1, deleting", w.name, len(bs), b.State)
			}
		}
		// Claimed first: the write fails and names the hash.
		h := f.blob()
		if bs, err := f.s.ClaimBlobs(f.ctx, "test-sweep", []cas.Hash{h}, cutoff); err != nil || len(bs) != 1 {
			t.Fatalf("ClaimBlobs = %d, %v", len(bs), err)
		}
		err := f.s.Update(f.ctx, func(tx index.Tx) error { return w.write(tx, h) })
		var bm *index.BlobMissingError
		if !errors.As(err, &bm) || bm.Hash != h {
			t.Fatalf("%s of a claimed blob: %v", w.name, err)
		}
	}
}

// TestDeadlockRetried: two transactions taking two units in opposite order
// deadlock; PostgreSQL aborts one (40P01) and Update runs it again.
func TestDeadlockRetried(t *testing.T) {
	f := newFixture(t)
	var other uuid.UUID
	h := f.blob()
	f.must(func(tx index.Tx) error {
		u, err := tx.CreateUnit(index.NewUnit{Collection: f.coll, Hash: h})
		other = u.ID
		return err
	})
	var runs atomic.Int64
	var barrier sync.WaitGroup
	barrier.Add(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			first, second := f.unit, other
			if i == 1 {
				first, second = other, f.unit
			}
			h1, h2 := f.blob(), f.blob()
			attempt := 0
			errs[i] = f.s.Update(f.ctx, func(tx index.Tx) error {
				runs.Add(1)
				attempt++
				if _, _, err := tx.CommitUnit(first, index.UnitChange{Hash: h1}, false); err != nil {
					return err
				}
				if attempt == 1 {
					barrier.Done()
					barrier.Wait()
				}
				_, _, err := tx.CommitUnit(second, index.UnitChange{Hash: h2}, false)
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if runs.Load() < 3 {
		t.Fatalf("fn ran %d times: no transaction was retried", runs.Load())
	}
	for _, id := range []uuid.UUID{f.unit, other} {
		u, err := f.s.Unit(f.ctx, index.Latest(id))
		if err != nil || u.Version != 3 {
			t.Fatalf("unit %s: v%d, %v; want v3", id, u.Version, err)
		}
	}
}

// TestGCLockAcrossStores: two stores over one database (two replicas)
// share the sweep lock; Close releases a lock still held.
func TestGCLockAcrossStores(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.NewDatabase(t)
	a, b := openURL(t, url), openURL(t, url)
	unlock, err := a.TryLockGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLockGC(ctx); !errors.Is(err, index.ErrConflict) {
		t.Fatalf("second replica: %v, want ErrConflict", err)
	}
	if _, err := a.TryLockGC(ctx); !errors.Is(err, index.ErrConflict) {
		t.Fatalf("same replica again: %v, want ErrConflict", err)
	}
	unlock()
	unlock() // idempotent
	unlockB, err := b.TryLockGC(ctx)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	b.Close() // with the lock held
	_ = unlockB
	if unlock, err = a.TryLockGC(ctx); err != nil {
		t.Fatalf("after the holder closed: %v", err)
	}
	unlock()
}

// TestGCLockLoss: CheckGCLock holds while the lock's session lives and
// fails once the session is terminated (the lock is then free for another
// replica) or the lock released, so a sweep can stop before deleting bytes.
func TestGCLockLoss(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.NewDatabase(t)
	a, b := openURL(t, url), openURL(t, url)
	var _ gc.LockChecker = a
	if err := a.CheckGCLock(ctx); err == nil {
		t.Fatal("CheckGCLock without the lock: nil")
	}
	unlock, err := a.TryLockGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := a.CheckGCLock(ctx); err != nil {
		t.Fatalf("CheckGCLock while held: %v", err)
	}
	// Another session kills the holder's backend, as a failover or an
	// operator would, and waits (up to 10 s) until it is gone with its
	// lock: terminating only signals the backend.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed bool
	err = conn.QueryRow(ctx, `SELECT pg_terminate_backend(pid, 10000) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminate the lock holder: %v %v", killed, err)
	}
	if err := a.CheckGCLock(ctx); err == nil {
		t.Fatal("CheckGCLock after the holder's session was terminated: nil")
	}
	// The lock is free: another replica takes it.
	wantLockFree(t, b, "after the holder's session died")
}

// TestLinkSetDroppedWhileReused: a draft replacement drops its old link
// set while another transaction stores a version with that same set; the
// set survives (or is stored again) and both versions keep their links.
func TestLinkSetDroppedWhileReused(t *testing.T) {
	f := newFixture(t)
	var target uuid.UUID
	h := f.blob()
	f.must(func(tx index.Tx) error {
		a, err := tx.CreateAsset(index.NewAsset{Collection: f.coll, Hash: h, MediaType: "image/png"})
		target = a.ID
		return err
	})
	links := []index.Link{{Target: target, Kind: index.KindAsset}}
	for round := range 2 {
		// The unit's draft alone uses the set.
		f.must(func(tx index.Tx) error {
			_, _, err := tx.CommitUnit(f.unit, index.UnitChange{Hash: f.blob(), Links: &links}, true)
			return err
		})
		var other uuid.UUID
		inside, release := make(chan struct{}), make(chan struct{})
		dropped := make(chan error, 1)
		// Transaction 1 deletes the draft: its cleanup locks the set.
		go func() {
			first := true
			dropped <- f.s.Update(f.ctx, func(tx index.Tx) error {
				if err := tx.DeleteUnitDraft(f.unit); err != nil {
					return err
				}
				// Reading flushes the queued cleanup: the set is locked.
				if _, err := tx.Kind(f.ctx, f.unit); err != nil {
					return err
				}
				if first {
					first = false
					close(inside)
					<-release
				}
				if round == 1 {
					return io.EOF // roll back: the set stays
				}
				return nil
			})
		}()
		<-inside
		created := make(chan error, 1)
		hb := f.blob()
		go func() {
			created <- f.s.Update(f.ctx, func(tx index.Tx) error {
				u, err := tx.CreateUnit(index.NewUnit{Collection: f.coll, Hash: hb, Links: links})
				other = u.ID
				return err
			})
		}()
		if !waiting(created) {
			t.Fatal("storing a set being dropped did not wait")
		}
		close(release)
		if err := <-dropped; round == 0 && err != nil || round == 1 && err != io.EOF {
			t.Fatalf("DeleteUnitDraft: %v", err)
		}
		if err := <-created; err != nil {
			t.Fatalf("CreateUnit: %v", err)
		}
		u, err := f.s.Unit(f.ctx, index.Latest(other))
		if err != nil || len(u.Links) != 1 || u.Links[0] != links[0] {
			t.Fatalf("round %d: unit with the reused set: %+v, %v", round, u.Links, err)
		}
		if n, err := f.s.LinkRowCount(f.ctx); err != nil || n != 1 {
			t.Fatalf("round %d: %d link rows, %v; want 1", round, n, err)
		}
		if round == 1 {
			f.must(func(tx index.Tx) error { return tx.DeleteUnitDraft(f.unit) })
		}
		f.must(func(tx index.Tx) error { return tx.DeleteEntity(other) })
		if n, err := f.s.LinkRowCount(f.ctx); err != nil || n != 0 {
			t.Fatalf("round %d: %d link rows after the last user went, %v; want 0", round, n, err)
		}
	}
}

// TestPipelinedErrorAbortsCommit: a queued write that fails makes Update
// fail (nothing is committed), even when fn returned nil.
func TestPipelinedErrorAbortsCommit(t *testing.T) {
	f := newFixture(t)
	err := f.s.update(f.ctx, func(tx *tx) error {
		if _, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: "lost"}}); err != nil {
			return err
		}
		tx.write(`INSERT INTO link_sets (id, size) VALUES ('\x00'::bytea, 0)`) // violates the CHECK
		return nil
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23514" {
		t.Fatalf("Update = %v, want the check violation", err)
	}
	cs, err := f.s.Collections(f.ctx, index.ListOptions{})
	if err != nil || len(cs.Items) != 1 {
		t.Fatalf("Collections = %d, %v; want only the fixture's", len(cs.Items), err)
	}
}

// TestEverLinkedMarkedOnce: the first version that links an asset marks it
// as ever linked; later ones, whose locking read of the targets sees it
// marked, queue no update of it.
func TestEverLinkedMarkedOnce(t *testing.T) {
	f := newFixture(t)
	var asset uuid.UUID
	f.must(func(tx index.Tx) error {
		a, err := tx.CreateAsset(index.NewAsset{Collection: f.coll, Hash: f.blob(), MediaType: "image/png"})
		asset = a.ID
		return err
	})
	links := []index.Link{{Target: asset, Kind: index.KindAsset}, {Target: f.unit, Kind: index.KindUnit}}
	everLinkedQueued := func(t *tx) bool {
		for _, q := range t.pending {
			if q.SQL == sqlEverLinked {
				return true
			}
		}
		return false
	}
	for i, want := range []bool{true, false, false} {
		h := f.blob()
		err := f.s.update(f.ctx, func(tx *tx) error {
			if _, err := tx.CreateUnit(index.NewUnit{Collection: f.coll, Hash: h, Links: links}); err != nil {
				return err
			}
			if got := everLinkedQueued(tx); got != want {
				t.Errorf("create %d: ever-linked update queued %v, want %v", i, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var linked bool
		if err := f.s.pool.QueryRow(f.ctx, `SELECT ever_linked FROM entities WHERE id = $1`, asset).Scan(&linked); err != nil || !linked {
			t.Fatalf("create %d: ever_linked %v, %v", i, linked, err)
		}
	}
}

// wantLockFree takes the sweep lock through s (another replica) and gives
// it back.
func wantLockFree(t *testing.T, s *Store, when string) {
	t.Helper()
	unlock, err := s.TryLockGC(testCtx(t))
	if err != nil {
		t.Fatalf("the sweep lock %s: %v", when, err)
	}
	unlock()
}

// TestGCLockSurvivesCancelledChecks: a sweep cancelled while CheckGCLock
// waits for its round trip keeps the lock's session (pgx closes a
// connection whose query is cancelled mid-flight), and the lock is free
// for another replica the moment unlock returns.
func TestGCLockSurvivesCancelledChecks(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.NewDatabase(t)
	a, b := openURL(t, url), openURL(t, url)
	unlock, err := a.TryLockGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(i%20)*20*time.Microsecond)
		_ = a.CheckGCLock(cctx)
		cancel()
	}
	if err := a.CheckGCLock(ctx); err != nil {
		t.Fatalf("after cancelled checks: %v", err)
	}
	unlock()
	wantLockFree(t, b, "right after unlock")
}

// TestGCUnlockOfLostSession: when the lock's connection is already closed
// (unlock cannot send pg_advisory_unlock), unlock returns once the server
// has ended the session, so the lock is free for the next sweep at once.
func TestGCUnlockOfLostSession(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.NewDatabase(t)
	a, b := openURL(t, url), openURL(t, url)
	for i := range 5 {
		unlock, err := a.TryLockGC(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		a.mu.Lock()
		for l := range a.locks {
			_ = l.conn.Conn().Close(ctx)
		}
		a.mu.Unlock()
		unlock()
		wantLockFree(t, b, fmt.Sprintf("round %d, right after unlock", i))
	}
}
