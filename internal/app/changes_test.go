package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/internal/testenv"
)

// TestChangesRetention: on both deployments, a sweep prunes the feed's
// history older than --changes-retention; a cursor inside it is 410 gone
// (client.ErrGone), later changes are still served, and the feed's metrics
// are on /metrics.
func TestChangesRetention(t *testing.T) {
	for _, d := range deployments() {
		t.Run(d.name, func(t *testing.T) {
			var offset atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			cfg := d.cfg(t)
			cfg.Now = now
			a := openApp(t, cfg)
			base := serve(t, a)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := client.New(base, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			start, err := c.ChangesHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateCollection(ctx, client.NewCollection{Name: "old"}); err != nil {
				t.Fatal(err)
			}
			offset.Store(int64(8 * 24 * time.Hour))
			young, err := c.CreateCollection(ctx, client.NewCollection{Name: "young"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.GC.Sweep(ctx, gc.Request{}); err != nil {
				t.Fatalf("sweep: %v", err)
			}

			_, err = c.Changes(ctx, client.ChangeQuery{After: start})
			if !errors.Is(err, client.ErrGone) || client.StatusOf(err) != http.StatusGone {
				t.Fatalf("Changes after a pruned change: %v, want 410 gone", err)
			}
			var followErr error
			for _, err := range c.Follow(client.ChangeQuery{After: start}).Changes(ctx) {
				followErr = err
			}
			if !errors.Is(followErr, client.ErrGone) {
				t.Errorf("Follower from a pruned cursor: %v, want ErrGone", followErr)
			}
			p, err := c.Changes(ctx, client.ChangeQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) != 1 || p.Items[0].UUID != young.UUID {
				t.Fatalf("the feed after pruning: %+v, want the young collection alone", p.Items)
			}

			resp, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, m := range []string{"blockstore_changes_written_total 2", "blockstore_changes_followers_waiting 0",
				"blockstore_changes_follower_lag_seconds_count"} {
				if !strings.Contains(string(body), m) {
					t.Errorf("/metrics lacks %q", m)
				}
			}
		})
	}
}

// TestChangesReadToken: a read-only token may follow the feed.
func TestChangesReadToken(t *testing.T) {
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Tokens: Tokens{Write: "write-token", Read: "read-token"}}
	base := serve(t, openApp(t, cfg))
	ctx := context.Background()
	w, _ := client.New(base, client.Options{Token: "write-token"})
	r, _ := client.New(base, client.Options{Token: "read-token"})
	col, err := w.CreateCollection(ctx, client.NewCollection{Name: "read"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Changes(ctx, client.ChangeQuery{})
	if err != nil || len(p.Items) != 1 || p.Items[0].UUID != col.UUID {
		t.Fatalf("Changes with a read token: %+v, %v", p.Items, err)
	}
	if _, err := r.ChangesHead(ctx); err != nil {
		t.Fatalf("ChangesHead with a read token: %v", err)
	}
}

// TestChangesAcrossReplicas: 8 writers commit unit versions through one
// replica for a bounded time while a follower long-polls the other: the
// follower sees every acknowledged version once, each unit's in order, and
// a waiting follower wakes within a second of a commit.
func TestChangesAcrossReplicas(t *testing.T) {
	url := testenv.NewDatabase(t)
	s3 := testenv.MinIO(t)
	cfg := Config{DatabaseURL: url, S3: s3Config(s3, "feed-"+randomHex(4))}
	wa, ra := openApp(t, cfg), openApp(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, _ := client.New(serve(t, wa), client.Options{})
	r, _ := client.New(serve(t, ra), client.Options{})

	col, err := w.CreateCollection(ctx, client.NewCollection{Name: "replicated"})
	if err != nil {
		t.Fatal(err)
	}
	head, err := r.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	follower := r.Follow(client.ChangeQuery{After: head, Collection: col.UUID, Wait: 5 * time.Second})
	follower.Forever = true

	// acked[unit] is the last version each writer was told was committed.
	const writers = 8
	var (
		mu    sync.Mutex
		acked = map[uuid.UUID]int64{}
		total atomic.Int64
	)
	writing, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := w.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: fmt.Sprintf("w%d", i), OLX: "<v1/>"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked[u.UUID] = 1
			mu.Unlock()
			total.Add(1)
			for v := 2; writing.Err() == nil && v < 10000; v++ {
				nu, created, err := w.NewUnitVersion(ctx, u.UUID, client.UnitChange{OLX: fmt.Sprintf("<v%d/>", v)})
				if err != nil || !created {
					t.Errorf("writer %d, version %d: %v (created %v)", i, v, err, created)
					return
				}
				mu.Lock()
				acked[u.UUID] = *nu.Version
				mu.Unlock()
				total.Add(1)
			}
		}()
	}

	// The follower reads while the writers write; once they are done it
	// goes on from its cursor until it has seen every acknowledged version
	// (bounded by ctx).
	seen := map[uuid.UUID]int64{}
	var n int64
	apply := func(ch client.Change) error {
		if ch.Kind != "unit" || ch.Version == nil {
			return fmt.Errorf("unexpected change %+v", ch)
		}
		if want := seen[ch.UUID] + 1; *ch.Version != want {
			return fmt.Errorf("unit %s: version %d listed after %d (want %d: once each, in order)", ch.UUID, *ch.Version, seen[ch.UUID], want)
		}
		seen[ch.UUID] = *ch.Version
		n++
		return nil
	}
	fctx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() {
		for ch, err := range follower.Changes(fctx) {
			if err == nil {
				err = apply(ch)
			}
			if err != nil {
				followed <- err
				return
			}
		}
		followed <- nil
	}()
	wg.Wait()
	stopFollowing()
	if err := <-followed; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("follower: %v", err)
	}
	caughtUp := func() bool {
		for id, v := range acked {
			if seen[id] < v {
				return false
			}
		}
		return true
	}
	follower = r.Follow(client.ChangeQuery{After: follower.Cursor(), Collection: col.UUID, Wait: 5 * time.Second})
	follower.Forever = true
	if !caughtUp() {
		for ch, err := range follower.Changes(ctx) {
			if err == nil {
				err = apply(ch)
			}
			if err != nil {
				t.Fatalf("follower: %v", err)
			}
			if caughtUp() {
				break
			}
		}
	}
	if n != total.Load() {
		t.Errorf("the follower saw %d changes, the writers were acknowledged %d", n, total.Load())
	}
	t.Logf("%d versions by %d writers through one replica, followed on the other", n, writers)

	// A follower waiting on the reading replica wakes within a second of a
	// commit through the writing one.
	for i := range 3 {
		cur := follower.Cursor()
		type result struct {
			p   client.ChangePage
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			p, err := r.Changes(ctx, client.ChangeQuery{After: cur, Wait: 20 * time.Second})
			done <- result{p, err, time.Now()}
		}()
		if _, err := w.CreateCollection(ctx, client.NewCollection{Name: fmt.Sprint("wake ", i)}); err != nil {
			t.Fatal(err)
		}
		ack := time.Now()
		res := <-done
		if res.err != nil || len(res.p.Items) == 0 {
			t.Fatalf("long-poll: %+v, %v", res.p, res.err)
		}
		if lag := res.at.Sub(ack); lag > time.Second {
			t.Errorf("the long-poll answered %v after the commit's acknowledgement, want within 1s", lag)
		}
		follower = r.Follow(client.ChangeQuery{After: res.p.NextCursor})
	}
}
