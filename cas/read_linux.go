package cas

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// mapWindow is how much of a file hashFile maps at once: the mapping's
// pages count in the process's resident memory while they are mapped, so
// a 10 GB blob is hashed through a window, not mapped whole.
const mapWindow = 4 << 20

// preadUpTo is the size up to which hashFile reads the file (into a
// pooled buffer) rather than mapping it: a map, its population and the
// unmap (which interrupts the other cores to flush their TLBs) cost more
// than the copy of a small file.
const preadUpTo = mapWindow

// readAhead is how far past the window being hashed hashFile asks the
// kernel to read ahead.
const readAhead = 2 * mapWindow

// hashFile hashes the first size bytes of f through read-only memory maps
// of the page cache: no copy into a buffer before the hash. The file's
// offset is left to the send running beside it. A file shorter than size
// is an error wrapping ErrHashMismatch; a fault reading a mapping (the
// file cut shorter while mapped) is an error, not a crash.
func hashFile(f *os.File, size int64, stop *atomic.Bool) (sum Hash, err error) {
	st, err := f.Stat()
	if err != nil {
		return Hash{}, fmt.Errorf("stat: %w", err)
	}
	if st.Size() < size {
		return Hash{}, fmt.Errorf("stored bytes end after %d of %d: %w", st.Size(), size, ErrHashMismatch)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read a mapping of the file: %v", r)
		}
	}()
	if size <= preadUpTo {
		return preadFile(f, size, stop)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return preadFile(f, size, stop)
	}
	h := NewHasher()
	for off := int64(0); off < size; off += mapWindow {
		if stop.Load() {
			return Hash{}, errStopped
		}
		n := int(min(mapWindow, size-off))
		var m []byte
		cerr := rc.Control(func(fd uintptr) {
			if next := off + int64(n); next < size {
				// Start reading the next windows from the disk while this
				// one is hashed (a large blob written with O_DIRECT is not
				// in the page cache); advisory.
				_ = unix.Fadvise(int(fd), next, readAhead, unix.FADV_WILLNEED)
			}
			m, err = unix.Mmap(int(fd), off, n, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
		})
		if err == nil {
			err = cerr
		}
		if err != nil {
			if off == 0 {
				return preadFile(f, size, stop)
			}
			return Hash{}, fmt.Errorf("map %d bytes at %d: %w", n, off, err)
		}
		_, _ = h.Write(m)
		if err := unix.Munmap(m); err != nil {
			return Hash{}, fmt.Errorf("unmap: %w", err)
		}
	}
	return h.Sum(), nil
}
