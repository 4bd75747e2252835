package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/internal/testenv"
)

// TestReplicas runs two servers over one PostgreSQL database and one bucket,
// as two replicas behind a load balancer: what one writes, the other reads
// at once, in both directions; and their migrations may run together.
func TestReplicas(t *testing.T) {
	url := testenv.NewDatabase(t)
	s3 := testenv.MinIO(t)
	cfg := Config{DatabaseURL: url, S3: s3Config(s3, "replicas-"+randomHex(4))}

	// Both replicas start at once: migrations and bucket creation race.
	apps := make([]*App, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			apps[i], errs[i] = Open(context.Background(), cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { apps[i].Close() })
	}
	ctx := context.Background()
	clients := make([]*client.Client, 2)
	for i, a := range apps {
		c, err := client.New(serve(t, a), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}

	for _, dir := range []struct{ w, r int }{{0, 1}, {1, 0}} {
		t.Run(fmt.Sprintf("write %d read %d", dir.w, dir.r), func(t *testing.T) {
			w, r := clients[dir.w], clients[dir.r]
			col, err := w.CreateCollection(ctx, client.NewCollection{Name: "replica " + randomHex(3)})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Collection(ctx, col.UUID, client.Latest); err != nil || got.Name != col.Name {
				t.Fatalf("collection through the other replica: %+v, %v", got, err)
			}
			olx := "<html>replica " + randomHex(8) + "</html>"
			u, err := w.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "u.xml", OLX: olx})
			if err != nil {
				t.Fatal(err)
			}
			// The reader caches OLX by hash; a new version has a new hash,
			// so the cache can never serve stale content.
			for v := 0; v < 3; v++ {
				got, err := download(r.UnitOLX(ctx, u.UUID, client.Latest, client.GetOptions{}))
				if err != nil || string(got) != olx {
					t.Fatalf("OLX through the other replica: %q, %v; want %q", got, err, olx)
				}
				olx = fmt.Sprintf("<html>replica version %d %s</html>", v+2, randomHex(4))
				if _, _, err := w.NewUnitVersion(ctx, u.UUID, client.UnitChange{OLX: olx}); err != nil {
					t.Fatal(err)
				}
			}
			data := bytes.Repeat([]byte("asset bytes "), 10000)
			a, err := w.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: "a.bin", MediaType: "application/x-test"},
				client.Content{Body: client.BytesBody(data)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := download(r.AssetContent(ctx, a.UUID, client.Latest, client.GetOptions{}))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("asset through the other replica: %d bytes, %v", len(got), err)
			}
			missing, err := r.MissingBlobs(ctx, []cas.Hash{a.Hash})
			if err != nil || len(missing) != 0 {
				t.Fatalf("missing through the other replica: %v, %v", missing, err)
			}
		})
	}

	t.Run("one sweep at a time across replicas", func(t *testing.T) {
		unlock, err := apps[0].Index.TryLockGC(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		resp, err := http.Post(serveURL(t, apps[1])+"/api/v1/gc", "application/json", strings.NewReader(`{"dry_run":true}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("sweep on replica 1 while replica 0 holds the lock: %d %s, want 409", resp.StatusCode, body)
		}
	})
}

func serveURL(t *testing.T, a *App) string { return serve(t, a) }

func download(d *client.Download, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer d.Body.Close()
	return io.ReadAll(d.Body)
}
