package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// The stages of an import run: read and hash each file, ask the server in
// batches which blobs it lacks, upload those, and tell each file when its
// bytes are stored.

// readWhole reads a file of at most limit bytes.
func readWhole(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s grew past %d bytes while importing", ErrChanged, path, limit)
	}
	return b, nil
}

// hash computes n's hash (and references, for a file to scan) and registers
// its dependencies.
func (im *importer) hash(ctx context.Context, n *node, buf []byte) error {
	f := n.f
	n.isUnit = f.unit
	var deps []string
	if f.scan {
		limit := int64(maxScanSize)
		if f.unit {
			limit = maxUnitSize
		}
		data, err := readWhole(f.path, limit)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		n.hash, n.size = cas.Sum(data), int64(len(data))
		im.cnt.bytesDone.Add(n.size)
		switch {
		case f.unit && !utf8.Valid(data):
			n.isUnit = false
			im.warn(f.name + ": not valid UTF-8, imported as an asset")
		case f.unit:
			deps = im.tree.resolveRefs(f.name, ExtractRefs(data))
		default:
			deps = im.tree.resolveRefs(f.name, Refs{Static: ExtractStaticRefs(data)})
		}
	} else {
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, unwrapPathError(err))
		}
		h := cas.NewHasher()
		var size int64
		for {
			if ctx.Err() != nil {
				fh.Close()
				return ctx.Err()
			}
			k, err := fh.Read(buf)
			if k > 0 {
				h.Write(buf[:k])
				size += int64(k)
				im.cnt.bytesDone.Add(int64(k))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				fh.Close()
				return fmt.Errorf("%s: read: %w", f.name, unwrapPathError(err))
			}
		}
		fh.Close()
		n.hash, n.size = h.Sum(), size
	}
	if n.size != f.size {
		im.cnt.bytesTotal.Add(n.size - f.size)
	}
	im.cnt.filesDone.Add(1)
	if n.isUnit {
		n.kind = client.KindUnit
	} else {
		n.kind = client.KindAsset
	}
	n.deps = deps
	im.sched.hashed(n)
	return nil
}

// batch asks the server which hashes it lacks, in batches, and sends the
// missing blobs to the uploaders; a hash met before in the run is not
// asked again. Its error (the server cannot say) stops the run.
func (im *importer) batch(ctx context.Context, hashed <-chan *node, uploads chan<- *blobState) error {
	seen := map[cas.Hash]*blobState{}
	var pending []*blobState
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() error {
		timer.Stop()
		if len(pending) == 0 {
			return nil
		}
		batch := pending
		pending = nil
		hs := make([]cas.Hash, len(batch))
		for i, bs := range batch {
			hs[i] = bs.hash
		}
		missing, err := im.c.MissingBlobs(ctx, hs)
		if err != nil {
			return fmt.Errorf("ask which blobs are missing: %w", err)
		}
		lack := make(map[cas.Hash]bool, len(missing))
		for _, h := range missing {
			lack[h] = true
		}
		for _, bs := range batch {
			switch {
			case !lack[bs.hash]:
				im.resolve(bs, nil)
			case bs.src.isUnit:
				bs.viaUnit = true
				im.resolve(bs, nil)
			default:
				select {
				case uploads <- bs:
				case <-ctx.Done():
					im.resolve(bs, ctx.Err())
				}
			}
		}
		return nil
	}
	for {
		select {
		case n, ok := <-hashed:
			if !ok {
				return flush()
			}
			bs := seen[n.hash]
			if bs == nil {
				bs = &blobState{hash: n.hash, size: n.size, src: n}
				seen[n.hash] = bs
				if len(pending) == 0 {
					timer.Reset(im.opt.BatchDelay)
				}
				pending = append(pending, bs)
			}
			n.blob = bs
			im.await(bs, n)
			if len(pending) >= im.opt.MissingBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-timer.C:
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			for _, bs := range pending {
				im.resolve(bs, ctx.Err())
			}
			return nil
		}
	}
}

// await makes n wait for bs to be stored.
func (im *importer) await(bs *blobState, n *node) {
	bs.mu.Lock()
	if !bs.resolved {
		bs.waiters = append(bs.waiters, n)
		bs.mu.Unlock()
		return
	}
	err := bs.err
	bs.mu.Unlock()
	im.stored(n, err)
}

// resolve settles bs: stored (err nil) or failed, for every file holding it.
func (im *importer) resolve(bs *blobState, err error) {
	bs.mu.Lock()
	bs.resolved, bs.err = true, err
	ws := bs.waiters
	bs.waiters = nil
	bs.mu.Unlock()
	for _, n := range ws {
		im.stored(n, err)
	}
}

func (im *importer) stored(n *node, err error) {
	if err != nil {
		im.failed(n, err)
		return
	}
	im.sched.markStored(n)
}

// countingReader adds what it reads to a counter (upload progress).
type countingReader struct {
	r    io.ReadCloser
	cnt  *atomic.Int64
	read int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cnt.Add(int64(n))
	c.read += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// fileBody is a re-openable upload body over n's file, counting progress.
func (im *importer) fileBody(n *node, sent *[]*countingReader) client.Body {
	return client.OpenBody(n.size, func() (io.ReadCloser, error) {
		f, err := os.Open(n.f.path)
		if err != nil {
			return nil, err
		}
		cr := &countingReader{r: f, cnt: &im.cnt.bytesUploaded}
		if sent != nil {
			*sent = append(*sent, cr)
		}
		return cr, nil
	})
}

// upload stores one missing blob from the first file that holds it. Its
// error is one that stops the run; the failure of one blob fails the files
// that hold it.
func (im *importer) upload(ctx context.Context, bs *blobState) error {
	var sent []*countingReader
	_, err := im.c.PutBlob(ctx, bs.hash, im.fileBody(bs.src, &sent))
	// Progress counted every attempt's bytes: keep exactly the blob's size
	// when it is stored, nothing when it is not.
	var counted int64
	for _, cr := range sent {
		counted += cr.read
	}
	im.cnt.bytesUploaded.Add(-counted)
	if err != nil {
		if errors.Is(err, client.ErrHashMismatch) {
			err = fmt.Errorf("%w: %s: %w", ErrChanged, bs.src.f.name, err)
		} else {
			err = fmt.Errorf("%s: upload: %w", bs.src.f.name, err)
		}
		if isFatal(err) {
			return err
		}
		im.resolve(bs, err)
		return nil
	}
	im.countUploaded(bs)
	im.resolve(bs, nil)
	return nil
}

// countUploaded counts bs's bytes as uploaded, once.
func (im *importer) countUploaded(bs *blobState) {
	if bs.counted.CompareAndSwap(false, true) {
		im.cnt.blobsUploaded.Add(1)
		im.cnt.bytesUploaded.Add(bs.size)
	}
}
