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

// transferSection: one large asset, many small ones (one client, then
// several), each read back by hash; the same bytes PUT to and GET from
// MinIO alone in the same run.
func (h *harness) transferSection(ctx context.Context) {
	sz := h.sz
	const gi, gr = "ingest over loopback HTTP", "reads by hash over loopback HTTP"
	large := fmt.Sprintf("1 asset of %s, 1 client", binaryUnits(sz.LargeBytes))
	small1 := fmt.Sprintf("%s assets of %s, 1 client", count(sz.SmallCount), binaryUnits(sz.SmallBytes))
	smallN := fmt.Sprintf("%s assets of %s, %d clients", count(sz.SmallCount), binaryUnits(sz.SmallBytes), sz.SmallClients)
	getLarge := fmt.Sprintf("GET the %s blob, 1 client", binaryUnits(sz.LargeBytes))
	getSmall1 := fmt.Sprintf("GET the %s blobs of %s, 1 client", count(sz.SmallCount), binaryUnits(sz.SmallBytes))
	getSmallN := fmt.Sprintf("GET the %s blobs of %s, %d clients", count(sz.SmallCount), binaryUnits(sz.SmallBytes), sz.SmallClients)
	// Rows in the order of the table.
	for _, r := range []struct{ g, n string }{{gi, large}, {gi, small1}, {gi, smallN}, {gr, getLarge}, {gr, getSmall1}, {gr, getSmallN}} {
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
		for _, t := range rotate([]Target{Embedded, Postgres, MinIO}, run) {
			if err := h.transferRun(ctx, run, t, large, small1, smallN, getLarge, getSmall1, getSmallN); err != nil {
				h.fail("transfer", t, run, err)
			}
		}
	}
	h.rep.limit(gi, large, "MB/s", "min(BLAKE3 1 core, write+fsync)", lim1)
	h.rep.limit(gi, small1, "MB/s", "min(BLAKE3 1 core, write+fsync)", lim1)
	h.rep.limit(gi, smallN, "MB/s", fmt.Sprintf("min(BLAKE3 %d cores, write+fsync)", runtime.NumCPU()), limAll)
	for _, n := range []string{getLarge, getSmall1, getSmallN} {
		h.rep.limit(gr, n, "MB/s", "page-cache read", limRead)
	}
}

func (h *harness) transferRun(ctx context.Context, run int, t Target, large, small1, smallN, getLarge, getSmall1, getSmallN string) error {
	const gi, gr = "ingest over loopback HTTP", "reads by hash over loopback HTTP"
	sz := h.sz
	o, err := h.openObjects(ctx, t, "transfer")
	if err != nil {
		return err
	}
	defer o.Close()

	// One large asset.
	// Every target gets the same bytes in a run, new bytes in each run.
	c := newContent(seedOf("large", run, 0), sz.LargeBytes)
	start := time.Now()
	ref, err := o.put(ctx, "large.bin", c)
	if err != nil {
		return err
	}
	v := mbps(sz.LargeBytes, time.Since(start))
	h.rep.set(gi, large, "MB/s", t, run, v)
	h.logf("transfer run %d, %s: %s: %.0f MB/s", run+1, t, large, v)
	start = time.Now()
	n, err := o.get(ctx, ref, h.blobBuf)
	if err != nil {
		return err
	}
	if n != sz.LargeBytes {
		return fmt.Errorf("bench: GET %s gave %d bytes of %d", ref, n, sz.LargeBytes)
	}
	v = mbps(sz.LargeBytes, time.Since(start))
	h.rep.set(gr, getLarge, "MB/s", t, run, v)
	h.logf("transfer run %d, %s: %s: %.0f MB/s", run+1, t, getLarge, v)

	// Many small assets, by one client and then by several.
	total := int64(sz.SmallCount) * sz.SmallBytes
	for _, pass := range []struct {
		clients   int
		put, get  string
		namespace string
	}{{1, small1, getSmall1, "one"}, {sz.SmallClients, smallN, getSmallN, "many"}} {
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
		h.rep.set(gi, pass.put, "MB/s", t, run, v)
		h.logf("transfer run %d, %s: %s: %.0f MB/s", run+1, t, pass.put, v)
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
		v = mbps(total, time.Since(start))
		h.rep.set(gr, pass.get, "MB/s", t, run, v)
		h.logf("transfer run %d, %s: %s: %.0f MB/s", run+1, t, pass.get, v)
	}
	return nil
}
