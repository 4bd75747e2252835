package faults

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/client"
)

// TestChangesSurviveCrash: writers commit unit versions on the embedded
// deployment while a follower long-polls the feed; the server is killed
// with SIGKILL midway and restarted over the same data directory. After the
// restart the feed lists every acknowledged version once, each unit's in
// order, and everything the follower was shown before the kill (it is only
// ever shown durable changes); the follower resumes from its cursor.
func TestChangesSurviveCrash(t *testing.T) {
	t.Parallel()
	d := embeddedDeployment(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startServer(t, d.env, d.args...)
	c := newClient(t, s.URL)
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "crash"})
	if err != nil {
		t.Fatal(err)
	}

	const writers = 4
	var (
		mu    sync.Mutex
		acked = map[uuid.UUID]int64{}
		acks  atomic.Int64
	)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: fmt.Sprint("w", i), OLX: "<v1/>"})
			if err != nil {
				return // the kill came first
			}
			mu.Lock()
			acked[u.UUID] = 1
			mu.Unlock()
			acks.Add(1)
			for v := 2; v < 100000; v++ {
				nu, _, err := c.NewUnitVersion(ctx, u.UUID, client.UnitChange{OLX: fmt.Sprintf("<v%d/>", v)})
				if err != nil {
					return // the kill: later writes are not acknowledged
				}
				mu.Lock()
				acked[u.UUID] = *nu.Version
				mu.Unlock()
				acks.Add(1)
			}
		}()
	}

	// The follower runs until the kill ends its requests.
	type seenVersion struct {
		id      uuid.UUID
		version int64
	}
	var shown []seenVersion
	follower := c.Follow(client.ChangeQuery{Collection: col.UUID, Wait: 5 * time.Second})
	follower.Forever = true
	fctx, stopFollower := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		for ch, err := range follower.Changes(fctx) {
			if err != nil {
				return
			}
			if ch.Kind == "unit" && ch.Version != nil {
				shown = append(shown, seenVersion{ch.UUID, *ch.Version})
			}
		}
	}()

	if err := waitFor(time.Minute, func() error {
		if n := acks.Load(); n < 200 {
			return fmt.Errorf("%d acknowledged writes, want 200 before the kill", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.kill(t)
	wg.Wait()
	stopFollower()
	<-followed
	cursor := follower.Cursor()
	t.Logf("killed after %d acknowledged versions; the follower had been shown %d", acks.Load(), len(shown))

	s = startServer(t, d.env, d.args...)
	c = newClient(t, s.URL)
	// The whole feed, from the start, after the restart.
	all := map[uuid.UUID]int64{}
	for ch, err := range c.Follow(client.ChangeQuery{Collection: col.UUID}).Changes(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if ch.Kind != "unit" {
			continue
		}
		if want := all[ch.UUID] + 1; ch.Version == nil || *ch.Version != want {
			t.Fatalf("after the restart: unit %s version %v listed after %d", ch.UUID, ch.Version, all[ch.UUID])
		}
		all[ch.UUID]++
	}
	for id, v := range acked {
		if all[id] < v {
			t.Errorf("unit %s: version %d was acknowledged, the feed after the restart ends at %d", id, v, all[id])
		}
	}
	for _, sv := range shown {
		if all[sv.id] < sv.version {
			t.Errorf("unit %s: version %d was shown to the follower before the kill and is gone after it", sv.id, sv.version)
		}
	}
	// The follower resumes from its cursor and sees the rest, nothing twice.
	last := map[uuid.UUID]int64{}
	for _, sv := range shown {
		last[sv.id] = sv.version
	}
	for ch, err := range c.Follow(client.ChangeQuery{After: cursor, Collection: col.UUID}).Changes(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if ch.Kind != "unit" {
			continue
		}
		if want := last[ch.UUID] + 1; ch.Version == nil || *ch.Version != want {
			t.Fatalf("resumed follower: unit %s version %v after %d", ch.UUID, ch.Version, last[ch.UUID])
		}
		last[ch.UUID]++
	}
	for id, v := range all {
		if last[id] != v {
			t.Errorf("resumed follower: unit %s ends at %d, the feed at %d", id, last[id], v)
		}
	}
}
