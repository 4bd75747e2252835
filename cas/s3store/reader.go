package s3store

import (
	"context"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/blockstore/blockstore/cas"
)

// Open implements cas.Backend with one GET: its answer gives the size (or
// says the blob is missing), and its body is the Reader's stream. A Seek
// drops the stream; the next Read asks for the rest from the new offset
// (a ranged GET) when it is not where the stream stands, and ReadAt asks
// for its range alone. minio-go's Object
// sends a HEAD for the size first and then the GET, and hands every
// Read to a goroutine of its own. The first answer and each read are
// bounded by the timeout.
func (s *Store) Open(ctx context.Context, h cas.Hash) (cas.Reader, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	r := &objectReader{s: s, key: s.Key(h), ctx: ctx, cancel: cancel}
	r.cut = func() { cancel(errNoAnswer) }
	var info minio.ObjectInfo
	var err error
	guard(s.timeout, r.cut, func() {
		r.body, info, _, err = s.core.GetObject(ctx, s.bucket, r.key, minio.GetObjectOptions{})
	})
	if err != nil {
		err = s.late(ctx, translate(err))
		cancel(nil)
		return nil, err
	}
	r.size = info.Size
	return r, nil
}

// objectReader is a cas.Reader over one object. It is used by one
// goroutine at a time.
type objectReader struct {
	s      *Store
	key    string
	size   int64
	ctx    context.Context // the object's requests'; cut when a read stalls
	cancel context.CancelCauseFunc
	cut    func()

	pos  int64         // the offset of the next Read
	body io.ReadCloser // a stream of the object from bodyPos on, or nil
	// bodyPos is where body stands. A Seek only moves pos: http.ServeContent
	// seeks to the end for the size and back before it reads, which must
	// not cost the first GET's answer.
	bodyPos int64
}

// get asks for the object's bytes from off to end (exclusive; 0: to the
// object's end).
func (r *objectReader) get(off, end int64) (io.ReadCloser, error) {
	// SetRange(0, 0) is the first byte alone: from offset 0 to the end
	// is no range at all.
	var opt minio.GetObjectOptions
	switch {
	case end > 0:
		if err := opt.SetRange(off, end-1); err != nil {
			return nil, err
		}
	case off > 0:
		if err := opt.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	var body io.ReadCloser
	var err error
	guard(r.s.timeout, r.cut, func() {
		body, _, _, err = r.s.core.GetObject(r.ctx, r.s.bucket, r.key, opt)
	})
	if err != nil {
		return nil, r.s.late(r.ctx, translate(err))
	}
	return body, nil
}

func (r *objectReader) Read(p []byte) (n int, err error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body != nil && r.bodyPos != r.pos {
		r.body.Close()
		r.body = nil
	}
	if r.body == nil {
		if r.body, err = r.get(r.pos, 0); err != nil {
			return 0, err
		}
		r.bodyPos = r.pos
	}
	if rest := r.size - r.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	// Fill p: a body read returns what one socket read had, often a few
	// KiB, and those who read from here (the hash, the client's socket)
	// work best on large slices. Each wait is bounded by the timeout.
	for n < len(p) && err == nil {
		var k int
		guard(r.s.timeout, r.cut, func() { k, err = r.body.Read(p[n:]) })
		n += k
	}
	r.pos += int64(n)
	r.bodyPos = r.pos
	switch {
	case err == io.EOF && r.pos < r.size:
		err = io.ErrUnexpectedEOF
	case err == nil && r.pos == r.size:
		// Readers that count bytes (http.ServeContent) stop here, before
		// the body says EOF; a body closed before its EOF costs its
		// connection. Read the EOF now so the connection is reused.
		var one [1]byte
		var extra int
		guard(r.s.timeout, r.cut, func() { extra, _ = r.body.Read(one[:]) })
		err = io.EOF
		if extra > 0 {
			err = fmt.Errorf("s3store: object %s is longer than its %d bytes", r.key, r.size)
		}
	}
	return n, r.s.late(r.ctx, translateRead(err))
}

func (r *objectReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("s3store: read at negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := p
	if rest := r.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	body, err := r.get(off, off+int64(len(want)))
	if err != nil {
		return 0, err
	}
	defer body.Close()
	var n int
	guard(r.s.timeout, r.cut, func() { n, err = io.ReadFull(body, want) })
	if err == nil && len(want) < len(p) {
		err = io.EOF
	}
	return n, r.s.late(r.ctx, translateRead(err))
}

func (r *objectReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return r.pos, fmt.Errorf("s3store: seek: invalid whence %d", whence)
	}
	if off < 0 {
		return r.pos, fmt.Errorf("s3store: seek to negative offset %d", off)
	}
	r.pos = off
	return off, nil
}

func (r *objectReader) Size() int64 { return r.size }

func (r *objectReader) Close() error {
	var err error
	if r.body != nil {
		err = r.body.Close()
		r.body = nil
	}
	r.cancel(nil)
	return err
}

func translateRead(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return translate(err)
}
