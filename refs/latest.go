package refs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/backoff"
)

// The latest-version cache: the latest published version of the units whose
// OLX is read by uuid (GET /units/{uuid}/olx), kept in memory on engines
// where every read is a round trip to a database (PostgreSQL). Combined
// with the blob cache (bytes by hash, which never change), a repeated OLX
// read touches neither the database nor the bucket.
//
// It stays true by following the change feed, the record of every commit
// through every replica:
//   - A write through this Service forgets the entities it touched before
//     it returns (touchingTx), so a client reads its own writes.
//   - A commit through another replica (or another process: a sweep, gc)
//     is forgotten when the follower reads its change: woken by the feed's
//     notification, a few milliseconds after the commit in the usual case
//     (the bench measures it: "staleness across replicas").
//   - A notification can be lost and the feed can hold committed changes
//     back behind a transaction in flight (index.ChangePage.Held), so the
//     cache answers only while the follower has, within latestFreshFor,
//     finished a read that left nothing held: a follower that fails, falls
//     behind or stalls turns the cache off (reads go to the index) until it
//     catches up. A commit through another replica is thus seen within
//     latestFreshFor at worst.
//   - A read from the index races with invalidations: it records the epoch
//     before it reads, and its answer is kept only if no invalidation of its
//     entity (and no clear) came after that epoch.
//   - An expired cursor (index.ErrGone) clears everything.

const (
	// latestMaxEntries bounds the cache (an entry is a few hundred bytes).
	latestMaxEntries = 100_000
	// latestFreshFor is how recent the follower's last complete read must
	// be for the cache to answer. The feed's listener wakes it every
	// second even when nothing is committed.
	latestFreshFor = 2 * time.Second
	// latestMaxRead: an index read that took longer is not kept (its
	// entity's invalidations may have been forgotten meanwhile).
	latestMaxRead = 5 * time.Second
	// latestRecentFor is how long an invalidation is remembered, for the
	// reads in flight (> latestMaxRead).
	latestRecentFor = 10 * time.Second
)

// latestBackoff spaces the follower's attempts after a failed read, and
// its looks while changes are held.
var latestBackoff = backoff.Policy{First: 5 * time.Millisecond, Max: time.Second}

type latestCache struct {
	feed index.ChangeFeed
	log  *slog.Logger
	now  func() time.Time

	mu       sync.Mutex
	units    map[uuid.UUID]index.Unit
	epoch    uint64                 // counts invalidations and clears
	cleared  uint64                 // the epoch of the last clear
	touched  map[uuid.UUID]touchRec // invalidations of the last latestRecentFor
	caughtUp time.Time              // when the last read that left nothing held began

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

type touchRec struct {
	epoch uint64
	at    time.Time
}

func newLatestCache(feed index.ChangeFeed, log *slog.Logger) *latestCache {
	return &latestCache{
		feed:    feed,
		log:     log,
		now:     time.Now,
		units:   make(map[uuid.UUID]index.Unit),
		touched: make(map[uuid.UUID]touchRec),
	}
}

// start starts the follower, once.
func (c *latestCache) start() {
	c.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go func() {
			defer close(c.done)
			c.follow(ctx)
		}()
	})
}

// close stops the follower; the cache answers nothing after.
func (c *latestCache) close() {
	c.once.Do(func() {}) // no follower starts after this
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	c.mu.Lock()
	c.caughtUp = time.Time{}
	c.mu.Unlock()
}

// get returns the cached latest version of unit id, when the cache may
// answer.
func (c *latestCache) get(id uuid.UUID) (index.Unit, bool) {
	c.start()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.caughtUp.IsZero() || c.now().Sub(c.caughtUp) > latestFreshFor {
		return index.Unit{}, false
	}
	u, ok := c.units[id]
	return u, ok
}

// begin returns the epoch to give put for a read that starts now.
func (c *latestCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// put keeps u, read from the index by a read that began at epoch since and
// time began, unless u's entity was invalidated since.
func (c *latestCache) put(u index.Unit, since uint64, began time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Sub(began) > latestMaxRead || c.cleared > since {
		return
	}
	if t, ok := c.touched[u.ID]; ok && t.epoch > since {
		return
	}
	if _, ok := c.units[u.ID]; !ok && len(c.units) >= latestMaxEntries {
		for id := range c.units { // an arbitrary entry goes
			delete(c.units, id)
			break
		}
	}
	c.units[u.ID] = u
}

// invalidate forgets ids.
func (c *latestCache) invalidate(ids ...uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	now := c.now()
	for _, id := range ids {
		delete(c.units, id)
		c.touched[id] = touchRec{epoch: c.epoch, at: now}
	}
}

// clear forgets everything.
func (c *latestCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.cleared = c.epoch
	clear(c.units)
}

// prune forgets the invalidations older than latestRecentFor.
func (c *latestCache) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	cutoff := c.now().Add(-latestRecentFor)
	for id, t := range c.touched {
		if t.at.Before(cutoff) {
			delete(c.touched, id)
		}
	}
}

