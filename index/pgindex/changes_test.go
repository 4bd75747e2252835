package pgindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/testenv"
)

// hold is one writer held open by testAfterChange once its change row is
// written.
type hold struct {
	wrote   chan struct{}
	release chan struct{}
}

type holdKey struct{}

// TestChangesCommitOutOfOrder holds 8 writers' transactions open after they
// wrote their change rows (in the order they began, so their xids rise),
// then lets them commit in a shuffled order. A follower that reads after
// every commit must never see a change before one that began earlier (a
// naive "seq > cursor" feed would, and would then skip it), and in the end
// sees each once, in the order they began.
func TestChangesCommitOutOfOrder(t *testing.T) {
	testAfterChange = func(ctx context.Context) {
		if h, ok := ctx.Value(holdKey{}).(*hold); ok {
			h.wrote <- struct{}{}
			<-h.release
		}
	}
	t.Cleanup(func() { testAfterChange = nil })
	s := openTest(t, index.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	head, err := s.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	ids := make([]uuid.UUID, writers)
	holds := make([]*hold, writers)
	acked := make([]chan error, writers)
	for i := range writers {
		h := &hold{wrote: make(chan struct{}), release: make(chan struct{})}
		holds[i], acked[i] = h, make(chan error, 1)
		go func() {
			acked[i] <- s.Update(context.WithValue(ctx, holdKey{}, h), func(tx index.Tx) error {
				c, err := tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: fmt.Sprint(i)}})
				ids[i] = c.ID
				return err
			})
		}()
		select {
		case <-h.wrote: // its xid is taken: the next writer's is larger
		case <-ctx.Done():
			t.Fatalf("writer %d never wrote its change", i)
		}
	}

	order := rand.New(rand.NewPCG(16, 7)).Perm(writers)
	if order[0] == 0 {
		order[0], order[1] = order[1], order[0] // commit out of order first
	}
	var seen []index.FeedChange
	after := head
	read := func(when string) {
		t.Helper()
		for range 100 {
			p, err := s.Changes(ctx, index.ChangeQuery{After: after, Limit: 3})
			if err != nil {
				t.Fatalf("%s: Changes: %v", when, err)
			}
			seen = append(seen, p.Items...)
			after = p.NextCursor
			if len(p.Items) < 3 {
				break
			}
		}
		for k, c := range seen {
			if k >= writers || c.ID != ids[k] {
				t.Fatalf("%s: change %d is collection %s, want writer %d's (%v): the feed left a gap or repeated", when, k, c.ID, k, ids)
			}
		}
	}
	for n, i := range order {
		close(holds[i].release)
		if err := <-acked[i]; err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		read(fmt.Sprintf("after %d commits (writer %d last)", n+1, i))
		// Writers that began before every still-open one are visible once
		// committed; nothing after the first open one is.
		firstOpen := writers
		for _, j := range order[n+1:] {
			firstOpen = min(firstOpen, j)
		}
		if len(seen) > firstOpen {
			t.Fatalf("after %d commits: %d changes listed while writer %d is open", n+1, len(seen), firstOpen)
		}
	}
	// Every writer committed: a follower may have to wait for nothing else.
	p, err := index.WaitChanges(ctx, s, index.ChangeQuery{After: after}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, p.Items...)
	after = p.NextCursor
	if len(seen) != writers {
		t.Fatalf("%d changes listed, want %d", len(seen), writers)
	}
	read("at the end")

	// A transaction begun after every acknowledgement comes after them all.
	testAfterChange = nil
	var late index.Collection
	if err := s.Update(ctx, func(tx index.Tx) (err error) {
		late, err = tx.CreateCollection(index.NewCollection{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, err = index.WaitChanges(ctx, s, index.ChangeQuery{After: after}, 10*time.Second)
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != late.ID {
		t.Fatalf("after the last writer: %v, %v; want the late collection alone", p.Items, err)
	}
}

// twoStores opens two Stores over one fresh database: two replicas.
func twoStores(ctx context.Context, t *testing.T) (a, b *Store) {
	t.Helper()
	url := testenv.NewDatabase(t)
	open := func() *Store {
		s, err := Open(ctx, url, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open()
}

// wakeOnCommit starts a follower waiting on b after cursor after, commits a
// new collection through a, and returns the page the follower got (failing
// unless it is that collection alone) and how long after the commit's
// acknowledgement it woke.
func wakeOnCommit(ctx context.Context, t *testing.T, a, b *Store, after, name string) (index.ChangePage, time.Duration) {
	t.Helper()
	type result struct {
		p   index.ChangePage
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		p, err := index.WaitChanges(ctx, b, index.ChangeQuery{After: after}, 30*time.Second)
		done <- result{p, err, time.Now()}
	}()
	var c index.Collection
	if err := a.Update(ctx, func(tx index.Tx) (err error) {
		c, err = tx.CreateCollection(index.NewCollection{CollectionFields: index.CollectionFields{Name: name}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ack := time.Now()
	r := <-done
	if r.err != nil || len(r.p.Items) != 1 || r.p.Items[0].ID != c.ID {
		t.Fatalf("commit of %q: the follower got %v, %v; want the new collection", name, r.p.Items, r.err)
	}
	return r.p, max(0, r.at.Sub(ack))
}

// TestChangesWakeAcrossStores: two Stores over one database stand for two
// replicas; a follower waiting on one wakes within a second of a commit
// through the other (LISTEN/NOTIFY), each time.
func TestChangesWakeAcrossStores(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := twoStores(ctx, t)
	after, err := b.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for i := range 5 {
		b.WatchChanges() // the listener runs before the commit
		p, took := wakeOnCommit(ctx, t, a, b, after, fmt.Sprint(i))
		worst = max(worst, took)
		after = p.NextCursor
	}
	if worst > time.Second {
		t.Errorf("a follower woke %v after a commit through another store, want within 1s", worst)
	}
	t.Logf("slowest wake across stores: %v", worst)
}

// TestChangesWakeWithoutNotification: a notification can be lost (a
// replica killed between its commit and its notify); a follower waiting on
// another replica still sees the commit within about a second, because
// the listener wakes its followers every lookInterval.
func TestChangesWakeWithoutNotification(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := twoStores(ctx, t)
	a.testNoNotify = true
	after, err := b.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.WatchChanges() // the listener runs before the commit
	_, took := wakeOnCommit(ctx, t, a, b, after, "unannounced")
	if took > lookInterval+500*time.Millisecond {
		t.Errorf("the follower woke %v after an unannounced commit, want within %v", took, lookInterval)
	}
}

// TestChangesListenerReconnects: when the listening session is cut (its
// backend terminated, as in a failover), the Store reconnects, and a
// follower waiting through it still wakes on the next commit elsewhere.
func TestChangesListenerReconnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, b := twoStores(ctx, t)
	after, err := b.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listening := func() int {
		var n int
		if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN `+changesChannel+`'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitListening := func() {
		t.Helper()
		for range 3000 {
			if listening() == 1 {
				return
			}
			select {
			case <-b.WatchChanges(): // the listener wakes everyone once it listens
			case <-time.After(10 * time.Millisecond):
			}
		}
		t.Fatal("the listener did not connect")
	}
	b.WatchChanges()
	waitListening()
	if _, err := a.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+changesChannel+`'`); err != nil {
		t.Fatal(err)
	}
	waitListening()
	_, lag := wakeOnCommit(ctx, t, a, b, after, "after the reconnection")
	if lag > time.Second {
		t.Errorf("woke %v after the commit, want within 1s", lag)
	}
}

// TestSessionsRunWithoutJIT: the Store's sessions run with jit off (the
// feed's read was JIT-compiled for 333 ms once the feed held 10,000
// changes), unless the URL asks for it.
func TestSessionsRunWithoutJIT(t *testing.T) {
	url := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct{ url, want string }{
		{url, "off"},
		{url + sep(url) + "jit=on", "on"},
	} {
		s, err := Open(ctx, c.url, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.pool.QueryRow(ctx, "SHOW jit").Scan(&got)
		s.Close()
		if err != nil || got != c.want {
			t.Errorf("jit in a session of %q: %q, %v; want %q", c.url, got, err, c.want)
		}
	}
}

// sep is what joins a parameter to url.
func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}

// TestCommitClock: the commit clock reads what a feed read saw while
// nothing ends, and moves with a commit, also one of a transaction that
// was in flight during the feed read.
func TestCommitClock(t *testing.T) {
	s := openTest(t, index.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	head, err := s.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Quiet: the clock stays (an autoanalyze of this database may end a
	// transaction now and then).
	for i := 0; ; i++ {
		p, err := s.Changes(ctx, index.ChangeQuery{After: head})
		if err != nil {
			t.Fatal(err)
		}
		now, err := s.CommitClock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.Clock != "" && now == p.Clock {
			break
		}
		if i == 100 {
			t.Fatalf("the clock never reads what the feed read saw: %q, then %q", p.Clock, now)
		}
		time.Sleep(50 * time.Millisecond)
	}
	commit := func() {
		t.Helper()
		if err := s.Update(ctx, func(tx index.Tx) error {
			_, err := tx.CreateCollection(index.NewCollection{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.Changes(ctx, index.ChangeQuery{After: head})
	if err != nil {
		t.Fatal(err)
	}
	commit()
	if now, err := s.CommitClock(ctx); err != nil || now == p.Clock {
		t.Fatalf("the clock after a commit: %q (the feed read saw %q), %v", now, p.Clock, err)
	}
	// A transaction that holds the newest xid, in flight while the feed is
	// read (its xid is not even in the snapshot's in-progress list), then
	// commits without writing a change.
	open, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(ctx)
	if _, err := open.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	if p, err = s.Changes(ctx, index.ChangeQuery{After: head}); err != nil {
		t.Fatal(err)
	}
	if err := open.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if now, err := s.CommitClock(ctx); err != nil || now == p.Clock {
		t.Fatalf("the clock after a commit in flight during the feed read: %q (the read saw %q), %v", now, p.Clock, err)
	}
}
