package pebbleindex

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupSyncCoversWaiters checks that wait returns only once a sync that
// started after the batch was applied has ended, and that syncs are shared.
func TestGroupSyncCoversWaiters(t *testing.T) {
	var g groupSync
	g.init()
	var applied atomic.Uint64 // what a sync starting now would cover
	var syncs atomic.Int64
	var synced atomic.Uint64
	syncWAL := func() error {
		covers := applied.Load()
		syncs.Add(1)
		time.Sleep(200 * time.Microsecond)
		for {
			s := synced.Load()
			if s >= covers || synced.CompareAndSwap(s, covers) {
				return nil
			}
		}
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	var mu sync.Mutex // the writer's turn
	for range writers {
		wg.Go(func() {
			for range each {
				g.start()
				mu.Lock()
				applied.Add(1)
				seq := g.stop(true)
				mu.Unlock()
				if err := g.wait(seq, syncWAL); err != nil {
					t.Error(err)
					return
				}
				if synced.Load() < seq {
					t.Errorf("wait(%d) returned with only %d synced", seq, synced.Load())
					return
				}
			}
		})
	}
	wg.Wait()
	if n := syncs.Load(); n >= writers*each {
		t.Fatalf("%d syncs for %d commits: none shared", n, writers*each)
	}
	if n, c := g.counts(); int64(n) != syncs.Load() || c != writers*each {
		t.Fatalf("counts: %d syncs covering %d commits, want %d and %d", n, c, syncs.Load(), writers*each)
	}
	t.Logf("%d commits, %d syncs", writers*each, syncs.Load())
}

// TestGroupSyncBoundedWait checks that a leader does not wait for ever for a
// writer that never applies, and that a failed sync is reported and retried.
func TestGroupSyncBoundedWait(t *testing.T) {
	var g groupSync
	g.init()
	g.start() // a writer that stays under way
	g.start()
	seq := g.stop(true)
	start := time.Now()
	failed := errors.New("sync failed")
	if err := g.wait(seq, func() error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("wait with a failing sync: %v", err)
	}
	if err := g.wait(seq, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < maxGroupWait || d > 10*time.Second {
		t.Fatalf("waits took %s, want at least maxGroupWait (%s) and bounded", d, maxGroupWait)
	}
	if g.durable != seq {
		t.Fatalf("durable %d, want %d", g.durable, seq)
	}
}
