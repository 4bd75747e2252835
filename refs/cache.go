package refs

import (
	"container/list"
	"sync"

	"github.com/blockstore/blockstore/cas"
)

// blobCache keeps the bytes of small blobs (OLX) in memory, least recently
// used first out, bounded by the total of their lengths. The bytes under a
// hash never change, but a sweep may delete them: an entry is served only
// for a hash the caller knows is live, from the registry (OpenBlob) or from
// a version that references it (a version keeps its blob live). Callers
// must not modify the slices they put or get.
type blobCache struct {
	maxBytes int64 // total bound; <= 0 disables the cache
	maxBlob  int64 // larger blobs are not kept

	mu    sync.Mutex
	used  int64
	order *list.List // front: most recently used; values are *cacheEntry
	byKey map[cas.Hash]*list.Element

	hits, misses uint64
}

type cacheEntry struct {
	h cas.Hash
	b []byte
}

func newBlobCache(maxBytes, maxBlob int64) *blobCache {
	return &blobCache{
		maxBytes: maxBytes,
		maxBlob:  maxBlob,
		order:    list.New(),
		byKey:    make(map[cas.Hash]*list.Element),
	}
}

// get returns the cached bytes of h.
func (c *blobCache) get(h cas.Hash) ([]byte, bool) {
	if c.maxBytes <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[h]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).b, true
}

// has reports whether h is cached, without counting a hit or a miss.
func (c *blobCache) has(h cas.Hash) bool {
	if c.maxBytes <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byKey[h]
	return ok
}

// add keeps b as the bytes of h, evicting the least recently used entries
// to stay within bounds. Blobs over maxBlob are ignored.
func (c *blobCache) add(h cas.Hash, b []byte) {
	n := int64(len(b))
	if c.maxBytes <= 0 || n > c.maxBlob || n > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[h]; ok {
		c.order.MoveToFront(e)
		return
	}
	for c.used+n > c.maxBytes {
		last := c.order.Back()
		old := c.order.Remove(last).(*cacheEntry)
		delete(c.byKey, old.h)
		c.used -= int64(len(old.b))
	}
	c.byKey[h] = c.order.PushFront(&cacheEntry{h: h, b: b})
	c.used += n
}

// remove drops the entry of h, if any: its blob is no longer live.
func (c *blobCache) remove(h cas.Hash) {
	if c.maxBytes <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[h]; ok {
		c.order.Remove(e)
		delete(c.byKey, h)
		c.used -= int64(len(e.Value.(*cacheEntry).b))
	}
}

// CacheStats are the counters of the small-blob cache.
type CacheStats struct {
	Entries      int
	Bytes        int64
	Hits, Misses uint64
}

func (c *blobCache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Entries: len(c.byKey), Bytes: c.used, Hits: c.hits, Misses: c.misses}
}
