package importer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/client"
)

// ExportOptions configure an export.
type ExportOptions struct {
	// Jobs is how many files are downloaded at once (0: the number of CPUs).
	Jobs int
	// Overwrite replaces files whose bytes differ from the entity's; without
	// it such a file is an error (a file with the same bytes is left alone
	// either way).
	Overwrite bool
	// PreferRedirect downloads assets from the blob store's own URLs when
	// the server offers them (client.Options.PreferRedirect); each file's
	// hash is checked as always.
	PreferRedirect bool
	// Progress, IsTerminal and LogInterval as in ImportOptions.
	Progress    io.Writer
	IsTerminal  bool
	LogInterval time.Duration
}

// ErrUnsafeName is wrapped by the error about an entity whose name cannot
// be a path under the export directory (absolute, "..", empty elements…).
var ErrUnsafeName = errors.New("importer: name is not a safe relative path")

// exportItem is one entity to write.
type exportItem struct {
	name    string
	kind    client.Kind
	id      uuid.UUID
	version int64
	hash    cas.Hash
	size    int64
}

// Export writes the latest version of every unit (its OLX) and asset (its
// bytes) of the collection to dir, each at its name, streaming and checking
// each blob's hash as it arrives. Files are replaced atomically (a temporary
// file renamed); nothing is written outside dir, even through symbolic links
// inside it. The error wraps ErrIncomplete when some entities were not
// written (the summary says which).
func Export(ctx context.Context, c *client.Client, collection uuid.UUID, dir string, opt ExportOptions) (ExportSummary, error) {
	start := time.Now()
	sum := ExportSummary{Collection: collection}
	if opt.PreferRedirect {
		c = c.PreferringRedirects()
	}
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.NumCPU()
	}
	if _, err := c.Collection(ctx, collection, client.Latest); err != nil {
		return sum, fmt.Errorf("importer: collection %s: %w", collection, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sum, fmt.Errorf("importer: export directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return sum, fmt.Errorf("importer: export directory: %w", err)
	}
	defer root.Close()

	var items []exportItem
	seen := map[string]bool{}
	var errs []string
	var failed int64
	addErr := func(msg string) {
		failed++
		if len(errs) < maxReported {
			errs = append(errs, msg)
		}
	}
	add := func(kind client.Kind, id uuid.UUID, name string, version *int64, h cas.Hash, size int64) {
		switch {
		case name == "":
			sum.Skipped = append(sum.Skipped, fmt.Sprintf("%s %s has no name", kind, id))
			return
		case version == nil:
			addErr(fmt.Sprintf("%s %s (%s): listed without a version", kind, id, name))
			return
		}
		if err := checkName(name); err != nil {
			addErr(fmt.Sprintf("%s %s: %v", kind, id, err))
			return
		}
		if seen[name] {
			addErr(fmt.Sprintf("%s %s: %s is the name of another entity too", kind, id, name))
			return
		}
		seen[name] = true
		items = append(items, exportItem{name: name, kind: kind, id: id, version: *version, hash: h, size: size})
		sum.Files++
		sum.Bytes += size
		if kind == client.KindUnit {
			sum.Units++
		} else {
			sum.Assets++
		}
	}
	for u, err := range c.AllUnits(ctx, collection, client.ListOptions{Limit: 1000}) {
		if err != nil {
			return sum, fmt.Errorf("importer: list units of %s: %w", collection, err)
		}
		add(client.KindUnit, u.UUID, u.Name, u.Version, u.Hash, u.Size)
	}
	for a, err := range c.AllAssets(ctx, collection, client.ListOptions{Limit: 1000}) {
		if err != nil {
			return sum, fmt.Errorf("importer: list assets of %s: %w", collection, err)
		}
		add(client.KindAsset, a.UUID, a.Name, a.Version, a.Hash, a.Size)
	}
	sum.Skipped = capped(sum.Skipped)

	cnt := &counters{}
	cnt.filesTotal.Store(sum.Files)
	cnt.bytesTotal.Store(sum.Bytes)
	prog := newProgress(opt.Progress, opt.IsTerminal, opt.LogInterval, "export", cnt)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var fatalErr error
	var written, unchanged int64
	work := make(chan exportItem)
	var wg sync.WaitGroup
	for range opt.Jobs {
		wg.Go(func() {
			buf := make([]byte, hashBufferSize)
			for it := range work {
				same, err := exportOne(runCtx, c, root, it, opt.Overwrite, buf, cnt)
				mu.Lock()
				switch {
				case err == nil && same:
					unchanged++
				case err == nil:
					written++
				case isFatal(err):
					if fatalErr == nil {
						fatalErr = err
					}
					cancel()
				default:
					addErr(err.Error())
					prog.logf("export: %v", err)
				}
				mu.Unlock()
				cnt.filesDone.Add(1)
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-runCtx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	prog.finish()

	sum.Written, sum.Unchanged, sum.Failed, sum.Errors = written, unchanged, failed, errs
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.BytesPerSecond = float64(sum.Bytes) / sum.Seconds
	}
	if fatalErr != nil {
		return sum, fmt.Errorf("importer: export to %s stopped: %w", dir, fatalErr)
	}
	if ctx.Err() != nil {
		return sum, fmt.Errorf("importer: export to %s stopped: %w", dir, ctx.Err())
	}
	if failed > 0 {
		return sum, fmt.Errorf("%w: %d entities were not exported (first: %s)", ErrIncomplete, failed, firstOr(errs))
	}
	return sum, nil
}

// checkName refuses names that would not stay inside the export directory
// or that this system cannot name: it must be a slash-separated relative
// path without empty, "." or ".." elements.
func checkName(name string) error {
	if !fs.ValidPath(name) || name == "." {
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	}
	if _, err := filepath.Localize(name); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrUnsafeName, name, err)
	}
	return nil
}

// exportOne writes one entity. same reports that the file was there with
// the right bytes already.
func exportOne(ctx context.Context, c *client.Client, root *os.Root, it exportItem, overwrite bool, buf []byte, cnt *counters) (same bool, err error) {
	local, _ := filepath.Localize(it.name)
	if st, err := root.Lstat(local); err == nil {
		if !st.Mode().IsRegular() {
			return false, fmt.Errorf("%s: exists and is not a regular file", it.name)
		}
		h, n, err := hashRootFile(root, local, buf)
		if err != nil {
			return false, fmt.Errorf("%s: read the existing file: %w", it.name, err)
		}
		if h == it.hash && n == it.size {
			cnt.bytesDone.Add(it.size)
			return true, nil
		}
		if !overwrite {
			return false, fmt.Errorf("%s: exists with other bytes (overwrite not allowed)", it.name)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%s: %w", it.name, err)
	}
	if parent := path.Dir(it.name); parent != "." {
		if err := root.MkdirAll(filepath.FromSlash(parent), 0o755); err != nil {
			return false, fmt.Errorf("%s: make its directory: %w", it.name, err)
		}
	}
	var d *client.Download
	if it.kind == client.KindUnit {
		d, err = c.UnitOLX(ctx, it.id, client.Version(it.version), client.GetOptions{})
	} else {
		d, err = c.AssetContent(ctx, it.id, client.Version(it.version), client.GetOptions{})
	}
	if err != nil {
		return false, fmt.Errorf("%s: download %s %s: %w", it.name, it.kind, it.id, err)
	}
	defer d.Close()

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(local), ".blockstore-export-"+hex.EncodeToString(rnd[:])+".tmp")
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return false, fmt.Errorf("%s: %w", it.name, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			_ = root.Remove(tmp)
		}
	}()
	h := cas.NewHasher()
	var n int64
	for {
		k, rerr := d.Body.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			if _, err := f.Write(buf[:k]); err != nil {
				return false, fmt.Errorf("%s: write: %w", it.name, err)
			}
			n += int64(k)
			cnt.bytesDone.Add(int64(k))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return false, fmt.Errorf("%s: download %s %s: %w", it.name, it.kind, it.id, rerr)
		}
	}
	if got := h.Sum(); got != it.hash || n != it.size {
		return false, fmt.Errorf("%s: the server sent %d bytes hashing to %s, want %d bytes hashing to %s", it.name, n, got, it.size, it.hash)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("%s: sync: %w", it.name, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("%s: close: %w", it.name, err)
	}
	if err := root.Rename(tmp, local); err != nil {
		_ = root.Remove(tmp)
		done = true
		return false, fmt.Errorf("%s: %w", it.name, err)
	}
	done = true
	if dirf, err := root.Open(filepath.Dir(local)); err == nil {
		_ = dirf.Sync()
		dirf.Close()
	}
	return false, nil
}

// hashRootFile hashes a file under root.
func hashRootFile(root *os.Root, name string, buf []byte) (cas.Hash, int64, error) {
	f, err := root.Open(name)
	if err != nil {
		return cas.Hash{}, 0, err
	}
	defer f.Close()
	h := cas.NewHasher()
	n, err := io.CopyBuffer(h, onlyReader{f}, buf)
	return h.Sum(), n, err
}

// onlyReader hides a reader's other methods so io.CopyBuffer uses the buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
