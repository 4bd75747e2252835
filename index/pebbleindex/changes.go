package pebbleindex

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// The change feed on Pebble (index.ChangeFeed).
//
// Keys: f|seq → change (kind, event, uuid, collection, version, time), seq
// a number the writer assigns in its turn, so that seq order is commit
// order: one writer at a time applies its batch in turn. A change is served
// only once its batch is durable (synced in a group by groupSync): before
// that a crash could take it back, and a follower would have seen a change
// that never happened. The feed therefore serves seq up to changeLog.durable,
// which a writer raises only after its own sync returned; since a sync
// makes every batch applied before it durable, every seq below is durable
// too. Cursors are (0, seq). Seqs burnt by a batch that failed after they
// were assigned leave a gap, which the feed skips.
//
// a|changes-pruned holds the last seq the sweep pruned (PruneChanges): a
// cursor below it is gone (index.ErrGone). After a restart the next seq
// continues above both the last key and that mark, so no seq is reused.

const (
	pChange          byte = 'f' // f|seq → change record
	changesPrunedKey      = "a" + "changes-pruned"
	changeRecordSize      = 1 + 1 + sizeUUID + sizeUUID + sizeU64 + sizeTime
	// maxChangeScan bounds the keys one filtered page looks at.
	maxChangeScan = 10 * index.MaxLimit
)

// changeLog is the Store's feed state.
type changeLog struct {
	mu      sync.Mutex
	loaded  bool
	next    uint64 // the seq the next change gets (assigned in the writer's turn)
	durable uint64 // every change up to this seq is durable
	written atomic.Uint64
	wake    index.Broadcast
}

func changeKey(seq uint64) []byte { return appendU64(key(pChange, 1+sizeU64), seq) }

func encodeChange(c *index.FeedChange) []byte {
	b := make([]byte, 0, changeRecordSize)
	b = append(b, byte(c.Kind), byte(c.Event))
	b = append(b, c.ID[:]...)
	b = append(b, c.Collection[:]...)
	b = appendU64(b, uint64(c.Version))
	return appendTime(b, c.At.UnixNano())
}

func decodeChange(seq uint64, v []byte) (index.FeedChange, error) {
	if len(v) != changeRecordSize {
		return index.FeedChange{}, fmt.Errorf("index: change %d: record of %d bytes", seq, len(v))
	}
	c := index.FeedChange{
		Cursor: index.ChangePos{Minor: seq}.String(),
		Kind:   index.Kind(v[0]),
		Event:  index.ChangeEvent(v[1]),
		ID:     readUUID(v[2:]),
	}
	c.Collection = readUUID(v[2+sizeUUID:])
	c.Version = int64(readU64(v[2+2*sizeUUID:]))
	c.At = time.Unix(0, readTime(v[2+2*sizeUUID+sizeU64:])).UTC()
	return c, nil
}

// AppendChange stores c with the batch (index.ChangeAppender); its seq is
// assigned when the batch is about to be applied (stageChanges).
func (t *tx) AppendChange(c index.FeedChange) error {
	c.At = time.Unix(0, t.at).UTC()
	t.changes = append(t.changes, c)
	return nil
}

// recordSweep records a sweep's deletion of version ver of id (0: the
// whole entity) in t.
func (t *tx) recordSweep(id uuid.UUID, e *entityRec, ver int64) {
	coll := e.Collection
	if e.Kind == index.KindCollection {
		coll = id
	}
	_ = t.AppendChange(index.FeedChange{Kind: e.Kind, ID: id, Collection: coll, Version: ver, Event: index.EventDeleted})
}

