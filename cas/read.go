package cas

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// FileReader is the optional interface of a backend's Reader whose bytes
// are a local file (dirstore). The Store then serves a read of the whole
// blob into a writer that sends files itself (an http.ResponseWriter over
// TCP, which uses sendfile(2)) without copying the bytes through user
// space, and hashes the file beside the send.
type FileReader interface {
	Reader
	// File is the blob's open file. The Reader owns it: the caller must not
	// close it, and must not use it after closing the Reader.
	File() *os.File
}

// hashChunkSize is the size of the reads that hash a file beside a send:
// small enough to stay in the CPU's cache between the copy and the hash.
const hashChunkSize = 256 << 10

var hashChunks = sync.Pool{New: func() any {
	b := make([]byte, hashChunkSize)
	return &b
}}

// verifyingFile is the verifyingReader of a blob in a local file; WriteTo
// is its fast path.
type verifyingFile struct {
	*verifyingReader
	f *os.File
}

// WriteTo writes the blob from the reader's offset to its end into w. A
// read of the whole blob into a writer with ReadFrom (which sendfiles an
// *os.File) sends all but the last byte through w.ReadFrom while another
// goroutine hashes the file, then sends the last byte once the hash
// matched. On a mismatch it returns an error wrapping ErrHashMismatch
// having written all but the last byte, as Read does, so that the receiver
// of a response whose length was announced sees a short body, never a
// complete one. A read that starts past what was hashed is a part of the
// blob, which the hash cannot check: it is sent as it is, as Read would.
func (v *verifyingFile) WriteTo(w io.Writer) (int64, error) {
	size := v.r.Size()
	rf, ok := w.(io.ReaderFrom)
	switch {
	case v.err != nil:
		return 0, v.err
	case !ok || size < 2:
		return io.Copy(writerOnly{w}, readerOnly{v})
	case v.pos == 0 && v.hashed == 0 && !v.ok:
		return v.sendVerified(rf)
	case v.ok || v.pos > v.hashed:
		n, err := rf.ReadFrom(&io.LimitedReader{R: v.f, N: size - v.pos})
		v.pos += n
		return n, err
	}
	return io.Copy(writerOnly{w}, readerOnly{v})
}

// sendVerified sends the whole blob from offset 0, hashing it beside.
func (v *verifyingFile) sendVerified(rf io.ReaderFrom) (int64, error) {
	size := v.r.Size()
	type result struct {
		sum Hash
		err error
	}
	var stop atomic.Bool
	done := make(chan result, 1)
	go func() {
		sum, err := hashFile(v.f, size, &stop)
		done <- result{sum, err}
	}()
	n, err := rf.ReadFrom(&io.LimitedReader{R: v.f, N: size - 1})
	v.pos += n
	if err == nil && n < size-1 {
		err = fmt.Errorf("cas: read %s: stored bytes end after %d of %d: %w", v.want, n, size, ErrHashMismatch)
		v.err = err
		v.verified(err)
	}
	if err != nil {
		stop.Store(true)
		<-done
		return n, err
	}
	res := <-done
	switch {
	case res.err != nil:
		v.err = fmt.Errorf("cas: read %s: %w", v.want, res.err)
		v.verified(v.err)
		return n, v.err
	case res.sum != v.want:
		v.err = fmt.Errorf("cas: read %s: stored bytes hash to %s: %w", v.want, res.sum, ErrHashMismatch)
		v.verified(v.err)
		return n, v.err
	}
	v.hashed, v.ok = size, true
	v.verified(nil)
	m, err := rf.ReadFrom(&io.LimitedReader{R: v.f, N: 1})
	v.pos += m
	return n + m, err
}

// errStopped ends a hash whose send failed.
var errStopped = fmt.Errorf("cas: hash stopped")

// preadFile hashes the first size bytes of f with positioned reads (the
// file's offset belongs to the send running beside it). A file shorter
// than size is an error wrapping ErrHashMismatch.
func preadFile(f *os.File, size int64, stop *atomic.Bool) (Hash, error) {
	bp := hashChunks.Get().(*[]byte)
	defer hashChunks.Put(bp)
	buf := *bp
	h := NewHasher()
	var off int64
	for off < size {
		if stop.Load() {
			return Hash{}, errStopped
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		_, _ = h.Write(buf[:n])
		off += int64(n)
		switch {
		case err == io.EOF && off < size:
			return Hash{}, fmt.Errorf("stored bytes end after %d of %d: %w", off, size, ErrHashMismatch)
		case err != nil && err != io.EOF:
			return Hash{}, fmt.Errorf("read: %w", err)
		}
	}
	return h.Sum(), nil
}

// readerOnly and writerOnly hide every method but Read and Write, so that
// io.Copy does not recurse into WriteTo or ReadFrom.
type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }
