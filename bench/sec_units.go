package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/client"
)

// unitStore is a target seen as a store of small OLX documents: Blockstore
// units (with links, read by uuid, resolved many at once) or MinIO objects
// (the same bytes, read one GET each).
type unitStore interface {
	// create stores unit i with its OLX and returns what getOLX takes.
	create(ctx context.Context, i int, olx string) (string, error)
	// readOLX copies the OLX of what create returned to w (through buf).
	readOLX(ctx context.Context, id string, w io.Writer, buf []byte) (int64, error)
	// loadMany fetches the given units with their OLX, the way a course is
	// loaded: one POST /resolve, or one GET per object from many clients.
	loadMany(ctx context.Context, ids []string) error
	// serverPID is the process that serves the store.
	serverPID() int
	Close() error
}

// unitLinks is how many links each unit has: three assets and two units.
const unitLinks = 5

type blockstoreUnits struct {
	d       *deployment
	coll    uuid.UUID
	assets  []uuid.UUID
	leaves  []uuid.UUID
	olxSize int
}

func (h *harness) openUnits(ctx context.Context, t Target, run int) (unitStore, error) {
	if t == MinIO {
		bucket, err := h.minio.newBucket(ctx, "bench-units")
		if err != nil {
			return nil, err
		}
		return &minioUnits{m: h.minio, bucket: bucket, clients: h.sz.ReadClients, olxSize: h.sz.UnitBytes}, nil
	}
	d, err := h.deploy(ctx, t, "units")
	if err != nil {
		return nil, err
	}
	b := &blockstoreUnits{d: d, olxSize: h.sz.UnitBytes}
	if err := b.setup(ctx, seedOf("unit-targets", run, 0)); err != nil {
		d.Close()
		return nil, err
	}
	return b, nil
}

// setup creates the collection and the link targets: 8 small assets and 8
// units without links.
func (b *blockstoreUnits) setup(ctx context.Context, seed uint64) error {
	c := b.d.srv.Client
	coll, err := c.CreateCollection(ctx, client.NewCollection{Name: "bench units"})
	if err != nil {
		return fmt.Errorf("bench: create collection: %w", err)
	}
	b.coll = coll.UUID
	for i := range 8 {
		a, err := c.CreateAsset(ctx, client.NewAsset{Collection: b.coll, Name: fmt.Sprintf("static/figure-%d.png", i), MediaType: "image/png"},
			client.Content{Body: newContent(seed+uint64(i), 2*kib).body()})
		if err != nil {
			return fmt.Errorf("bench: create link target asset: %w", err)
		}
		b.assets = append(b.assets, a.UUID)
		u, err := c.CreateUnit(ctx, client.NewUnit{Collection: b.coll, Name: fmt.Sprintf("html/leaf-%d.xml", i), OLX: olx(seed, -1-i, b.olxSize)})
		if err != nil {
			return fmt.Errorf("bench: create link target unit: %w", err)
		}
		b.leaves = append(b.leaves, u.UUID)
	}
	return nil
}

func (b *blockstoreUnits) create(ctx context.Context, i int, doc string) (string, error) {
	links := []client.Link{
		{Target: b.assets[i%8], Kind: client.KindAsset},
		{Target: b.assets[(i+3)%8], Kind: client.KindAsset},
		{Target: b.assets[(i+5)%8], Kind: client.KindAsset},
		{Target: b.leaves[i%8], Kind: client.KindUnit},
		{Target: b.leaves[(i+1)%8], Kind: client.KindUnit},
	}
	u, err := b.d.srv.Client.CreateUnit(ctx, client.NewUnit{Collection: b.coll, Name: fmt.Sprintf("vertical/%06d.xml", i), OLX: doc, Links: links})
	if err != nil {
		return "", fmt.Errorf("bench: create unit %d: %w", i, err)
	}
	if len(u.Links) != unitLinks {
		return "", fmt.Errorf("bench: unit %d has %d links, want %d", i, len(u.Links), unitLinks)
	}
	return u.UUID.String(), nil
}

