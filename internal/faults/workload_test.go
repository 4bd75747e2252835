package faults

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// content is deterministic pseudo-random bytes: a seed and a size stand for
// them, so that the journal holds no bytes.
type content struct {
	seed uint64
	size int
}

func (c content) bytes() []byte {
	b := make([]byte, c.size)
	r := rand.NewChaCha8([32]byte{byte(c.seed), byte(c.seed >> 8), byte(c.seed >> 16), byte(c.seed >> 24),
		byte(c.seed >> 32), byte(c.seed >> 40), byte(c.seed >> 48), byte(c.seed >> 56)})
	_, _ = r.Read(b)
	return b
}

// stored is what an acknowledged write says a hash holds.
type stored struct {
	hash cas.Hash
	size int64
}

// journal records what the server acknowledged. It is safe for concurrent use.
type journal struct {
	mu     sync.Mutex
	blobs  map[cas.Hash]int64                // PUT and POST /blobs
	assets map[uuid.UUID]map[int64]stored    // asset → version → bytes
	units  map[uuid.UUID]map[int64]unitState // unit → version → OLX
	acks   atomic.Int64
}

type unitState struct {
	olx   string
	links []uuid.UUID
}

func newJournal() *journal {
	return &journal{
		blobs:  make(map[cas.Hash]int64),
		assets: make(map[uuid.UUID]map[int64]stored),
		units:  make(map[uuid.UUID]map[int64]unitState),
	}
}

func (j *journal) blob(h cas.Hash, size int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.blobs[h] = size
	j.acks.Add(1)
}

func (j *journal) asset(a client.Asset) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.assets[a.UUID] == nil {
		j.assets[a.UUID] = make(map[int64]stored)
	}
	j.assets[a.UUID][*a.Version] = stored{a.Hash, a.Size}
	j.acks.Add(1)
}

func (j *journal) unit(u client.Unit, olx string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.units[u.UUID] == nil {
		j.units[u.UUID] = make(map[int64]unitState)
	}
	var links []uuid.UUID
	for _, l := range u.Links {
		links = append(links, l.Target)
	}
	j.units[u.UUID][*u.Version] = unitState{olx: olx, links: links}
	j.acks.Add(1)
}

// counts returns how many blobs, asset versions and unit versions the
// journal holds.
func (j *journal) counts() (blobs, assetVersions, unitVersions int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, vs := range j.assets {
		assetVersions += len(vs)
	}
	for _, vs := range j.units {
		unitVersions += len(vs)
	}
	return len(j.blobs), assetVersions, unitVersions
}

// referencedOnly drops the blobs that only PUT or POST /blobs stored: a
// sweep with no grace may take them, as it should.
func (j *journal) referencedOnly() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.blobs = make(map[cas.Hash]int64)
}

// writerOptions shape a workload.
type writerOptions struct {
	// LargeEvery: one write in LargeEvery carries a large body (LargeSize
	// bytes, give or take); the others a few KiB.
	LargeEvery int
	LargeSize  int
	// MaxOps bounds the writes of one writer.
	MaxOps int
}

