package storecopy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockstore/blockstore/client"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/internal/app"
)

// TestEmbeddedToProductionAndBack: an embedded deployment holding an Open
// edX course with new versions and drafts is copied to PostgreSQL + MinIO
// and reads the same through the API; a second run creates nothing;
// verify passes; and the copy copied back into a new embedded deployment
// reads the same again.
func TestEmbeddedToProductionAndBack(t *testing.T) {
	ctx := context.Background()
	src := open(t, embedded(t))
	srcURL := serve(t, src)
	co := fillCourse(t, ctx, newClient(t, srcURL))

	dst := open(t, production(t))
	dstURL := serve(t, dst)
	sum, err := Run(ctx, src, dst, Options{Jobs: 3})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if sum.EntitiesCreated != sum.EntitiesTotal || sum.Blobs == 0 || sum.BytesSent == 0 || sum.Versions <= sum.EntitiesTotal {
		t.Fatalf("first copy: %+v", sum)
	}
	wantSame(t, "embedded → PostgreSQL + MinIO", srcURL, dstURL, co.draftOnly)
	verify(t, dst)

	again, err := Run(ctx, src, dst, Options{})
	if err != nil {
		t.Fatalf("second copy: %v", err)
	}
	if again.Changed() || again.BlobsSkipped != sum.Blobs || again.EntitiesDone != sum.EntitiesTotal {
		t.Fatalf("a second copy of an unchanged source: %+v (first %+v)", again, sum)
	}

	back := open(t, embedded(t))
	backURL := serve(t, back)
	if _, err := Run(ctx, dst, back, Options{}); err != nil {
		t.Fatalf("copy back: %v", err)
	}
	wantSame(t, "PostgreSQL + MinIO → embedded", dstURL, backURL, co.draftOnly)
	verify(t, back)
	// The copy keeps the rules for what comes next: the next version of
	// a copied unit is numbered after the copied ones.
	u, _, err := newClient(t, backURL).NewUnitVersion(ctx, co.units[0], client.UnitChange{OLX: "<p>after the copy</p>"})
	if err != nil || u.Version == nil || *u.Version != 3 {
		t.Fatalf("a version after the copy: %+v, %v; want version 3", u, err)
	}
}

// TestOnlineCopyConverges: a PostgreSQL + MinIO source keeps taking writes
// while it is copied to another; once writes stop, a second run copies
// what changed (new versions, drafts, deletions) and the two read the same;
// a third run creates nothing.
func TestOnlineCopyConverges(t *testing.T) {
	ctx := context.Background()
	src := open(t, production(t))
	srcURL := serve(t, src)
	c := newClient(t, srcURL)
	co := fillCourse(t, ctx, c)
	dst := open(t, production(t))
	dstURL := serve(t, dst)

	// Writers run during the first copy: new versions and drafts of the
	// course's units, new units, a deletion.
	var (
		wg      sync.WaitGroup
		werr    error
		started = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		for i := range 40 {
			id := co.units[i%len(co.units)]
			var err error
			switch i % 4 {
			case 0, 1:
				_, _, err = c.NewUnitVersion(ctx, id, client.UnitChange{OLX: fmt.Sprintf("<p>online %d</p>", i)})
			case 2:
				_, err = c.PutUnitDraft(ctx, id, client.UnitChange{OLX: fmt.Sprintf("<p>draft %d</p>", i)})
			case 3:
				_, err = c.CreateUnit(ctx, client.NewUnit{Collection: co.collection, Name: fmt.Sprintf("online/%d.xml", i), OLX: "<p>new</p>"})
			}
			if err != nil {
				werr = err
				return
			}
		}
	}()
	<-started
	if _, err := Run(ctx, src, dst, Options{Jobs: 2}); err != nil {
		t.Fatalf("copy while writes run: %v", err)
	}
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if err := c.DeleteUnit(ctx, co.draftOnly); err != nil {
		t.Fatalf("delete at the source: %v", err)
	}
	sum, err := Run(ctx, src, dst, Options{})
	if err != nil {
		t.Fatalf("second copy: %v", err)
	}
	if sum.EntitiesDeleted != 1 {
		t.Fatalf("second copy deleted %d entities, want 1 (%+v)", sum.EntitiesDeleted, sum)
	}
	wantSame(t, "after writes stopped", srcURL, dstURL, co.draftOnly)
	verify(t, dst)
	third, err := Run(ctx, src, dst, Options{})
	if err != nil || third.Changed() {
		t.Fatalf("third copy: %+v, %v; want no change", third, err)
	}
}

