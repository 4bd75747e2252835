package index

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The change feed (API.md, "Changes"; DESIGN.md invariant 7): every
// committed write of an entity is one FeedChange, stored by the engine in the
// same transaction as the write, so that a change exists exactly when its
// write is committed. RecordChanges is the one place that decides which
// Tx calls are changes and what they say; engines only store what it hands
// them (ChangeAppender) and serve it in order (ChangeFeed).

// ErrGone: a change cursor older than the retained history (pruned). The
// API answers 410; a follower must reload what it caches and start again.
var ErrGone = errors.New("index: change history gone")

// DefaultChangeRetention is how long changes are kept at least (API.md).
const DefaultChangeRetention = 7 * 24 * time.Hour

// MaxChangeWait bounds a long-poll (API.md: wait up to 60s).
const MaxChangeWait = 60 * time.Second

// ChangeEvent says what a change did.
type ChangeEvent uint8

const (
	EventCreated      ChangeEvent = 1 // version 1 of an entity
	EventPublished    ChangeEvent = 2 // a new numbered unit or asset version (POST, or publishing a draft)
	EventUpdated      ChangeEvent = 3 // a collection's new version
	EventDraftSaved   ChangeEvent = 4 // a draft created or replaced
	EventDraftDeleted ChangeEvent = 5 // a draft deleted
	EventDeleted      ChangeEvent = 6 // an entity (Version 0) or one version (by a sweep) deleted
)

var eventNames = [...]string{"", "created", "published", "updated", "draft_saved", "draft_deleted", "deleted"}