// writer uploads blobs, creates assets and commits unit versions through c
// until ctx ends or it has made opt.MaxOps writes, recording what was
// acknowledged in j. The first error ends the writer and goes to fail
// (which ignores it when the test expects it, e.g. after the kill). It
// returns the writes attempted.
func writer(ctx context.Context, c *client.Client, j *journal, seed uint64, opt writerOptions, fail func(error)) int {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	next := func() content {
		size := 512 + rng.IntN(8<<10)
		if opt.LargeEvery > 0 && rng.IntN(opt.LargeEvery) == 0 {
			size = opt.LargeSize/2 + rng.IntN(opt.LargeSize)
		}
		return content{seed: rng.Uint64(), size: size}
	}
	report := func(what string, err error) bool {
		if err == nil {
			return true
		}
		if ctx.Err() == nil {
			fail(fmt.Errorf("writer %x: %s: %w", seed, what, err))
		}
		return false
	}
	col, err := c.CreateCollection(ctx, client.NewCollection{Name: fmt.Sprintf("faults-%x", seed), Owner: "faults"})
	if !report("create collection", err) {
		return 1
	}
	var assets []client.Asset
	var units []client.Unit
	ops := 1
	for ; ops < opt.MaxOps && ctx.Err() == nil; ops++ {
		switch k := rng.IntN(10); {
		case k < 2: // PUT /blobs/{hash}
			b := next().bytes()
			h := cas.Sum(b)
			if _, err := c.PutBlob(ctx, h, client.BytesBody(b)); !report("put blob", err) {
				return ops
			}
			j.blob(h, int64(len(b)))
		case k < 3: // POST /blobs
			b := next().bytes()
			sb, err := c.PostBlob(ctx, client.BytesBody(b))
			if !report("post blob", err) {
				return ops
			}
			if sb.Hash != cas.Sum(b) || sb.Size != int64(len(b)) {
				fail(fmt.Errorf("writer %x: post blob answered %s/%d for %s/%d", seed, sb.Hash, sb.Size, cas.Sum(b), len(b)))
				return ops
			}
			j.blob(sb.Hash, sb.Size)
		case k < 5 || len(assets) == 0: // a new asset, bytes streamed
			b := next().bytes()
			a, err := c.CreateAsset(ctx, client.NewAsset{Collection: col.UUID, Name: fmt.Sprintf("asset-%d", ops)},
				client.Content{Body: client.BytesBody(b)})
			if !report("create asset", err) {
				return ops
			}
			if a.Hash != cas.Sum(b) {
				fail(fmt.Errorf("writer %x: asset %s answered hash %s for %s", seed, a.UUID, a.Hash, cas.Sum(b)))
				return ops
			}
			j.asset(a)
			assets = append(assets, a)
		case k < 6: // a new asset version over a blob named by its hash
			b := next().bytes()
			h := cas.Sum(b)
			i := rng.IntN(len(assets))
			a, _, err := c.NewAssetVersion(ctx, assets[i].UUID, client.AssetChange{},
				client.Content{Hash: h, Body: client.BytesBody(b)})
			if !report("new asset version by hash", err) {
				return ops
			}
			j.asset(a)
			assets[i] = a
		case k < 8 || len(units) == 0: // a new unit linking an asset
			olx := fmt.Sprintf("<vertical seed=\"%x\" op=\"%d\">%s</vertical>", seed, ops, randomText(rng, 200+rng.IntN(2000)))
			links := []client.Link{{Target: assets[rng.IntN(len(assets))].UUID, Kind: client.KindAsset}}
			u, err := c.CreateUnit(ctx, client.NewUnit{Collection: col.UUID, OLX: olx, Links: links})
			if !report("create unit", err) {
				return ops
			}
			j.unit(u, olx)
			units = append(units, u)
		default: // the next version of a unit
			i := rng.IntN(len(units))
			olx := fmt.Sprintf("<vertical seed=\"%x\" op=\"%d\" v=\"next\">%s</vertical>", seed, ops, randomText(rng, 200+rng.IntN(2000)))
			links := []client.Link{{Target: assets[rng.IntN(len(assets))].UUID, Kind: client.KindAsset}}
			u, _, err := c.NewUnitVersion(ctx, units[i].UUID, client.UnitChange{OLX: olx, Links: links})
			if !report("new unit version", err) {
				return ops
			}
			j.unit(u, olx)
			units[i] = u
		}
	}
	return ops
}

func randomText(rng *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz      "
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// readAll reads a download to its end and returns its hash and length.
func readAll(d *client.Download) (cas.Hash, int64, error) {
	defer d.Close()
	h := cas.NewHasher()
	n, err := io.Copy(h, d.Body)
	return h.Sum(), n, err
}

// checkJournal reads back every acknowledged write through c: every blob,
// every asset version and every unit version is there, byte-identical.
func checkJournal(ctx context.Context, t *testing.T, c *client.Client, j *journal) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for h, size := range j.blobs {
		if err := checkBlob(ctx, c, h, size); err != nil {
			t.Errorf("acknowledged blob: %v", err)
		}
	}
	for id, vs := range j.assets {
		for v, want := range vs {
			a, err := c.Asset(ctx, id, client.Version(v))
			if err != nil {
				t.Errorf("acknowledged asset %s@%d: %v", id, v, err)
				continue
			}
			if a.Hash != want.hash || a.Size != want.size {
				t.Errorf("acknowledged asset %s@%d: hash %s size %d, want %s %d", id, v, a.Hash, a.Size, want.hash, want.size)
			}
			d, err := c.AssetContent(ctx, id, client.Version(v), client.GetOptions{})
			if err != nil {
				t.Errorf("content of acknowledged asset %s@%d: %v", id, v, err)
				continue
			}
			if h, n, err := readAll(d); err != nil || h != want.hash || n != want.size {
				t.Errorf("content of acknowledged asset %s@%d: %d bytes hashing to %s (%v), want %d bytes %s", id, v, n, h, err, want.size, want.hash)
			}
		}
	}
	for id, vs := range j.units {
		for v, want := range vs {
			u, err := c.Unit(ctx, id, client.Version(v))
			if err != nil {
				t.Errorf("acknowledged unit %s@%d: %v", id, v, err)
				continue
			}
			if u.Hash != cas.Sum([]byte(want.olx)) {
				t.Errorf("acknowledged unit %s@%d: hash %s, want the OLX's %s", id, v, u.Hash, cas.Sum([]byte(want.olx)))
			}
			if len(u.Links) != len(want.links) || len(u.Links) > 0 && u.Links[0].Target != want.links[0] {
				t.Errorf("acknowledged unit %s@%d: links %v, want targets %v", id, v, u.Links, want.links)
			}
			d, err := c.UnitOLX(ctx, id, client.Version(v), client.GetOptions{})
			if err != nil {
				t.Errorf("OLX of acknowledged unit %s@%d: %v", id, v, err)
				continue
			}
			b, err := io.ReadAll(d.Body)
			d.Close()
			if err != nil || string(b) != want.olx {
				t.Errorf("OLX of acknowledged unit %s@%d: %d bytes (%v), want the %d acknowledged", id, v, len(b), err, len(want.olx))
			}
		}
	}
}

