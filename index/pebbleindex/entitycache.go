package pebbleindex

import (
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

// entityCacheSize bounds the entity cache: some 250 bytes per entry with
// the map's own, about 8 MiB when full. What it saves is the reads of the
// few entities most writes name (a course's collection, the assets and
// units many units link to); a sweep that reads many once only churns it.
const entityCacheSize = 1 << 15

// entityCache keeps the records of entities that transactions holding the
// writer's turn read, so that the link targets and the collection of every
// create are not point reads through Pebble's memtables each time (six of a
// unit create's reads, in the turn every writer waits for).
//
// It is right because every write of an entity record happens in a
// transaction that holds the writer's turn (the registry's own
// transactions write blob rows only), and such a transaction reads the
// cache only while it holds the turn: what it finds is the committed
// record. A transaction reads the entities it wrote from its own batch;
// once it is applied, still in its turns, the cache forgets them, and the
// next reader takes their new records from Pebble. Every transaction that
// writes an entity's key does so, whatever turns it holds. A transaction
// that fails changes nothing here.
type entityCache struct {
	mu sync.Mutex
	m  map[uuid.UUID]entityRec

	hits, misses atomic.Uint64 // reads answered here, and those that were not
}

func newEntityCache() *entityCache {
	return &entityCache{m: make(map[uuid.UUID]entityRec)}
}

func (c *entityCache) get(id uuid.UUID) (entityRec, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return e, ok
}

func (c *entityCache) put(id uuid.UUID, e entityRec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(id, e)
}

func (c *entityCache) putLocked(id uuid.UUID, e entityRec) {
	if _, ok := c.m[id]; !ok && len(c.m) >= entityCacheSize {
		for old := range c.m { // a random entry makes room
			delete(c.m, old)
			break
		}
	}
	c.m[id] = e
}

// forget drops the records of ids: a transaction that wrote them was
// just applied, and the next read takes them from Pebble.
func (c *entityCache) forget(ids map[uuid.UUID]struct{}) {
	if len(ids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range ids {
		delete(c.m, id)
	}
}

// entityReads is a transaction's use of the entity cache.
type entityReads struct {
	cache *entityCache
	// read: the transaction holds the writer's turn, so it may read the
	// cache and fill it.
	read bool
	// written holds the entities whose records the transaction wrote or
	// deleted: its reads of them go to its batch, and once it is applied
	// the cache forgets them.
	written map[uuid.UUID]struct{}
}

// cached returns the cached record of id, unless the transaction wrote it.
func (r *entityReads) cached(id uuid.UUID) (entityRec, bool) {
	if r == nil || !r.read {
		return entityRec{}, false
	}
	if _, ok := r.written[id]; ok {
		return entityRec{}, false
	}
	return r.cache.get(id)
}

// remember caches a record read from the committed state.
func (r *entityReads) remember(id uuid.UUID, e entityRec) {
	if r == nil || !r.read {
		return
	}
	if _, ok := r.written[id]; !ok {
		r.cache.put(id, e)
	}
}

// wrote notes a write (or deletion) of the record under key k, if k is an
// entity's: every write goes through tx.set and tx.del, which call it.
func (r *entityReads) wrote(k []byte) {
	if r == nil || len(k) != sizeEntityKey || k[0] != pEntity {
		return
	}
	if r.written == nil {
		r.written = make(map[uuid.UUID]struct{})
	}
	r.written[readUUID(k[1:])] = struct{}{}
}

// applied is called once the transaction's batch is applied.
func (r *entityReads) applied() {
	if r != nil {
		r.cache.forget(r.written)
	}
}