func (e ChangeEvent) String() string {
	if int(e) < len(eventNames) && e != 0 {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// ParseChangeEvent parses the API's name of an event.
func ParseChangeEvent(s string) (ChangeEvent, error) {
	for i, n := range eventNames {
		if i > 0 && n == s {
			return ChangeEvent(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown change event %q", ErrInvalid, s)
}

// FeedChange is one committed write. Collection is the entity's collection (a
// collection's own uuid for a collection), so that a follower may watch one
// collection; Version is the number the event made or removed, 0 for draft
// events and for the deletion of a whole entity.
type FeedChange struct {
	Cursor     string // the position just after this change
	Kind       Kind
	ID         uuid.UUID
	Collection uuid.UUID
	Version    int64
	Event      ChangeEvent
	At         time.Time // when the write was made (the engine's clock)
}

// ChangeQuery selects a page of the feed.
type ChangeQuery struct {
	// After is a cursor from an earlier page (NextCursor or FeedChange.Cursor) or
	// ChangesHead; empty starts at the oldest retained change. A cursor that
	// does not parse is ErrInvalid; one older than the retained history is
	// ErrGone.
	After string
	// Limit: 0 is DefaultLimit, at most MaxLimit, else ErrInvalid.
	Limit int
	// Collection, unless uuid.Nil, keeps only that collection's changes
	// (its own and those of its units and assets).
	Collection uuid.UUID
}

// ChangePage is one page of the feed, oldest first.
type ChangePage struct {
	Items []FeedChange
	// NextCursor continues after this page; always set.
	NextCursor string
	// Held says that changes are committed but not served yet, because
	// they are not yet known to come after every change still in flight
	// (PostgreSQL) or not yet durable (Pebble). A waiting follower then
	// looks again shortly even without a notification.
	Held bool
	// Clock is the engine's commit clock as of the read (PostgreSQL: the
	// snapshot the read saw), "" where the engine has none: see CommitClock.
	Clock string
}

// ChangeFeed is an optional interface of a Store: the feed of committed
// changes, in an order where every change is listed after every change that
// was committed before its transaction began, and listed only once it is
// committed and durable. A follower that keeps passing NextCursor sees every
// change once.
type ChangeFeed interface {
	Changes(ctx context.Context, q ChangeQuery) (ChangePage, error)
	// ChangesHead returns the cursor after the latest change served now.
	ChangesHead(ctx context.Context) (string, error)
	// WatchChanges returns a channel closed when changes may have been
	// committed since the call (through any replica). Take it before
	// reading, so that no commit between the read and the wait is missed.
	WatchChanges() <-chan struct{}
	// ChangesWritten counts the changes this process has committed.
	ChangesWritten() uint64
}

// CommitClock is an optional interface of a ChangeFeed: a value that
// changes whenever a transaction ends, cheaper to read than a page of the
// feed (PostgreSQL: the current snapshot, whose in-progress list or xmax
// moves with every commit). If CommitClock reads what a page's Clock read,
// the database shows what that read saw: a reader that followed the feed to
// the end of that page, with nothing Held, has nothing new to read (the
// latest-version cache skips its feed read).
type CommitClock interface {
	CommitClock(ctx context.Context) (string, error)
}

// ChangePruner is an optional interface of a Store: the sweep calls it to
// drop changes made before cutoff. It drops a prefix of the feed only, so
// that a cursor is gone exactly when a change after it was dropped.
type ChangePruner interface {
	PruneChanges(ctx context.Context, cutoff time.Time) (int, error)
}

// ChangeAppender is implemented by an engine's Tx: it stores c in the
// transaction (Cursor and At are the engine's to fill in).
type ChangeAppender interface {
	AppendChange(c FeedChange) error
}

// --- cursors -----------------------------------------------------------------

// ChangePos is a position in the feed: engines order changes by (Major,
// Minor). PostgreSQL uses (transaction id, sequence), Pebble (0, sequence).
// The zero position is before every change.
type ChangePos struct{ Major, Minor uint64 }

// Less orders positions.
func (p ChangePos) Less(q ChangePos) bool {
	return p.Major < q.Major || p.Major == q.Major && p.Minor < q.Minor
}

const cursorTag = 1

// String encodes p as an opaque cursor (URL-safe).
func (p ChangePos) String() string {
	var b [17]byte
	b[0] = cursorTag
	binary.BigEndian.PutUint64(b[1:], p.Major)
	binary.BigEndian.PutUint64(b[9:], p.Minor)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseChangeCursor decodes a cursor; errors wrap ErrInvalid. The empty
// cursor is the zero position.
func ParseChangeCursor(s string) (ChangePos, error) {
	if s == "" {
		return ChangePos{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != cursorTag {
		return ChangePos{}, fmt.Errorf("%w: change cursor %q does not parse", ErrInvalid, s)
	}
	return ChangePos{Major: binary.BigEndian.Uint64(b[1:]), Minor: binary.BigEndian.Uint64(b[9:])}, nil
}

// ChangeLimit checks a page size: 0 is DefaultLimit.
func ChangeLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultLimit, nil
	case n < 0 || n > MaxLimit:
		return 0, fmt.Errorf("%w: limit %d is not from 1 to %d", ErrInvalid, n, MaxLimit)
	}
	return n, nil
}

// --- waiting -----------------------------------------------------------------

// Held changes are looked at again after these pauses (doubling), without
// a notification: the transaction that holds them back may end without one
// (a rollback, or a transaction that wrote no change).
const (
	heldRetryFirst = 20 * time.Millisecond
	heldRetryMax   = 500 * time.Millisecond
)

// WaitChanges reads a page of f; when it is empty and wait > 0 it waits
// for a commit (WatchChanges) and reads again, until a page has items or
// wait has passed (then the empty page is returned). It never polls the
// database on a timer except while changes are held back.
func WaitChanges(ctx context.Context, f ChangeFeed, q ChangeQuery, wait time.Duration) (ChangePage, error) {
	if wait > MaxChangeWait {
		wait = MaxChangeWait
	}
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	retry := heldRetryFirst
	for {
		watch := f.WatchChanges()
		page, err := f.Changes(ctx, q)
		if err != nil || len(page.Items) > 0 || wait <= 0 {
			return page, err
		}
		var held *time.Timer
		var heldC <-chan time.Time
		if page.Held {
			held = time.NewTimer(retry)
			heldC = held.C
			retry = min(2*retry, heldRetryMax)
		}
		select {
		case <-watch:
		case <-heldC:
		case <-deadline:
			return page, nil
		case <-ctx.Done():
			return page, fmt.Errorf("index: wait for changes: %w", ctx.Err())
		}
		if held != nil {
			held.Stop()
		}
		// The next page starts where this one ended (a filtered page may
		// have moved past other collections' changes).
		q.After = page.NextCursor
	}
}

// Broadcast wakes every watcher at once: a channel closed and replaced on
// each Notify. Engines use it behind WatchChanges. The zero value is ready.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// Watch returns the channel the next Notify closes.
func (b *Broadcast) Watch() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Notify wakes the current watchers.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