// load reads the feed's state once: the last seq stored and the pruned
// mark. The first caller runs before any write of this process has staged
// a change, so everything stored is durable (Pebble replayed its WAL).
func (s *Store) loadChanges() error {
	if s.feed.loaded {
		return nil
	}
	last := uint64(0)
	p := []byte{pChange}
	err := scanReader(s.db, p, prefixEnd(p), true, func(k, _ []byte) (bool, error) {
		last = readU64(k[1:])
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("index: load changes: %w", err)
	}
	pruned, err := readPruned(s.db)
	if err != nil {
		return err
	}
	s.feed.durable = max(last, pruned)
	s.feed.next = s.feed.durable + 1
	s.feed.loaded = true
	return nil
}

// readPruned reads the last pruned seq (0 when nothing was pruned).
func readPruned(r pebble.Reader) (uint64, error) {
	v, ok, err := getValue(r, []byte(changesPrunedKey))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != sizeU64 {
		return 0, fmt.Errorf("index: %s: value of %d bytes", changesPrunedKey, len(v))
	}
	return readU64(v), nil
}

// stageChanges assigns seqs to t's changes and writes them to the batch. It
// runs in the writer's turn, just before the batch is applied; it returns
// the last seq (0 when t has none).
func (s *Store) stageChanges(t *tx) (uint64, error) {
	if len(t.changes) == 0 {
		return 0, nil
	}
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	if err := s.loadChanges(); err != nil {
		return 0, err
	}
	var last uint64
	for i := range t.changes {
		last = s.feed.next
		s.feed.next++
		t.set(changeKey(last), encodeChange(&t.changes[i]))
	}
	return last, t.err
}

// changesDurable is called with the outcome of a commit's sync: once the
// batch that holds changes up to last is durable, they are served and the
// waiting followers woken.
func (s *Store) changesDurable(last uint64, n int, err error) error {
	if err != nil || last == 0 {
		return err
	}
	s.feed.mu.Lock()
	if last > s.feed.durable {
		s.feed.durable = last
	}
	s.feed.mu.Unlock()
	s.feed.written.Add(uint64(n))
	s.feed.wake.Notify()
	return nil
}

// durableChanges returns the last durable seq.
func (s *Store) durableChanges() (uint64, error) {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	if err := s.loadChanges(); err != nil {
		return 0, err
	}
	return s.feed.durable, nil
}

// Changes returns a page of the feed.
func (s *Store) Changes(ctx context.Context, q index.ChangeQuery) (index.ChangePage, error) {
	limit, err := index.ChangeLimit(q.Limit)
	if err != nil {
		return index.ChangePage{}, err
	}
	pos, err := index.ParseChangeCursor(q.After)
	if err != nil {
		return index.ChangePage{}, err
	}
	if pos.Major != 0 {
		return index.ChangePage{}, fmt.Errorf("%w: change cursor %q is not one of this index", index.ErrInvalid, q.After)
	}
	durable, err := s.durableChanges()
	if err != nil {
		return index.ChangePage{}, err
	}
	var page index.ChangePage
	err = s.read(ctx, "changes", func(v *view) error {
		pruned, err := readPruned(v.r)
		if err != nil {
			return err
		}
		from := pos.Minor
		switch {
		case q.After == "":
			from = pruned
		case from < pruned:
			return fmt.Errorf("%w: cursor %s is before change %d, the oldest kept", index.ErrGone, q.After, pruned+1)
		case from > durable:
			// Only a feed that went back (a restored backup) or another
			// store's cursor is ahead of the durable head: the follower
			// cannot know what it missed, so it reloads.
			return fmt.Errorf("%w: cursor %s is ahead of this feed's last change %d (restored from a backup?)", index.ErrGone, q.After, durable)
		}
		next, scanned, full := from, 0, false
		err = v.scan(changeKey(from+1), changeKey(durable+1), func(k, val []byte) (bool, error) {
			seq := readU64(k[1:])
			scanned++
			c, err := decodeChange(seq, val)
			if err != nil {
				return false, err
			}
			next = seq
			if q.Collection == uuid.Nil || c.Collection == q.Collection {
				page.Items = append(page.Items, c)
			}
			full = len(page.Items) == limit || scanned == maxChangeScan
			return !full, nil
		})
		if err != nil {
			return err
		}
		if !full {
			// Everything up to the durable seq was looked at.
			next = max(next, durable)
		}
		page.NextCursor = index.ChangePos{Minor: next}.String()
		return nil
	})
	if err != nil {
		return index.ChangePage{}, fmt.Errorf("index: changes: %w", err)
	}
	return page, nil
}

// ChangesHead returns the cursor after the last durable change.
func (s *Store) ChangesHead(ctx context.Context) (string, error) {
	if err := s.gate.enter(); err != nil {
		return "", err
	}
	defer s.gate.leave()
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("index: changes head: %w", err)
	}
	durable, err := s.durableChanges()
	if err != nil {
		return "", err
	}
	return index.ChangePos{Minor: durable}.String(), nil
}

// WatchChanges returns a channel closed when the next changes are durable.
func (s *Store) WatchChanges() <-chan struct{} { return s.feed.wake.Watch() }

// ChangesWritten counts the changes this process committed.
func (s *Store) ChangesWritten() uint64 { return s.feed.written.Load() }

// pruneBatch bounds the keys one pruning transaction deletes.
const pruneBatch = 10000

// PruneChanges deletes the durable changes made before cutoff, oldest
// first, stopping at the first younger one: a prefix of the feed.
func (s *Store) PruneChanges(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		durable, err := s.durableChanges()
		if err != nil {
			return total, err
		}
		n := 0
		err = s.write(ctx, func(t *tx) error {
			n = 0
			pruned, err := readPruned(t.r)
			if err != nil {
				return err
			}
			last := pruned
			c := cutoff.UnixNano()
			err = t.scan(changeKey(pruned+1), changeKey(durable+1), func(k, val []byte) (bool, error) {
				if len(val) != changeRecordSize || readTime(val[2+2*sizeUUID+sizeU64:]) >= c || n == pruneBatch {
					return false, nil
				}
				last = readU64(k[1:])
				t.del(k)
				n++
				return true, nil
			})
			if err != nil || n == 0 {
				return err
			}
			t.set([]byte(changesPrunedKey), appendU64(nil, last))
			return t.err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("index: prune changes: %w", err)
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

var (
	_ index.ChangeFeed     = (*Store)(nil)
	_ index.ChangePruner   = (*Store)(nil)
	_ index.ChangeAppender = (*tx)(nil)
)
