package s3store

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Spooling: an upload whose hash is not known in advance and that outgrows
// what it may hold in memory (maxHeldBytes, or an announced size above it)
// writes its bytes to a local file in Config.SpoolDir as they arrive, and
// Commit, its hash known, sends the file in parts straight to the final
// key. A temporary key would cost the bucket a second write of every byte
// (the server-side copy) after the upload. The file is unlinked as soon as
// it is created: whatever ends the upload (Commit, Cancel, an error, a
// crash of the process), the kernel frees its blocks with the last
// descriptor, and nothing is ever left in the directory.
//
// The bytes the files of a Store hold at once are bounded by
// Config.SpoolBytes; an upload that finds the budget spent sends what it
// spooled, and the rest, to a temporary key as before.
const (
	// DefaultSpoolBytes is the spool budget when Config.SpoolBytes is 0.
	DefaultSpoolBytes = 16 << 30
	// spoolStep is how much of the budget an upload of unknown size takes
	// at a time.
	spoolStep = 64 << 20
	// spoolThreads is how many parts of a spooled upload are on their way
	// at once at Commit. Parts are read from the file by the request (no
	// part buffer), so this costs no memory of ours.
	spoolThreads = 4
	// spoolPattern names the spool files (unlinked at once: seen only in
	// /proc/PID/fd, as "(deleted)").
	spoolPattern = "blockstore-spool-*"
)

// spool is a Store's spool directory and what is left of its budget.
type spool struct {
	dir  string
	left atomic.Int64 // bytes; the budget is off when dir is ""
}

// openSpool checks that dir is a directory files can be created in, unless
// the budget is negative (spooling off).
func openSpool(dir string, budget int64) (*spool, error) {
	sp := &spool{}
	if budget < 0 {
		return sp, nil
	}
	if budget == 0 {
		budget = DefaultSpoolBytes
	}
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, fmt.Errorf("spool directory %s is not writable (uploads of unknown hash wait there for it; set it, or turn spooling off with a negative budget): %w", dir, err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return nil, fmt.Errorf("spool directory %s: remove %s: %w", dir, f.Name(), err)
	}
	sp.dir = dir
	sp.left.Store(budget)
	return sp, nil
}

// take takes n bytes of the budget, or reports false.
func (sp *spool) take(n int64) bool {
	if sp == nil || sp.dir == "" {
		return false
	}
	for {
		left := sp.left.Load()
		if left < n {
			return false
		}
		if sp.left.CompareAndSwap(left, left-n) {
			return true
		}
	}
}

func (sp *spool) give(n int64) { sp.left.Add(n) }

// startSpool starts spooling with the bytes held (parts parked, then buf),
// taking first bytes of the budget: everything held and, when the size
// was announced, the rest of it. It reports false, and changes nothing,
// when the budget is spent or the file cannot be made.
func (w *writer) startSpool(held ...[]byte) bool {
	var n int64
	for _, b := range held {
		n += int64(len(b))
	}
	want := max(n+spoolStep, w.announced)
	if !w.s.spool.take(want) {
		return false
	}
	f, err := os.CreateTemp(w.s.spool.dir, spoolPattern)
	if err != nil {
		w.s.spool.give(want)
		return false
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		w.s.spool.give(want)
		return false
	}
	w.spool, w.reserved, w.spooled = f, want, 0
	for _, b := range held {
		if _, err := f.Write(b); err != nil {
			w.closeSpool()
			return false
		}
		w.spooled += int64(len(b))
	}
	return true
}

// spoolWrite appends p to the spool file, taking more of the budget as it
// needs; when the budget is spent it sends what was spooled to a temporary
// key and goes on streaming there.
func (w *writer) spoolWrite(p []byte) (int, error) {
	if need := w.spooled + int64(len(p)); need > w.reserved {
		step := max(int64(spoolStep), need-w.reserved)
		if !w.s.spool.take(step) {
			if err := w.unspool(); err != nil {
				return 0, err
			}
			return w.Write(p)
		}
		w.reserved += step
	}
	n, err := w.spool.Write(p)
	w.spooled += int64(n)
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("s3store: spool: %w", err)
	}
	return n, nil
}

// unspool ends spooling: a multipart upload to the temporary key starts
// with the bytes spooled (every full part sent, the rest in the part
// buffer), and the file goes.
func (w *writer) unspool() error {
	f, size := w.spool, w.spooled
	defer w.closeSpool()
	if err := w.begin(); err != nil {
		return err
	}
	w.buf = w.s.partBuffer()
	for off := int64(0); off < size; {
		if len(w.buf) == cap(w.buf) {
			if err := w.send(); err != nil {
				return err
			}
		}
		c := int(min(int64(cap(w.buf)-len(w.buf)), size-off))
		if _, err := f.ReadAt(w.buf[len(w.buf):len(w.buf)+c], off); err != nil {
			return fmt.Errorf("s3store: read spool: %w", err)
		}
		w.buf = w.buf[:len(w.buf)+c]
		off += int64(c)
	}
	return nil
}

// closeSpool closes the spool file (unlinked already: its blocks are
// freed) and gives its budget back.
func (w *writer) closeSpool() {
	if w.spool == nil {
		return
	}
	w.spool.Close()
	w.spool = nil
	w.s.spool.give(w.reserved)
	w.reserved, w.spooled = 0, 0
}

// putSpooled sends the spooled bytes to the final key in a multipart
// upload, spoolThreads parts at a time, unless the key holds the blob
// already.
func (w *writer) putSpooled(ctx context.Context, final string, size int64) error {
	if w.spooled != size {
		return fmt.Errorf("s3store: %d bytes spooled, %d committed", w.spooled, size)
	}
	return w.putFinal(ctx, final, size, func() int {
		partSize := int64(w.s.partSize)
		parts := int((size + partSize - 1) / partSize)
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(spoolThreads, parts) {
			wg.Go(func() {
				for part := range next {
					off := int64(part-1) * partSize
					n := min(partSize, size-off)
					w.putPart(part, io.NewSectionReader(w.spool, off, n), n)
				}
			})
		}
		for part := 1; part <= parts && w.failed() == nil; part++ {
			next <- part
		}
		close(next)
		wg.Wait()
		return parts
	})
}
