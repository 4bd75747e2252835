package pebbleindex

import (
	"runtime"
	"sync"
	"time"
)

// maxGroupWait bounds how long a sync leader waits for the writers under way
// to apply their batches before it syncs without them.
const maxGroupWait = time.Millisecond

// groupSync makes applied batches durable in groups. Writers apply their
// batches without a WAL sync, in turn, and then wait for a sync that covers
// them. The first writer to find no sync under way leads the next one:
// it first waits (up to maxGroupWait) for the writers already under way to
// apply theirs, so that with W writers one sync covers all W instead of the
// half of them that reached the WAL while the previous sync ran.
type groupSync struct {
	mu      sync.Mutex
	applied uint64 // batches applied, numbered in WAL order
	durable uint64 // every batch numbered up to it is synced
	syncing bool
	done    chan struct{} // closed when the sync under way ends
	active  int           // writers that started and have not yet applied (or given up)
	moved   chan struct{} // closed when active goes down
	// syncs counts the syncs that succeeded, synced the batches they made
	// durable (index.SyncStats).
	syncs, synced uint64
}

func (g *groupSync) init() {
	g.moved = make(chan struct{})
}

// start counts a writer under way.
func (g *groupSync) start() {
	g.mu.Lock()
	g.active++
	g.mu.Unlock()
}

// stop counts a writer no longer under way; applied says it applied a batch,
// and the batch's number is returned.
func (g *groupSync) stop(applied bool) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	close(g.moved)
	g.moved = make(chan struct{})
	if applied {
		g.applied++
	}
	return g.applied
}

// wait returns once every batch numbered up to seq is durable, running the
// syncs itself when no other writer does; sync makes every batch applied
// before it durable.
func (g *groupSync) wait(seq uint64, sync func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.durable < seq {
		if g.syncing {
			done := g.done
			g.mu.Unlock()
			<-done
			g.mu.Lock()
			continue
		}
		g.syncing = true
		g.done = make(chan struct{})
		// Let the writers the last sync released start again.
		g.mu.Unlock()
		runtime.Gosched()
		g.mu.Lock()
		if g.active > 0 {
			timer := time.NewTimer(maxGroupWait)
			for waiting := true; waiting && g.active > 0; {
				moved := g.moved
				g.mu.Unlock()
				select {
				case <-moved:
				case <-timer.C:
					waiting = false
				}
				g.mu.Lock()
			}
			timer.Stop()
		}
		target := g.applied
		g.mu.Unlock()
		err := sync()
		g.mu.Lock()
		g.syncing = false
		close(g.done)
		if err != nil {
			return err
		}
		g.syncs++
		if target > g.durable {
			g.synced += target - g.durable
			g.durable = target
		}
	}
	return nil
}

// counts returns the syncs that succeeded and the batches they made durable.
func (g *groupSync) counts() (syncs, batches uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.syncs, g.synced
}
