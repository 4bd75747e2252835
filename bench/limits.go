package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// limits are the machine's limits measured in one run.
type limits struct {
	blake1    float64 // MB/s, one core
	blakeAll  float64 // MB/s, every core
	diskWrite float64 // MB/s, 1 MiB writes then fsync
	diskRead  float64 // MB/s, the file just written, its pages dropped
	cacheRead float64 // MB/s, the same file in the page cache
	fsyncOps  float64 // 4 KiB write + fsync per second, one writer
	creates   float64 // small files created per second, one worker
	unlinks   float64 // files unlinked per second, one worker
	bare      requestStats
}

// requestStats is a request-rate measurement.
type requestStats struct {
	perSecond float64
	p50, p99  time.Duration
}

// hashRate hashes perCore bytes on each of workers goroutines, in 1 MiB
// writes from the 4 MiB pattern block (in the CPU's caches, as the bytes of
// an upload are when the server hashes them), and returns the aggregate
// rate in MB/s.
func hashRate(perCore int64, workers int) float64 {
	block := pattern()
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			h := cas.NewHasher()
			for off := int64(0); off < perCore; off += mib {
				in := off % int64(len(block))
				_, _ = h.Write(block[in:min(in+mib, in+perCore-off)])
			}
			_ = h.Sum()
		})
	}
	wg.Wait()
	return mbps(perCore*int64(workers), time.Since(start))
}

// fadvDontNeed asks the kernel to drop the clean cached pages of f.
func fadvDontNeed(f *os.File) error {
	const posixFadvDontNeed = 4
	_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, posixFadvDontNeed, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// diskRates writes size bytes to a file in dir in 1 MiB writes and fsyncs
// it, drops its pages and reads it (cold), then reads it again (page cache).
func diskRates(ctx context.Context, dir string, size int64) (write, cold, cached float64, err error) {
	f, err := os.CreateTemp(dir, "limit-*.tmp")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, mib)
	src := newContent(uint64(time.Now().UnixNano()), size)
	start := time.Now()
	for off := int64(0); off < size; off += mib {
		n, _ := src.ReadAt(buf, off)
		if _, err := f.Write(buf[:n]); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, 0, 0, err
	}
	write = mbps(size, time.Since(start))
	if err := ctx.Err(); err != nil {
		return 0, 0, 0, err
	}
	readAll := func() (float64, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		start := time.Now()
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		if err != nil {
			return 0, err
		}
		if n != size {
			return 0, fmt.Errorf("bench: read %d bytes of %d", n, size)
		}
		return mbps(size, time.Since(start)), nil
	}
	if err := fadvDontNeed(f); err != nil {
		return 0, 0, 0, fmt.Errorf("bench: drop cached pages: %w", err)
	}
	if cold, err = readAll(); err != nil {
		return 0, 0, 0, err
	}
	if cached, err = readAll(); err != nil {
		return 0, 0, 0, err
	}
	return write, cold, cached, nil
}

// fsyncRate writes 4 KiB and fsyncs, ops times, in a file in dir.
func fsyncRate(dir string, ops int) (float64, error) {
	return syncedWriteRate(dir, ops, (*os.File).Sync)
}

// fdatasyncRate writes 4 KiB and fdatasyncs, ops times, in a file in dir:
// the cost of one synced WAL append, the most a synced commit can need,
// with which the unit commit rate is compared (the goal: at least 2× with
// 8 writers, because Pebble's grouped syncs cover many commits each).
func fdatasyncRate(dir string, ops int) (float64, error) {
	return syncedWriteRate(dir, ops, func(f *os.File) error {
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		return nil
	})
}