func (c *latestCache) markCaughtUp(began time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.caughtUp = began
}

// follow reads the change feed from its head on, forgetting what each
// change touched, until ctx ends.
func (c *latestCache) follow(ctx context.Context) {
	var cursor string
	failures := 0
	fail := func(err error) {
		failures++
		if failures == 1 || failures%100 == 0 {
			c.log.Warn("the latest-version cache cannot follow the change feed; reads go to the index", "error", err.Error(), "attempts", failures)
		}
		_ = backoff.Sleep(ctx, latestBackoff.Delay(failures))
	}
	for ctx.Err() == nil {
		if cursor == "" {
			head, err := c.feed.ChangesHead(ctx)
			if err != nil {
				fail(err)
				continue
			}
			cursor = head
		}
		watch := c.feed.WatchChanges()
		began := c.now()
		page, err := c.feed.Changes(ctx, index.ChangeQuery{After: cursor, Limit: index.MaxLimit})
		if errors.Is(err, index.ErrGone) {
			c.clear()
			cursor = ""
			continue
		}
		if err != nil {
			fail(err)
			continue
		}
		if failures > 0 {
			c.log.Info("the latest-version cache follows the change feed again", "after_attempts", failures)
			failures = 0
		}
		c.apply(page.Items)
		cursor = page.NextCursor
		if len(page.Items) == index.MaxLimit {
			continue // more are there
		}
		c.prune()
		if page.Held {
			// Committed changes are not listed yet: the cache is not
			// known to be current; look again shortly.
			_ = backoff.Sleep(ctx, latestBackoff.First)
			continue
		}
		c.markCaughtUp(began)
		select {
		case <-watch:
		case <-ctx.Done():
		}
	}
}

// apply forgets what changes touched; the deletion of a collection takes
// its units without a change of their own, so it clears everything.
func (c *latestCache) apply(changes []index.FeedChange) {
	ids := make([]uuid.UUID, 0, len(changes))
	for _, ch := range changes {
		if ch.Kind == index.KindCollection && ch.Event == index.EventDeleted {
			c.clear()
			continue
		}
		ids = append(ids, ch.ID)
	}
	c.invalidate(ids...)
}

// touchingTx records the entities a transaction of this Service changes,
// so that the latest-version cache forgets them once it is over.
type touchingTx struct {
	index.Tx
	touched *[]uuid.UUID
	cleared *bool
}

func (t touchingTx) touch(id uuid.UUID) { *t.touched = append(*t.touched, id) }

func (t touchingTx) PutInlineBlob(h cas.Hash, b []byte) error {
	w, ok := t.Tx.(index.InlineWriter)
	if !ok {
		return errors.New("refs: the index keeps no inline blobs")
	}
	return w.PutInlineBlob(h, b)
}

func (t touchingTx) DeleteCollection(id uuid.UUID, recursive bool) error {
	*t.cleared = true
	return t.Tx.DeleteCollection(id, recursive)
}

func (t touchingTx) CommitUnit(id uuid.UUID, c index.UnitChange, draft bool) (index.Unit, bool, error) {
	t.touch(id)
	return t.Tx.CommitUnit(id, c, draft)
}

func (t touchingTx) PublishUnitDraft(id uuid.UUID) (index.Unit, error) {
	t.touch(id)
	return t.Tx.PublishUnitDraft(id)
}

func (t touchingTx) DeleteEntity(id uuid.UUID) error {
	t.touch(id)
	return t.Tx.DeleteEntity(id)
}

// update runs fn in an index transaction; with the latest-version cache,
// the entities fn changed are forgotten before it returns (whether or not
// the commit succeeded: a failed commit may have been applied).
func (s *Service) update(ctx context.Context, fn func(tx index.Tx) error) error {
	if s.latest == nil {
		return s.idx.Update(ctx, fn)
	}
	var (
		touched []uuid.UUID
		cleared bool
	)
	err := s.idx.Update(ctx, func(tx index.Tx) error {
		return fn(touchingTx{Tx: tx, touched: &touched, cleared: &cleared})
	})
	if cleared {
		s.latest.clear()
	}
	s.latest.invalidate(touched...)
	return err
}

// cachedUnitOLX answers UnitOLX of the latest version of a unit from the
// caches alone, when both have it.
func (s *Service) cachedUnitOLX(ref index.Ref) (index.Unit, []byte, bool) {
	if s.latest == nil || ref != index.Latest(ref.ID) {
		return index.Unit{}, nil, false
	}
	u, ok := s.latest.get(ref.ID)
	if !ok {
		return index.Unit{}, nil, false
	}
	b, ok := s.cache.get(u.Hash)
	return u, b, ok
}
