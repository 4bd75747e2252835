package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// objects is a target seen as a store of named byte streams: Blockstore
// (assets, read back by hash) or MinIO alone (objects, read back by key).
type objects interface {
	// put stores c under name and returns what get reads it back by.
	put(ctx context.Context, name string, c content) (string, error)
	// get reads what put stored and returns its length.
	get(ctx context.Context, ref string, buf []byte) (int64, error)
	Close() error
}

type blockstoreObjects struct {
	d    *deployment
	coll uuid.UUID
}

func (h *harness) openObjects(ctx context.Context, t Target, section string) (objects, error) {
	if t == MinIO {
		bucket, err := h.minio.newBucket(ctx, "bench-"+section)
		if err != nil {
			return nil, err
		}
		return &minioObjects{m: h.minio, bucket: bucket}, nil
	}
	d, err := h.deploy(ctx, t, section)
	if err != nil {
		return nil, err
	}
	c, err := d.srv.Client.CreateCollection(ctx, client.NewCollection{Name: "bench " + section})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("bench: create collection: %w", err)
	}
	return &blockstoreObjects{d: d, coll: c.UUID}, nil
}

func (b *blockstoreObjects) put(ctx context.Context, name string, c content) (string, error) {
	a, err := b.d.srv.Client.CreateAsset(ctx, client.NewAsset{Collection: b.coll, Name: name, MediaType: "application/octet-stream"}, client.Content{Body: c.body()})
	if err != nil {
		return "", fmt.Errorf("bench: create asset %s: %w", name, err)
	}
	if a.Size != c.size {
		return "", fmt.Errorf("bench: asset %s stored %d bytes of %d", name, a.Size, c.size)
	}
	return a.Hash.String(), nil
}

func (b *blockstoreObjects) get(ctx context.Context, ref string, buf []byte) (int64, error) {
	h, err := cas.ParseHash(ref)
	if err != nil {
		return 0, err
	}
	d, err := b.d.srv.Client.GetBlob(ctx, h, client.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("bench: GET blob %s: %w", ref, err)
	}
	defer d.Close()
	return drain(d.Body, buf)
}

func (b *blockstoreObjects) Close() error { return b.d.Close() }

type minioObjects struct {
	m      *minioServer
	bucket string
}

func (o *minioObjects) put(ctx context.Context, name string, c content) (string, error) {
	_, err := o.m.Client.PutObject(ctx, o.bucket, name, c.reader(), c.size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return "", fmt.Errorf("bench: MinIO PutObject %s: %w", name, err)
	}
	return name, nil
}

func (o *minioObjects) get(ctx context.Context, ref string, buf []byte) (int64, error) {
	obj, err := o.m.Client.GetObject(ctx, o.bucket, ref, minio.GetObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("bench: MinIO GetObject %s: %w", ref, err)
	}
	defer obj.Close()
	n, err := drain(obj, buf)
	if err != nil {
		return n, fmt.Errorf("bench: MinIO GetObject %s: %w", ref, err)
	}
	return n, nil
}

func (o *minioObjects) Close() error { return o.m.removeBucket(context.Background(), o.bucket) }

// parallel calls fn(i) for i in [0, n) from workers goroutines, each with
// its own read buffer; the first error stops it.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int, buf []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			buf := make([]byte, 256*kib)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i, buf); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// transferRows are the row names of the transfer section.
type transferRows struct {
	large, small1, smallN          string // POST /assets, bytes streamed
	putLarge, putSmallN            string // PUT /blobs/{hash}, hash known
	getLarge, getSmall1, getSmallN string
}

// knownBlobs are the bytes a run PUTs under hashes the client computed
// beforehand (as an importer does while it reads its files).
type knownBlobs struct {
	large       content
	largeHash   cas.Hash
	small       []content
	smallHashes []cas.Hash
}

const (
	groupIngest = "ingest over loopback HTTP"
	groupReads  = "reads by hash over loopback HTTP"
)

