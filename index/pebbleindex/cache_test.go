package pebbleindex

import (
	"encoding/binary"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestBlockCacheKeepsBlocks writes enough for memtables to reach their full
// size (Pebble reserves each one's size in the block cache), then reads
// flushed keys twice: the second pass must be served from the cache. With
// the cache no larger than two memtables it held no block at all.
func TestBlockCacheKeepsBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 100 MiB")
	}
	s := openTest(t, Options{NoSync: true})
	val := make([]byte, 4<<10)
	key := func(i int) []byte {
		k := []byte{0xfe, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(k[1:], uint32(i))
		return k
	}
	const n = 24 << 10 // 96 MiB of values: memtables reach 32 MiB
	for i := 0; i < n; i += 256 {
		b := s.db.NewBatch()
		for j := i; j < i+256; j++ {
			binary.BigEndian.PutUint32(val, uint32(j))
			if err := b.Set(key(j), val, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	read := func() {
		for i := 0; i < n; i += 97 {
			v, closer, err := s.db.Get(key(i))
			if err != nil {
				t.Fatalf("get %d: %v", i, err)
			}
			if binary.BigEndian.Uint32(v) != uint32(i) {
				t.Fatalf("key %d: wrong value", i)
			}
			closer.Close()
		}
	}
	read()
	before := s.db.Metrics().BlockCache
	read()
	after := s.db.Metrics().BlockCache
	hits, misses := after.Hits-before.Hits, after.Misses-before.Misses
	if misses*10 > hits {
		t.Errorf("second read of %d keys: %d block cache hits, %d misses (cache holds %d blocks, %d bytes); want nearly all hits",
			n/97+1, hits, misses, after.Count, after.Size)
	}
}