// TestInterruptedCopyResumes: a copy cancelled midway leaves whole
// entities and present blobs; the next run sends only what had not
// arrived and ends with the same content.
func TestInterruptedCopyResumes(t *testing.T) {
	ctx := context.Background()
	src := open(t, embedded(t))
	srcURL := serve(t, src)
	co := fillCourse(t, ctx, newClient(t, srcURL))
	dst := open(t, production(t))
	dstURL := serve(t, dst)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, err := Run(cctx, src, dst, Options{Jobs: 1, Interval: time.Millisecond, Progress: func(s Summary) {
		if s.Blobs >= 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %+v, %v; want context.Canceled", first, err)
	}
	rest, err := Run(ctx, src, dst, Options{})
	if err != nil {
		t.Fatalf("resumed copy: %v", err)
	}
	whole, err := Run(ctx, src, open(t, production(t)), Options{})
	if err != nil {
		t.Fatalf("uninterrupted copy: %v", err)
	}
	if first.Blobs == 0 || rest.Blobs+first.Blobs > whole.Blobs || rest.BlobsSkipped == 0 {
		t.Fatalf("the resumed copy sent again what had arrived: first %+v, rest %+v, whole %+v", first, rest, whole)
	}
	wantSame(t, "resumed copy", srcURL, dstURL, co.draftOnly)
	verify(t, dst)
}

// TestRefusesDestination: a destination that holds anything but an
// earlier copy of this source is refused before anything is written.
func TestRefusesDestination(t *testing.T) {
	ctx := context.Background()
	src := open(t, embedded(t))
	fillCourse(t, ctx, newClient(t, serve(t, src)))

	used := open(t, production(t))
	usedClient := newClient(t, serve(t, used))
	if _, err := usedClient.CreateCollection(ctx, client.NewCollection{Name: "its own"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, src, used, Options{}); !errors.Is(err, ErrDestination) {
		t.Fatalf("copy into a used deployment: %v, want ErrDestination", err)
	}
	if rec, _ := used.Engine().(index.Importer).CopySource(ctx); rec != "" {
		t.Fatalf("a refused copy recorded source %q", rec)
	}

	// A copy of one source refuses another.
	dst := open(t, production(t))
	if _, err := Run(ctx, src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	other := open(t, embedded(t))
	if _, err := Run(ctx, other, dst, Options{}); !errors.Is(err, ErrDestination) {
		t.Fatalf("copy of another source into a copy: %v, want ErrDestination", err)
	}
}

// TestSourceName: a source is named without its secrets.
func TestSourceName(t *testing.T) {
	cfg := app.Config{DatabaseURL: "postgres://u:hunter2@db.example:5432/bs", DataDir: "x"}
	cfg.S3.Endpoint, cfg.S3.Bucket, cfg.S3.SecretKey = "s3.example", "b", "s3cret"
	got := describe(cfg)
	for _, secret := range []string{"hunter2", "s3cret"} {
		if strings.Contains(got, secret) {
			t.Fatalf("describe = %q shows a secret", got)
		}
	}
}

// TestNameTakenFromADeletedEntity: at the source a unit is deleted and
// another takes its name, and a collection is deleted with its units; the
// refresh deletes the first unit at the destination before the second can
// take the name there, and the collection with its units.
func TestNameTakenFromADeletedEntity(t *testing.T) {
	ctx := context.Background()
	src := open(t, embedded(t))
	srcURL := serve(t, src)
	c := newClient(t, srcURL)
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "names"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "x.xml", OLX: "<p>a</p>"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: "y.xml", OLX: "<p>b</p>"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := c.CreateCollection(ctx, client.NewCollection{Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUnit(ctx, client.NewUnit{Collection: gone.UUID, Name: "x.xml", OLX: "<p>gone</p>"}); err != nil {
		t.Fatal(err)
	}
	dst := open(t, embedded(t))
	dstURL := serve(t, dst)
	if _, err := Run(ctx, src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUnit(ctx, a.UUID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCollection(ctx, gone.UUID, true); err != nil {
		t.Fatal(err)
	}
	name := "x.xml"
	if _, _, err := c.NewUnitVersion(ctx, b.UUID, client.UnitChange{OLX: "<p>b2</p>", Name: &name}); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, src, dst, Options{})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if sum.EntitiesDeleted != 3 || sum.EntitiesUpdated != 1 {
		t.Fatalf("refresh: %+v", sum)
	}
	wantSame(t, "after the name moved", srcURL, dstURL)
}

// TestSwappedNames: two units that swapped names at the source between two
// runs; no order of single imports moves them, one transaction does.
func TestSwappedNames(t *testing.T) {
	ctx := context.Background()
	src := open(t, embedded(t))
	srcURL := serve(t, src)
	c := newClient(t, srcURL)
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: "swap"})
	if err != nil {
		t.Fatal(err)
	}
	var ids [2]client.Unit
	for i, name := range []string{"p.xml", "q.xml"} {
		if ids[i], err = c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, Name: name, OLX: "<p>" + name + "</p>"}); err != nil {
			t.Fatal(err)
		}
	}
	dst := open(t, embedded(t))
	dstURL := serve(t, dst)
	if _, err := Run(ctx, src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	// p.xml and q.xml change hands, through a third name.
	for _, step := range []struct {
		unit int
		name string
	}{{0, "tmp.xml"}, {1, "p.xml"}, {0, "q.xml"}} {
		name := step.name
		if _, _, err := c.NewUnitVersion(ctx, ids[step.unit].UUID, client.UnitChange{OLX: "<p>now " + name + "</p>", Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(ctx, src, dst, Options{}); err != nil {
		t.Fatalf("copy after the swap: %v", err)
	}
	wantSame(t, "after the swap", srcURL, dstURL)
}