// syncCounts reads the embedded engine's WAL syncs and the commits they
// made durable (index.SyncStats on /metrics).
func (b *blockstoreUnits) syncCounts(ctx context.Context) (syncs, commits float64, err error) {
	if syncs, err = metricValue(ctx, b.d.srv.URL, "blockstore_index_wal_syncs_total"); err != nil {
		return 0, 0, err
	}
	commits, err = metricValue(ctx, b.d.srv.URL, "blockstore_index_synced_commits_total")
	return syncs, commits, err
}

func (b *blockstoreUnits) readOLX(ctx context.Context, id string, w io.Writer, buf []byte) (int64, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return 0, err
	}
	d, err := b.d.srv.Client.UnitOLX(ctx, u, client.Latest, client.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("bench: GET OLX of %s: %w", id, err)
	}
	defer d.Close()
	return io.CopyBuffer(w, d.Body, buf)
}

func (b *blockstoreUnits) loadMany(ctx context.Context, ids []string) error {
	res, err := b.d.srv.Client.Resolve(ctx, ids, true)
	if err != nil {
		return fmt.Errorf("bench: resolve %d units: %w", len(ids), err)
	}
	if len(res.Items) != len(ids) || len(res.Missing) != 0 {
		return fmt.Errorf("bench: resolve of %d units gave %d items, %d missing", len(ids), len(res.Items), len(res.Missing))
	}
	for _, it := range res.Items {
		if it.OLX == nil || len(*it.OLX) != b.olxSize {
			return fmt.Errorf("bench: resolve item %s came without its %d bytes of OLX", it.Ref, b.olxSize)
		}
	}
	return nil
}

func (b *blockstoreUnits) serverPID() int { return b.d.srv.PID }

func (b *blockstoreUnits) Close() error { return b.d.Close() }

type minioUnits struct {
	m       *minioServer
	bucket  string
	clients int
	olxSize int
}

func (o *minioUnits) create(ctx context.Context, i int, doc string) (string, error) {
	key := fmt.Sprintf("vertical/%06d.xml", i)
	_, err := o.m.Client.PutObject(ctx, o.bucket, key, strings.NewReader(doc), int64(len(doc)), minio.PutObjectOptions{ContentType: "application/xml"})
	if err != nil {
		return "", fmt.Errorf("bench: MinIO PutObject %s: %w", key, err)
	}
	return key, nil
}

func (o *minioUnits) readOLX(ctx context.Context, key string, w io.Writer, buf []byte) (int64, error) {
	obj, err := o.m.Client.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("bench: MinIO GetObject %s: %w", key, err)
	}
	defer obj.Close()
	n, err := io.CopyBuffer(w, obj, buf)
	if err != nil {
		return n, fmt.Errorf("bench: MinIO GetObject %s: %w", key, err)
	}
	return n, nil
}

func (o *minioUnits) loadMany(ctx context.Context, keys []string) error {
	return parallel(ctx, len(keys), o.clients, func(ctx context.Context, i int, buf []byte) error {
		n, err := o.readOLX(ctx, keys[i], discard{}, buf)
		if err == nil && n != int64(o.olxSize) {
			err = fmt.Errorf("bench: MinIO GET %s gave %d bytes of %d", keys[i], n, o.olxSize)
		}
		return err
	})
}

func (o *minioUnits) serverPID() int { return o.m.PID }

func (o *minioUnits) Close() error { return o.m.removeBucket(context.Background(), o.bucket) }

