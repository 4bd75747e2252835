package refs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// The latest-version cache: the latest published version of the units whose
// OLX is read by uuid (GET /units/{uuid}/olx), kept in memory on engines
// where every read is a round trip to a database (PostgreSQL). Combined
// with the blob cache (bytes by hash, which never change), a repeated OLX
// read asks the database one shared question instead of one of its own.
//
// It stays true by reading the change feed, the record of every commit
// through every replica, before it answers (a read index, as Raft's
// ReadIndex reads): a read waits for a feed read that began after the read
// arrived, and that forgot every entity a listed change touched. Every
// commit acknowledged before the read arrived is then either in that page
// (and forgotten) or held back by the feed (index.ChangePage.Held: a
// transaction that began earlier is still in flight), and then the read
// goes to the index. So a read through any replica sees every commit
// acknowledged before it, as without the cache. One feed read at a time
// serves every read that arrived before it began: under load the database
// answers a feed read every millisecond or two instead of every OLX read.
//
// Also:
//   - A write through this Service forgets the entities it touched before
//     it returns (touchingTx), so its own feed entries find nothing to do.
//   - A read from the index races with invalidations: it records the epoch
//     before it reads, and its answer is kept only if no invalidation of its
//     entity (and no clear) came after that epoch.
//   - An expired cursor (index.ErrGone) or a failed feed read clears
//     everything; the next feed read starts from the head.
//   - Where the feed has a commit clock (index.CommitClock: PostgreSQL's
//     current snapshot, which every transaction that ends changes), a feed
//     read first reads the clock. When it reads what the last page of the
//     previous feed read saw (index.ChangePage.Clock), and that read held
//     nothing back, the database shows what that read saw: the feed read
//     is skipped. A commit acknowledged before the clock was read has ended
//     by then, so it changed the clock unless the previous read saw it.

const (
	// latestMaxEntries bounds the cache (an entry is a few hundred bytes).
	latestMaxEntries = 100_000
	// latestMaxRead: an index read that took longer is not kept (its
	// entity's invalidations may have been forgotten meanwhile).
	latestMaxRead = 5 * time.Second
	// latestRecentFor is how long an invalidation is remembered, for the
	// reads in flight (> latestMaxRead).
	latestRecentFor = 10 * time.Second
	// latestFeedTimeout bounds one feed read.
	latestFeedTimeout = 5 * time.Second
)

type latestCache struct {
	feed  index.ChangeFeed
	clock index.CommitClock // nil: the feed has none
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	units   map[uuid.UUID]index.Unit
	epoch   uint64                 // counts invalidations and clears
	cleared uint64                 // the epoch of the last clear
	touched map[uuid.UUID]touchRec // invalidations of the last latestRecentFor
	pruned  time.Time              // when touched was last pruned

	cursor  string        // where the next feed read starts ("": at the head)
	mark    string        // the commit clock of the last feed read that held nothing back ("": none)
	started uint64        // feed reads started
	done    uint64        // the last feed read that ended
	synced  uint64        // the last feed read that ended with nothing held
	reading bool          // a feed read is under way
	ended   chan struct{} // closed when the feed read under way ends
	fails   int           // feed reads failed in a row
}

type touchRec struct {
	epoch uint64
	at    time.Time
}

func newLatestCache(feed index.ChangeFeed, log *slog.Logger) *latestCache {
	clock, _ := feed.(index.CommitClock)
	return &latestCache{
		feed:    feed,
		clock:   clock,
		log:     log,
		now:     time.Now,
		units:   make(map[uuid.UUID]index.Unit),
		touched: make(map[uuid.UUID]touchRec),
		ended:   make(chan struct{}),
	}
}