// transferSection: one large asset, many small ones (one client, then
// several), the same again as blobs under hashes the client knows, each
// read back by hash; the same bytes PUT to and GET from MinIO alone in the
// same run.
func (h *harness) transferSection(ctx context.Context) {
	sz := h.sz
	small := fmt.Sprintf("%s × %s", count(sz.SmallCount), binaryUnits(sz.SmallBytes))
	rows := transferRows{
		large:     fmt.Sprintf("POST /assets: 1 asset of %s, 1 client", binaryUnits(sz.LargeBytes)),
		small1:    fmt.Sprintf("POST /assets: %s assets, 1 client", small),
		smallN:    fmt.Sprintf("POST /assets: %s assets, %d clients", small, sz.SmallClients),
		putLarge:  fmt.Sprintf("PUT /blobs/{hash}: %s, hash known, 1 client", binaryUnits(sz.LargeBytes)),
		putSmallN: fmt.Sprintf("PUT /blobs/{hash}: %s, hash known, %d clients", small, sz.SmallClients),
		getLarge:  fmt.Sprintf("GET the %s blob, 1 client", binaryUnits(sz.LargeBytes)),
		getSmall1: fmt.Sprintf("GET the %s blobs, 1 client", small),
		getSmallN: fmt.Sprintf("GET the %s blobs, %d clients", small, sz.SmallClients),
	}
	// Rows in the order of the table.
	for _, r := range []struct{ g, n string }{
		{groupIngest, rows.large}, {groupIngest, rows.small1}, {groupIngest, rows.smallN},
		{groupIngest, rows.putLarge}, {groupIngest, rows.putSmallN},
		{groupReads, rows.getLarge}, {groupReads, rows.getSmall1}, {groupReads, rows.getSmallN},
	} {
		h.rep.row(r.g, r.n, "MB/s")
	}
	lim1, limAll, limRead := newSeries(sz.Runs), newSeries(sz.Runs), newSeries(sz.Runs)
	for run := range sz.Runs {
		b1, bAll := hashRate(sz.LimitBytes, 1), hashRate(sz.LimitBytes, runtime.NumCPU())
		w, _, cached, err := diskRates(ctx, h.root, sz.LimitBytes)
		if err != nil {
			h.fail("transfer", Embedded, run, err)
			continue
		}
		lim1[run], limAll[run], limRead[run] = min(b1, w), min(bAll, w), cached
		kb := knownBlobs{large: newContent(seedOf("put-large", run, 0), sz.LargeBytes)}
		kb.largeHash = kb.large.hash()
		for i := range sz.SmallCount {
			c := newContent(seedOf("put-small", run, i), sz.SmallBytes)
			kb.small = append(kb.small, c)
			kb.smallHashes = append(kb.smallHashes, c.hash())
		}
		for _, t := range rotate([]Target{Embedded, Postgres, MinIO}, run) {
			if err := h.transferRun(ctx, run, t, rows, kb); err != nil {
				h.fail("transfer", t, run, err)
			}
		}
	}
	one := "min(BLAKE3 1 core, write+fsync)"
	all := fmt.Sprintf("min(BLAKE3 %d cores, write+fsync)", runtime.NumCPU())
	h.rep.limit(groupIngest, rows.large, "MB/s", one, lim1)
	h.rep.limit(groupIngest, rows.small1, "MB/s", one, lim1)
	h.rep.limit(groupIngest, rows.smallN, "MB/s", all, limAll)
	h.rep.limit(groupIngest, rows.putLarge, "MB/s", one, lim1)
	h.rep.limit(groupIngest, rows.putSmallN, "MB/s", all, limAll)
	for _, n := range []string{rows.getLarge, rows.getSmall1, rows.getSmallN} {
		h.rep.limit(groupReads, n, "MB/s", "page-cache read", limRead)
	}
}