// checkBlob reads blob h through c and checks its bytes hash to h and
// number size (size < 0: any).
func checkBlob(ctx context.Context, c *client.Client, h cas.Hash, size int64) error {
	d, err := c.GetBlob(ctx, h, client.GetOptions{})
	if err != nil {
		return fmt.Errorf("GET blob %s: %w", h, err)
	}
	got, n, err := readAll(d)
	if err != nil {
		return fmt.Errorf("GET blob %s: read: %w", h, err)
	}
	if got != h || size >= 0 && n != size {
		return fmt.Errorf("GET blob %s: %d bytes hashing to %s, want %d bytes", h, n, got, size)
	}
	return nil
}

// checkListed walks every collection, unit and asset the server lists and
// checks that the bytes of each (latest version, and the blob by its hash)
// hash to what the entity says: nothing listed is half-visible. It
// returns how many entities it checked.
func checkListed(ctx context.Context, t *testing.T, c *client.Client) int {
	t.Helper()
	n := 0
	for col, err := range c.AllCollections(ctx, client.ListOptions{Limit: 1000}) {
		if err != nil {
			t.Errorf("list collections: %v", err)
			return n
		}
		for u, err := range c.AllUnits(ctx, col.UUID, client.ListOptions{Limit: 1000}) {
			if err != nil {
				t.Errorf("list units of %s: %v", col.UUID, err)
				break
			}
			n++
			if err := checkBlob(ctx, c, u.Hash, u.Size); err != nil {
				t.Errorf("listed unit %s: %v", u.UUID, err)
			}
		}
		for a, err := range c.AllAssets(ctx, col.UUID, client.ListOptions{Limit: 1000}) {
			if err != nil {
				t.Errorf("list assets of %s: %v", col.UUID, err)
				break
			}
			n++
			if err := checkBlob(ctx, c, a.Hash, a.Size); err != nil {
				t.Errorf("listed asset %s: %v", a.UUID, err)
			}
			d, err := c.AssetContent(ctx, a.UUID, client.Latest, client.GetOptions{})
			if err != nil {
				t.Errorf("content of listed asset %s: %v", a.UUID, err)
				continue
			}
			if h, size, err := readAll(d); err != nil || h != a.Hash || size != a.Size {
				t.Errorf("content of listed asset %s: %d bytes hashing to %s (%v), want %d bytes %s", a.UUID, size, h, err, a.Size, a.Hash)
			}
		}
	}
	return n
}

// load runs writers against c until stop is closed; every acknowledged
// write goes to j. It returns a function that waits for the writers and
// returns the writes they attempted.
func load(c *client.Client, j *journal, writers int, seed uint64, opt writerOptions, stop <-chan struct{}, fail func(error)) func() int {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stop
		cancel()
	}()
	var wg sync.WaitGroup
	var total atomic.Int64
	for i := range writers {
		wg.Go(func() {
			total.Add(int64(writer(ctx, c, j, seed+uint64(i)*0x9e3779b97f4a7c15, opt, fail)))
		})
	}
	return func() int {
		wg.Wait()
		cancel()
		return int(total.Load())
	}
}

// errorsCollector gathers the errors of writers for the test goroutine to
// report (t.Errorf from a goroutine that outlives the test would panic).
type errorsCollector struct {
	mu   sync.Mutex
	errs []error
}

func (e *errorsCollector) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) < 20 {
		e.errs = append(e.errs, err)
	}
}

func (e *errorsCollector) report(t *testing.T, what string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		t.Errorf("%s: %v", what, err)
	}
	e.errs = nil
}

// waitAcks waits until the journal has grown by n acknowledgements or d
// passes.
func waitAcks(j *journal, from int64, n int64, d time.Duration) error {
	return waitFor(d, func() error {
		if got := j.acks.Load() - from; got < n {
			return fmt.Errorf("%d acknowledged writes, want %d", got, n)
		}
		return nil
	})
}