// syncedWriteRate writes 4 KiB and calls sync, ops times, in a new file in
// dir, and returns the rate in operations per second.
func syncedWriteRate(dir string, ops int, sync func(*os.File) error) (float64, error) {
	f, err := os.CreateTemp(dir, "sync-*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4*kib)
	start := time.Now()
	for i := range ops {
		if _, err := f.WriteAt(buf, int64(i)*4*kib); err != nil {
			return 0, err
		}
		if err := sync(f); err != nil {
			return 0, err
		}
	}
	return rate(float64(ops), time.Since(start)), nil
}

// fileRates creates n files of 80 bytes in a new directory under dir
// (write, close: no fsync) and then unlinks them, one worker, and returns
// both rates in files per second: what a sweep that deletes files, and a
// set-up that writes them, can expect of the filesystem.
func fileRates(dir string, n int) (create, unlink float64, err error) {
	d, err := os.MkdirTemp(dir, "files-*.tmp")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(d)
	names := make([]string, n)
	payload := make([]byte, 80)
	start := time.Now()
	for i := range names {
		names[i] = fmt.Sprintf("%s/%06d", d, i)
		if err := os.WriteFile(names[i], payload, 0o444); err != nil {
			return 0, 0, err
		}
	}
	create = rate(float64(n), time.Since(start))
	start = time.Now()
	for _, name := range names {
		if err := os.Remove(name); err != nil {
			return 0, 0, err
		}
	}
	return create, rate(float64(n), time.Since(start)), nil
}

// bareHTTP serves 4 KiB from memory with a plain net/http server on
// loopback and GETs it requests times from clients goroutines: the floor
// under any HTTP service's request latency on this machine (client and
// server in one process).
func bareHTTP(ctx context.Context, requests, clients int) (requestStats, error) {
	payload := make([]byte, 4*kib)
	base, hc, stop, err := bareLoopback(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write(payload)
	}, clients)
	if err != nil {
		return requestStats{}, err
	}
	defer stop()
	url := base + "/x"
	return loadRequests(ctx, requests, clients, func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(payload)) || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bench: bare GET: %d, %d bytes, %v", resp.StatusCode, n, err)
		}
		return nil
	})
}

// bareLoopback serves handler with a plain net/http server on loopback and
// returns its base URL, a client that keeps a connection for each of
// clients goroutines, and what stops both.
func bareLoopback(handler http.HandlerFunc, clients int) (string, *http.Client, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	stop := func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
	}
	return "http://" + ln.Addr().String(), &http.Client{Transport: tr, Timeout: 30 * time.Second}, stop, nil
}

// loadRequests calls do requests times (with i from 0) from clients
// goroutines and returns the rate and the latency quantiles. The first
// error stops it.
func loadRequests(ctx context.Context, requests, clients int, do func(ctx context.Context, i int) error) (requestStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make(Latencies, requests)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= requests || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := do(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return requestStats{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return requestStats{}, err
	}
	return requestStats{perSecond: rate(float64(requests), elapsed), p50: lat.Quantile(0.50), p99: lat.Quantile(0.99)}, nil
}

// measureLimits measures every limit once, in dir's filesystem.
func measureLimits(ctx context.Context, dir string, sz Sizes) (limits, error) {
	var l limits
	l.blake1 = hashRate(sz.LimitBytes, 1)
	l.blakeAll = hashRate(sz.LimitBytes, runtime.NumCPU())
	var err error
	if l.diskWrite, l.diskRead, l.cacheRead, err = diskRates(ctx, dir, sz.LimitBytes); err != nil {
		return l, fmt.Errorf("bench: disk limits in %s: %w", dir, err)
	}
	if l.fsyncOps, err = fsyncRate(dir, sz.FsyncOps); err != nil {
		return l, fmt.Errorf("bench: fsync limit in %s: %w", dir, err)
	}
	if l.creates, l.unlinks, err = fileRates(dir, sz.FileOps); err != nil {
		return l, fmt.Errorf("bench: file limits in %s: %w", dir, err)
	}
	if l.bare, err = bareHTTP(ctx, sz.BareRequests, sz.ReadClients); err != nil {
		return l, fmt.Errorf("bench: bare HTTP limit: %w", err)
	}
	return l, nil
}