func (h *harness) transferRun(ctx context.Context, run int, t Target, rows transferRows, kb knownBlobs) error {
	sz := h.sz
	o, err := h.openObjects(ctx, t, "transfer")
	if err != nil {
		return err
	}
	defer o.Close()
	record := func(g, name string, v float64) {
		h.rep.set(g, name, "MB/s", t, run, v)
		h.logf("transfer run %d, %s: %s: %.0f MB/s", run+1, t, name, v)
	}

	// One large asset, streamed (the server hashes it), read back by hash.
	// Every target gets the same bytes in a run, new bytes in each run.
	c := newContent(seedOf("large", run, 0), sz.LargeBytes)
	start := time.Now()
	ref, err := o.put(ctx, "large.bin", c)
	if err != nil {
		return err
	}
	putLarge := mbps(sz.LargeBytes, time.Since(start))
	record(groupIngest, rows.large, putLarge)
	start = time.Now()
	n, err := o.get(ctx, ref, h.blobBuf)
	if err != nil {
		return err
	}
	if n != sz.LargeBytes {
		return fmt.Errorf("bench: GET %s gave %d bytes of %d", ref, n, sz.LargeBytes)
	}
	record(groupReads, rows.getLarge, mbps(sz.LargeBytes, time.Since(start)))

	// Many small assets, by one client and then by several, read back by
	// as many clients.
	total := int64(sz.SmallCount) * sz.SmallBytes
	var putSmallN float64
	for _, pass := range []struct {
		clients   int
		put, get  string
		namespace string
	}{{1, rows.small1, rows.getSmall1, "one"}, {sz.SmallClients, rows.smallN, rows.getSmallN, "many"}} {
		refs := make([]string, sz.SmallCount)
		start := time.Now()
		err := parallel(ctx, sz.SmallCount, pass.clients, func(ctx context.Context, i int, _ []byte) error {
			c := newContent(seedOf("small-"+pass.namespace, run, i), sz.SmallBytes)
			ref, err := o.put(ctx, fmt.Sprintf("small-%s/%06d.bin", pass.namespace, i), c)
			refs[i] = ref
			return err
		})
		if err != nil {
			return err
		}
		v := mbps(total, time.Since(start))
		record(groupIngest, pass.put, v)
		putSmallN = v
		start = time.Now()
		err = parallel(ctx, sz.SmallCount, pass.clients, func(ctx context.Context, i int, buf []byte) error {
			n, err := o.get(ctx, refs[i], buf)
			if err == nil && n != sz.SmallBytes {
				err = fmt.Errorf("bench: GET %s gave %d bytes of %d", refs[i], n, sz.SmallBytes)
			}
			return err
		})
		if err != nil {
			return err
		}
		record(groupReads, pass.get, mbps(total, time.Since(start)))
	}

	// The same work with the hash known beforehand. MinIO alone has one
	// way to store bytes: its figures above stand for these rows too.
	b, ok := o.(*blockstoreObjects)
	if !ok {
		record(groupIngest, rows.putLarge, putLarge)
		record(groupIngest, rows.putSmallN, putSmallN)
		return nil
	}
	c0 := b.d.srv.Client
	start = time.Now()
	if created, err := c0.PutBlob(ctx, kb.largeHash, kb.large.body()); err != nil || !created {
		return fmt.Errorf("bench: PUT blob %s: created %v, %w", kb.largeHash, created, err)
	}
	record(groupIngest, rows.putLarge, mbps(sz.LargeBytes, time.Since(start)))
	start = time.Now()
	err = parallel(ctx, sz.SmallCount, sz.SmallClients, func(ctx context.Context, i int, _ []byte) error {
		created, err := c0.PutBlob(ctx, kb.smallHashes[i], kb.small[i].body())
		if err == nil && !created {
			err = fmt.Errorf("bench: PUT blob %s: already stored", kb.smallHashes[i])
		}
		return err
	})
	if err != nil {
		return err
	}
	record(groupIngest, rows.putSmallN, mbps(total, time.Since(start)))
	return nil
}