// unitsSection: units of OLX with links created by several clients, their
// OLX read by many, and resolves of many at once; on MinIO alone the same
// bytes as objects, read one GET each.
func (h *harness) unitsSection(ctx context.Context) {
	sz := h.sz
	const gw, gr = "units: ingest", "units: reads"
	create := fmt.Sprintf("%s units of %s OLX with %d links, %d clients", count(sz.Units), binaryUnits(int64(sz.UnitBytes)), unitLinks, sz.UnitClients)
	get := fmt.Sprintf("GET /units/{uuid}/olx, %d clients", sz.ReadClients)
	refs := min(sz.ResolveRefs, sz.Units)
	resolve := fmt.Sprintf("POST /resolve of %s units with OLX", count(refs))
	h.rep.row(gw, create, "units/s")
	h.rep.row(gw, create+", commits per WAL sync", "commits")
	for _, r := range []struct{ n, u string }{{get, "req/s"}, {get + ", p50", "ms"}, {get + ", p99", "ms"}, {resolve + ", p50", "ms"}, {resolve + ", p99", "ms"}} {
		h.rep.row(gr, r.n, r.u)
	}
	for _, r := range []string{cpuServer, cpuDatabase, cpuClients, cpuAll, cpuLeft} {
		h.rep.row(groupUnitCPU, r, "µs")
	}
	limFsync, limReq, limP50, limP99 := newSeries(sz.Runs), newSeries(sz.Runs), newSeries(sz.Runs), newSeries(sz.Runs)
	limPostCPU := newSeries(sz.Runs)
	for run := range sz.Runs {
		f, err := fdatasyncRate(h.root, sz.FsyncOps)
		if err != nil {
			h.fail("units", Embedded, run, err)
			continue
		}
		bare, err := bareHTTP(ctx, sz.BareRequests, sz.ReadClients)
		if err != nil {
			h.fail("units", Embedded, run, err)
			continue
		}
		limFsync[run], limReq[run], limP50[run], limP99[run] = f, bare.perSecond, ms(bare.p50), ms(bare.p99)
		body, err := createRequest(olx(seedOf("units", run, 0), 0, sz.UnitBytes))
		if err != nil {
			h.fail("units", Embedded, run, err)
			continue
		}
		post, postCPU, err := barePOST(ctx, sz.BareRequests, sz.UnitClients, body)
		if err != nil {
			h.fail("units", Embedded, run, err)
			continue
		}
		limPostCPU[run] = postCPU
		h.logf("units run %d: bare Go HTTP POST of a create's %d-byte request, %d clients: %.0f req/s, %.0f µs of CPU each", run+1, len(body), sz.UnitClients, post.perSecond, postCPU)
		for _, t := range rotate([]Target{Embedded, Postgres, MinIO}, run) {
			if err := h.unitsRun(ctx, run, t, create, get, resolve); err != nil {
				h.fail("units", t, run, err)
			}
		}
	}
	h.rep.limit(gw, create, "units/s", "4 KiB write+fdatasync, 1 writer", limFsync)
	h.rep.limit(gr, get, "req/s", "bare Go HTTP", limReq)
	h.rep.limit(gr, get+", p50", "ms", "bare Go HTTP", limP50)
	h.rep.limit(gr, get+", p99", "ms", "bare Go HTTP", limP99)
	h.unitCPULimits(limFsync, limPostCPU)
	h.unitRatios(gw, gr, create, get, resolve, limFsync)
}

// unitRatios adds the ratios that keeping small content inline aims
// at, computed run by run from the values of the same run: unit commits
// against the disk's 4 KiB write+fdatasync rate (targets: embedded ≥ 2.0,
// PostgreSQL + MinIO ≥ 0.5), PostgreSQL + MinIO OLX reads against embedded
// (≥ 0.7, p99 < 10 ms), and its resolve p50 against embedded (≤ 1.5).
func (h *harness) unitRatios(gw, gr, create, get, resolve string, fdatasync Series) {
	const g = "units: ratios"
	values := func(group, name string, t Target) Series {
		if row := h.rep.Row(group, name); row != nil && row.Values[t] != nil {
			return row.Values[t]
		}
		return newSeries(h.sz.Runs)
	}
	put := func(name string, t Target, v Series) {
		row := h.rep.row(g, name, "×")
		row.Values[t] = v
		h.logf("%s, %s: median %.2f", name, t, v.Median())
	}
	commits := create + " ÷ 4 KiB write+fdatasync (embedded ≥ 2.0, postgres+minio ≥ 0.5)"
	put(commits, Embedded, ratio(values(gw, create, Embedded), fdatasync))
	put(commits, Postgres, ratio(values(gw, create, Postgres), fdatasync))
	put(get+": postgres+minio ÷ embedded req/s (≥ 0.7)", Postgres,
		ratio(values(gr, get, Postgres), values(gr, get, Embedded)))
	put(resolve+": postgres+minio ÷ embedded p50 (≤ 1.5)", Postgres,
		ratio(values(gr, resolve+", p50", Postgres), values(gr, resolve+", p50", Embedded)))
}

