package refs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/cas/dirstore"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/index/pgindex"
	"github.com/blockstore/blockstore/internal/testenv"
)

// countingIndex is a PostgreSQL index that counts the OLX reads that reach
// it.
type countingIndex struct {
	*pgindex.Store
	reads atomic.Int64
}

func (c *countingIndex) UnitInline(ctx context.Context, ref index.Ref) (index.Unit, []byte, error) {
	c.reads.Add(1)
	return c.Store.UnitInline(ctx, ref)
}

// replicas returns n Services with the latest-version cache over one
// PostgreSQL database and one blob directory: n replicas of a deployment.
func replicas(t *testing.T, n int) ([]*Service, []*countingIndex) {
	t.Helper()
	return replicasWithFeed(t, n, func(pg *pgindex.Store) index.ChangeFeed { return pg })
}

// replicasWithFeed is replicas with the latest-version cache reading the
// change feed that feed makes of each replica's index.
func replicasWithFeed(t *testing.T, n int, feed func(*pgindex.Store) index.ChangeFeed) ([]*Service, []*countingIndex) {
	t.Helper()
	url := testenv.NewDatabase(t)
	ctx := context.Background()
	backend, err := dirstore.Open(t.TempDir(), dirstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := cas.New(backend, cas.Options{})
	t.Cleanup(func() { blobs.Close() })
	var (
		svcs []*Service
		idxs []*countingIndex
	)
	for range n {
		pg, err := pgindex.Open(ctx, url, index.Options{})
		if err != nil {
			t.Fatal(err)
		}
		idx := &countingIndex{Store: pg}
		svc := New(idx, blobs, Options{LatestFeed: feed(pg)})
		t.Cleanup(func() { pg.Close() })
		svcs, idxs = append(svcs, svc), append(idxs, idx)
	}
	return svcs, idxs
}

func createUnit(t *testing.T, s *Service, coll uuid.UUID, olx string) index.Unit {
	t.Helper()
	var u index.Unit
	if _, err := s.CreateUnit(context.Background(), NewUnit{Collection: coll, OLX: []byte(olx)}, Request[index.Unit]{Render: asIs(&u)}); err != nil {
		t.Fatal(err)
	}
	return u
}

func commitOLX(t *testing.T, s *Service, id uuid.UUID, olx string) index.Unit {
	t.Helper()
	var u index.Unit
	b := []byte(olx)
	if _, err := s.CommitUnit(context.Background(), id, UnitChange{OLX: &b}, Request[index.Unit]{Render: asIs(&u)}); err != nil {
		t.Fatal(err)
	}
	return u
}

// readWithin reads the OLX of id's latest version through s until it is
// want, and returns how long that took (failing after limit).
func readWithin(t *testing.T, s *Service, id uuid.UUID, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, b, err := s.UnitOLX(context.Background(), index.Latest(id))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("unit %s still reads %q after %v, want %q", id, b, limit, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLatestCache: on PostgreSQL, repeated OLX reads of a unit's latest
// version are answered from memory; a commit through the same Service is
// read back at once, and so is one through another replica.
func TestLatestCache(t *testing.T) {
	ctx := context.Background()
	svcs, idxs := replicas(t, 2)
	a, b := svcs[0], svcs[1]
	var c index.Collection
	if _, err := a.CreateCollection(ctx, index.NewCollection{}, Request[index.Collection]{Render: asIs(&c)}); err != nil {
		t.Fatal(err)
	}
	u := createUnit(t, a, c.ID, "<html>v1</html>")

	// The follower catches up, then reads stop reaching the index.
	readWithin(t, a, u.ID, "<html>v1</html>", 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := idxs[0].reads.Load()
		if _, _, err := a.UnitOLX(ctx, index.Latest(u.ID)); err != nil {
			t.Fatal(err)
		}
		if idxs[0].reads.Load() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("OLX reads of the latest version still reach the index after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := idxs[0].reads.Load()
	for range 100 { // one at a time: the index sees at most the held ones
		_, got, err := a.UnitOLX(ctx, index.Latest(u.ID))
		if err != nil || string(got) != "<html>v1</html>" {
			t.Fatalf("cached read: %q, %v", got, err)
		}
	}
	if n := idxs[0].reads.Load() - before; n > 10 {
		t.Fatalf("100 cached reads reached the index %d times", n)
	}
	// Numbered versions are not cached, and read the index.
	if _, got, err := a.UnitOLX(ctx, index.Ref{ID: u.ID, Version: 1}); err != nil || string(got) != "<html>v1</html>" {
		t.Fatalf("version 1: %q, %v", got, err)
	}

	// Read-your-writes through the same Service: no wait at all.
	commitOLX(t, a, u.ID, "<html>v2</html>")
	if _, got, err := a.UnitOLX(ctx, index.Latest(u.ID)); err != nil || string(got) != "<html>v2</html>" {
		t.Fatalf("right after a commit through the same Service: %q, %v", got, err)
	}

	// A commit through another replica, while a's cache holds the version
	// before: the next read through a sees it, without waiting.
	for i := 3; i < 8; i++ {
		want := fmt.Sprintf("<html>v%d</html>", i)
		for range 3 { // cached
			if _, _, err := a.UnitOLX(ctx, index.Latest(u.ID)); err != nil {
				t.Fatal(err)
			}
		}
		commitOLX(t, b, u.ID, want)
		if _, got, err := a.UnitOLX(ctx, index.Latest(u.ID)); err != nil || string(got) != want {
			t.Fatalf("right after a commit through another replica: %q, %v; want %q", got, err, want)
		}
	}

	// Deleting the unit through the other replica: the cached version goes.
	if err := b.DeleteUnit(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, got, err := a.UnitOLX(ctx, index.Latest(u.ID)); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("a unit deleted through another replica: %q, %v; want not found", got, err)
	}

	// Concurrent readers share feed reads: many reads, few questions.
	u2 := createUnit(t, b, c.ID, "<html>shared</html>")
	readWithin(t, a, u2.ID, "<html>shared</html>", time.Second)
	var wg sync.WaitGroup
	before = idxs[0].reads.Load()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, got, err := a.UnitOLX(ctx, index.Latest(u2.ID)); err != nil || string(got) != "<html>shared</html>" {
					t.Errorf("concurrent cached read: %q, %v", got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// A feed read that finds a change held back (an autoanalyze holds an
	// xid in this database) sends its readers to the index: a few may go.
	if n := idxs[0].reads.Load() - before; n > 80 {
		t.Fatalf("800 concurrent cached reads reached the index %d times", n)
	}
}

// TestLatestCacheRaces: an index read that began before an invalidation
// does not put its (possibly old) answer in the cache, however long ago the
// invalidation was pruned from memory.
func TestLatestCacheRaces(t *testing.T) {
	c := newLatestCache(nil, nil)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	id := uuid.New()
	old := index.Unit{}
	old.ID, old.Version = id, 1

	since := c.begin()
	c.invalidate(id) // a commit's change arrives while the read is out
	c.put(old, since, now)
	if _, ok := c.get(id); ok {
		t.Fatal("a read that began before an invalidation was cached")
	}
	since = c.begin()
	c.clear()
	c.put(old, since, now)
	if _, ok := c.get(id); ok {
		t.Fatal("a read that began before a clear was cached")
	}
	since = c.begin()
	c.put(old, since, now)
	if u, ok := c.get(id); !ok || u.Version != 1 {
		t.Fatalf("a read without invalidations was not cached: %+v, %v", u, ok)
	}
	// An invalidation is remembered long enough for the slowest read kept.
	since = c.begin()
	c.invalidate(id)
	now = now.Add(latestMaxRead)
	c.invalidate(uuid.New()) // prunes what is older than latestRecentFor
	c.put(old, since, now.Add(-latestMaxRead))
	if _, ok := c.get(id); ok {
		t.Fatal("a pruned invalidation let an old read in")
	}
	// A read slower than latestMaxRead is not kept.
	since = c.begin()
	c.put(old, since, now.Add(-latestMaxRead-time.Millisecond))
	if _, ok := c.get(id); ok {
		t.Fatal("a read slower than latestMaxRead was kept")
	}
}

// countingFeed is a PostgreSQL change feed that counts its page reads.
type countingFeed struct {
	*pgindex.Store
	pages atomic.Int64
}

func (f *countingFeed) Changes(ctx context.Context, q index.ChangeQuery) (index.ChangePage, error) {
	f.pages.Add(1)
	return f.Store.Changes(ctx, q)
}

// TestLatestCacheQuietFeed: while nothing is committed, a cached read reads
// the write clock and not the feed; a commit through another replica moves
// the clock, and the next read sees it.
func TestLatestCacheQuietFeed(t *testing.T) {
	ctx := context.Background()
	var feeds []*countingFeed
	svcs, _ := replicasWithFeed(t, 2, func(pg *pgindex.Store) index.ChangeFeed {
		f := &countingFeed{Store: pg}
		feeds = append(feeds, f)
		return f
	})
	a, b := svcs[0], svcs[1]
	var c index.Collection
	if _, err := b.CreateCollection(ctx, index.NewCollection{}, Request[index.Collection]{Render: asIs(&c)}); err != nil {
		t.Fatal(err)
	}
	u := createUnit(t, b, c.ID, "<html>v1</html>")
	readWithin(t, a, u.ID, "<html>v1</html>", 10*time.Second)

	before := feeds[0].pages.Load()
	for range 100 {
		if _, got, err := a.UnitOLX(ctx, index.Latest(u.ID)); err != nil || string(got) != "<html>v1</html>" {
			t.Fatalf("cached read: %q, %v", got, err)
		}
	}
	// Background work of the server (autovacuum, checkpoints) may move
	// the clock a few times.
	if n := feeds[0].pages.Load() - before; n > 20 {
		t.Fatalf("100 reads of a quiet database read the feed %d times", n)
	}
	for i := 2; i < 6; i++ {
		want := fmt.Sprintf("<html>v%d</html>", i)
		commitOLX(t, b, u.ID, want)
		if _, got, err := a.UnitOLX(ctx, index.Latest(u.ID)); err != nil || string(got) != want {
			t.Fatalf("right after a commit through another replica: %q, %v; want %q", got, err, want)
		}
	}
}