// sync waits for a feed read that begins after the call, and reports
// whether it left nothing held: the cache then reflects every commit
// acknowledged before the call. The caller that finds no feed read under
// way runs it.
func (c *latestCache) sync(ctx context.Context) bool {
	c.mu.Lock()
	need := c.started + 1
	for {
		switch {
		case c.synced >= need:
			c.mu.Unlock()
			return true
		case c.done >= need:
			c.mu.Unlock()
			return false // held back, or failed: ask the index
		case !c.reading:
			c.reading = true
			c.started++
			n, cursor, mark := c.started, c.cursor, c.mark
			c.mu.Unlock()
			cursor, mark, synced := c.read(ctx, cursor, mark)
			c.mu.Lock()
			c.cursor, c.mark, c.done, c.reading = cursor, mark, n, false
			if synced {
				c.synced = n
			}
			close(c.ended)
			c.ended = make(chan struct{})
			continue
		}
		ended := c.ended
		c.mu.Unlock()
		select {
		case <-ended:
		case <-ctx.Done():
			return false
		}
		c.mu.Lock()
	}
}

// read reads the feed from cursor to its end, forgetting what the changes
// touched, and returns where to go on, the commit clock's mark for the next
// read, and whether nothing was held. It does not stop when the caller's
// request is cancelled: other reads wait for it.
func (c *latestCache) read(ctx context.Context, cursor, mark string) (string, string, bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), latestFeedTimeout)
	defer cancel()
	if cursor == "" {
		// Nothing is cached before the first read: the head is enough.
		head, err := c.feed.ChangesHead(ctx)
		if err != nil {
			c.failed(err)
			return "", "", false
		}
		c.clear()
		return head, "", true
	}
	if c.clock != nil && mark != "" {
		if now, err := c.clock.CommitClock(ctx); err == nil && now == mark {
			return cursor, mark, true // nothing ended since the last feed read
		}
	}
	quiet := true // no change listed: the next read asks the clock first
	for range 1000 {
		page, err := c.feed.Changes(ctx, index.ChangeQuery{After: cursor, Limit: index.MaxLimit})
		if err != nil {
			// ErrGone among them: what the lost changes touched is unknown.
			c.failed(err)
			return "", "", false
		}
		c.apply(page.Items)
		cursor = page.NextCursor
		quiet = quiet && len(page.Items) == 0
		if len(page.Items) < index.MaxLimit {
			c.succeeded()
			switch {
			case page.Held:
				return cursor, "", false
			case !quiet:
				// Commits go on: asking the clock first would most
				// likely cost a round trip more.
				return cursor, "", true
			}
			return cursor, page.Clock, true
		}
	}
	return cursor, "", false // a million changes behind: catch up next time
}

func (c *latestCache) failed(err error) {
	c.clear()
	c.mu.Lock()
	c.fails++
	n := c.fails
	c.mu.Unlock()
	if n == 1 || n%1000 == 0 {
		c.log.Warn("the latest-version cache cannot read the change feed; OLX reads go to the index", "error", err.Error(), "failures", n)
	}
}

func (c *latestCache) succeeded() {
	c.mu.Lock()
	n := c.fails
	c.fails = 0
	c.mu.Unlock()
	if n > 0 {
		c.log.Info("the latest-version cache reads the change feed again", "after_failures", n)
	}
}

// get returns the cached latest version of unit id.
func (c *latestCache) get(id uuid.UUID) (index.Unit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	if now.Sub(c.pruned) > latestRecentFor {
		cutoff := now.Add(-latestRecentFor)
		for id, t := range c.touched {
			if t.at.Before(cutoff) {
				delete(c.touched, id)
			}
		}
		c.pruned = now
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
		return fmt.Errorf("refs: the index keeps no inline blobs: %w", index.ErrUnavailable)
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
// caches, once the change feed says they are current; ok false sends the
// caller to the index.
func (s *Service) cachedUnitOLX(ctx context.Context, ref index.Ref) (index.Unit, []byte, bool) {
	if !s.latest.sync(ctx) {
		return index.Unit{}, nil, false
	}
	u, ok := s.latest.get(ref.ID)
	if !ok {
		return index.Unit{}, nil, false
	}
	b, ok := s.cache.get(u.Hash)
	return u, b, ok
}