func (h *harness) unitsRun(ctx context.Context, run int, t Target, create, get, resolve string) error {
	const gw, gr = "units: ingest", "units: reads"
	sz := h.sz
	us, err := h.openUnits(ctx, t, run)
	if err != nil {
		return err
	}
	defer us.Close()

	seed := seedOf("units", run, 0)
	docs := make([]string, sz.Units)
	for i := range docs {
		docs[i] = olx(seed, i, sz.UnitBytes)
	}
	ids := make([]string, sz.Units)
	// The embedded engine says how many commits shared each WAL sync.
	bs, grouped := us.(*blockstoreUnits)
	grouped = grouped && t == Embedded
	var syncs0, commits0 float64
	if grouped {
		if syncs0, commits0, err = bs.syncCounts(ctx); err != nil {
			return err
		}
	}
	cpu, err := startCPUPerOp(us.serverPID(), t == Postgres)
	if err != nil {
		return err
	}
	start := time.Now()
	err = parallel(ctx, sz.Units, sz.UnitClients, func(ctx context.Context, i int, _ []byte) error {
		var err error
		ids[i], err = us.create(ctx, i, docs[i])
		return err
	})
	if err != nil {
		return err
	}
	v := rate(float64(sz.Units), time.Since(start))
	if err := cpu.record(h, t, run, sz.Units); err != nil {
		return err
	}
	h.rep.set(gw, create, "units/s", t, run, v)
	h.logf("units run %d, %s: %s: %.0f units/s", run+1, t, create, v)
	if grouped {
		syncs, commits, err := bs.syncCounts(ctx)
		if err != nil {
			return err
		}
		if syncs > syncs0 {
			per := (commits - commits0) / (syncs - syncs0)
			h.rep.set(gw, create+", commits per WAL sync", "commits", t, run, per)
			h.logf("units run %d, %s: %.1f commits per WAL sync", run+1, t, per)
		}
	}

	// Warm up (caches, connections), checking every document once.
	err = parallel(ctx, sz.Units, sz.ReadClients, func(ctx context.Context, i int, buf []byte) error {
		var w bytes.Buffer
		n, err := us.readOLX(ctx, ids[i], &w, buf)
		if err == nil && (n != int64(sz.UnitBytes) || w.String() != docs[i]) {
			err = fmt.Errorf("bench: OLX of unit %d came back different (%d bytes)", i, n)
		}
		return err
	})
	if err != nil {
		return err
	}
	st, err := loadRequests(ctx, sz.OLXRequests, sz.ReadClients, func(ctx context.Context, i int) error {
		buf := make([]byte, 8*kib)
		n, err := us.readOLX(ctx, ids[(i*7919)%sz.Units], discard{}, buf)
		if err == nil && n != int64(sz.UnitBytes) {
			err = fmt.Errorf("bench: OLX GET gave %d bytes of %d", n, sz.UnitBytes)
		}
		return err
	})
	if err != nil {
		return err
	}
	h.rep.set(gr, get, "req/s", t, run, st.perSecond)
	h.rep.set(gr, get+", p50", "ms", t, run, ms(st.p50))
	h.rep.set(gr, get+", p99", "ms", t, run, ms(st.p99))
	h.logf("units run %d, %s: %s: %.0f req/s, p50 %s, p99 %s", run+1, t, get, st.perSecond, st.p50, st.p99)

	refs := ids[:min(sz.ResolveRefs, sz.Units)]
	if err := us.loadMany(ctx, refs); err != nil { // warm-up
		return err
	}
	lat := make(Latencies, 0, sz.ResolveRequests)
	for range sz.ResolveRequests {
		start := time.Now()
		if err := us.loadMany(ctx, refs); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
	}
	h.rep.set(gr, resolve+", p50", "ms", t, run, ms(lat.Quantile(0.5)))
	h.rep.set(gr, resolve+", p99", "ms", t, run, ms(lat.Quantile(0.99)))
	h.logf("units run %d, %s: %s: p50 %s, p99 %s", run+1, t, resolve, lat.Quantile(0.5), lat.Quantile(0.99))
	return nil
}
