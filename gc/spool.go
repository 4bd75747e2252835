package gc

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// A spool is an append-only temporary file of fixed-size records, written
// once and then read back in order, so that a sweep's plan (candidate blobs,
// expired versions) costs disk, not memory. The file is unlinked as soon as
// it is created (on systems that allow it), so a sweep that dies leaves no
// file behind.
type spool struct {
	f       *os.File
	w       *bufio.Writer
	recSize int
	n       int64 // records written
}

func newSpool(dir string, recSize int) (*spool, error) {
	f, err := os.CreateTemp(dir, "blockstore-gc-*.spool")
	if err != nil {
		return nil, fmt.Errorf("gc: create spool file: %w", err)
	}
	// Unlinking an open file is allowed on Unix; elsewhere close removes it.
	_ = os.Remove(f.Name())
	return &spool{f: f, w: bufio.NewWriterSize(f, 64<<10), recSize: recSize}, nil
}

// append writes one record; rec must be recSize bytes.
func (s *spool) append(rec []byte) error {
	if len(rec) != s.recSize {
		return fmt.Errorf("gc: spool record of %d bytes, want %d", len(rec), s.recSize)
	}
	if _, err := s.w.Write(rec); err != nil {
		return fmt.Errorf("gc: write spool: %w", err)
	}
	s.n++
	return nil
}

// flush makes every appended record readable.
func (s *spool) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("gc: write spool: %w", err)
	}
	return nil
}

// reader returns a reader over records [from, to). Several readers may be
// open at once (they read with ReadAt).
func (s *spool) reader(from, to int64) *spoolReader {
	sr := io.NewSectionReader(s.f, from*int64(s.recSize), (to-from)*int64(s.recSize))
	return &spoolReader{r: bufio.NewReaderSize(sr, 32<<10), rec: make([]byte, s.recSize)}
}

// all flushes and returns a reader over every record.
func (s *spool) all() (*spoolReader, error) {
	if err := s.flush(); err != nil {
		return nil, err
	}
	return s.reader(0, s.n), nil
}

func (s *spool) close() {
	name := s.f.Name()
	s.f.Close()
	_ = os.Remove(name)
}

type spoolReader struct {
	r   *bufio.Reader
	rec []byte
}

// next returns the next record (valid until the following call), or
// ok=false at the end.
func (r *spoolReader) next() (rec []byte, ok bool, err error) {
	if _, err := io.ReadFull(r.r, r.rec); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("gc: read spool: %w", err)
	}
	return r.rec, true, nil
}

// Stored blobs (from the blob store's walk) are sorted on disk: the walk
// promises no order, and the join with the registry needs ascending hashes.

const storedRecSize = cas.HashSize + 8 + 8

func encodeStored(b []byte, in cas.Info) {
	copy(b, in.Hash[:])
	binary.BigEndian.PutUint64(b[cas.HashSize:], uint64(in.Size))
	var mt int64
	if !in.ModTime.IsZero() {
		mt = in.ModTime.UnixNano()
	}
	binary.BigEndian.PutUint64(b[cas.HashSize+8:], uint64(mt))
}

func decodeStored(b []byte) cas.Info {
	var in cas.Info
	copy(in.Hash[:], b)
	in.Size = int64(binary.BigEndian.Uint64(b[cas.HashSize:]))
	if mt := int64(binary.BigEndian.Uint64(b[cas.HashSize+8:])); mt != 0 {
		in.ModTime = time.Unix(0, mt).UTC()
	}
	return in
}

// storedSorter sorts cas.Info records by hash in bounded memory: runs of
// runLen records are sorted in memory and written to a spool, then merged.
type storedSorter struct {
	dir    string
	runLen int
	buf    []cas.Info
	sp     *spool
	runs   []int64 // start record of each run written; the last run ends at sp.n
}

func newStoredSorter(dir string, runLen int) *storedSorter {
	return &storedSorter{dir: dir, runLen: runLen, buf: make([]cas.Info, 0, min(runLen, 4096))}
}

func (s *storedSorter) add(in cas.Info) error {
	s.buf = append(s.buf, in)
	if len(s.buf) >= s.runLen {
		return s.spill()
	}
	return nil
}

func compareInfo(a, b cas.Info) int { return bytes.Compare(a.Hash[:], b.Hash[:]) }

func (s *storedSorter) spill() error {
	if len(s.buf) == 0 {
		return nil
	}
	if s.sp == nil {
		sp, err := newSpool(s.dir, storedRecSize)
		if err != nil {
			return err
		}
		s.sp = sp
	}
	slices.SortFunc(s.buf, compareInfo)
	s.runs = append(s.runs, s.sp.n)
	rec := make([]byte, storedRecSize)
	for _, in := range s.buf {
		encodeStored(rec, in)
		if err := s.sp.append(rec); err != nil {
			return err
		}
	}
	s.buf = s.buf[:0]
	return nil
}

// sorted returns the records in ascending hash order, each hash once. The
// sorter must not be added to afterwards; close releases its file.
func (s *storedSorter) sorted() (storedIter, error) {
	if s.sp == nil {
		// Everything fit in one run: no file at all.
		slices.SortFunc(s.buf, compareInfo)
		return &sliceStored{items: s.buf}, nil
	}
	if err := s.spill(); err != nil {
		return nil, err
	}
	if err := s.sp.flush(); err != nil {
		return nil, err
	}
	s.buf = nil
	m := &mergeStored{}
	for i, from := range s.runs {
		to := s.sp.n
		if i+1 < len(s.runs) {
			to = s.runs[i+1]
		}
		r := s.sp.reader(from, to)
		rec, ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if ok {
			m.h = append(m.h, mergeHead{info: decodeStored(rec), r: r})
		}
	}
	heap.Init(&m.h)
	return m, nil
}

func (s *storedSorter) close() {
	if s.sp != nil {
		s.sp.close()
	}
}

// storedIter yields stored blobs in ascending hash order.
type storedIter interface {
	next() (cas.Info, bool, error)
}

type sliceStored struct {
	items []cas.Info
	last  *cas.Hash
}

func (s *sliceStored) next() (cas.Info, bool, error) {
	for len(s.items) > 0 {
		in := s.items[0]
		s.items = s.items[1:]
		if s.last != nil && *s.last == in.Hash {
			continue
		}
		h := in.Hash
		s.last = &h
		return in, true, nil
	}
	return cas.Info{}, false, nil
}

type mergeHead struct {
	info cas.Info
	r    *spoolReader
}

type mergeHeap []mergeHead

func (h mergeHeap) Len() int           { return len(h) }
func (h mergeHeap) Less(i, j int) bool { return compareInfo(h[i].info, h[j].info) < 0 }
func (h mergeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)        { *h = append(*h, x.(mergeHead)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeStored merges sorted runs with a heap, dropping repeated hashes.
type mergeStored struct {
	h    mergeHeap
	last *cas.Hash
}

func (m *mergeStored) next() (cas.Info, bool, error) {
	for len(m.h) > 0 {
		top := &m.h[0]
		in := top.info
		rec, ok, err := top.r.next()
		if err != nil {
			return cas.Info{}, false, err
		}
		if ok {
			top.info = decodeStored(rec)
			heap.Fix(&m.h, 0)
		} else {
			heap.Pop(&m.h)
		}
		if m.last != nil && *m.last == in.Hash {
			continue
		}
		h := in.Hash
		m.last = &h
		return in, true, nil
	}
	return cas.Info{}, false, nil
}
