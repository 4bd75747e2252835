package httpapi

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/blockstore/blockstore/cas"
)

// content is bytes served with http.ServeContent.
type content struct {
	hash         cas.Hash
	mediaType    string
	cacheControl string // "" for none
	body         io.ReadSeeker
}

// serveContent serves c with Range (206, 416), ETag and If-None-Match (304)
// through http.ServeContent, whose own error answers (416, 500) are turned
// into the API's JSON errors. Stored bytes are whatever clients uploaded:
// they are never sniffed and, should a browser reach them, never run.
func (a *api) serveContent(w http.ResponseWriter, r *http.Request, c content) {
	h := w.Header()
	h.Set("ETag", etag(c.hash))
	h.Set("Content-Type", c.mediaType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	if c.cacheControl != "" {
		h.Set("Cache-Control", c.cacheControl)
	}
	body := &watchedReader{ReadSeeker: c.body}
	http.ServeContent(&jsonErrors{ResponseWriter: w, r: r}, r, "", time.Time{}, body)
	// Headers are gone by the time a read fails (a large blob is verified
	// as it streams): the client sees a short body; the operator sees this.
	if body.err != nil && r.Context().Err() == nil {
		a.log.Error("serving stored bytes failed", "path", r.URL.Path, "hash", c.hash.String(), "error", body.err.Error())
	}
}

// watchedReader remembers the first read error other than io.EOF.
type watchedReader struct {
	io.ReadSeeker
	err error
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.ReadSeeker.Read(p)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

// jsonErrors passes a response through, except that an error status
// (>= 400) is answered with the API's JSON error instead of the text that
// follows it.
type jsonErrors struct {
	http.ResponseWriter
	r        *http.Request
	swallow  bool // an error was written: drop the body that follows
	wroteHdr bool
}

func (j *jsonErrors) WriteHeader(code int) {
	if j.wroteHdr {
		return
	}
	j.wroteHdr = true
	if code < 400 {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	j.swallow = true
	msg := strings.ToLower(http.StatusText(code))
	if code == http.StatusRequestedRangeNotSatisfiable {
		msg = "the range asked is not satisfiable for " + j.ResponseWriter.Header().Get("Content-Range")
	}
	h := j.ResponseWriter.Header()
	h.Del("X-Content-Type-Options")
	h.Del("Content-Security-Policy")
	writeAPIError(j.ResponseWriter, j.r, errorForStatus(code, msg))
}

func (j *jsonErrors) Write(p []byte) (int, error) {
	if !j.wroteHdr {
		j.WriteHeader(http.StatusOK)
	}
	if j.swallow {
		return len(p), nil
	}
	return j.ResponseWriter.Write(p)
}

// ReadFrom copies the content (http.ServeContent calls it): pipelined when
// it is large.
func (j *jsonErrors) ReadFrom(src io.Reader) (int64, error) {
	if !j.wroteHdr {
		j.WriteHeader(http.StatusOK)
	}
	if j.swallow {
		return io.Copy(io.Discard, src)
	}
	if n, err, ok := writeRest(j.ResponseWriter, src); ok {
		return n, err
	}
	if lr, ok := src.(*io.LimitedReader); ok && lr.N <= pipelineFrom {
		if rf, ok := j.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(src)
		}
		return io.Copy(writerOnly{j.ResponseWriter}, src)
	}
	return copyPipelined(writerOnly{j.ResponseWriter}, src)
}

// writeRest hands the copy to the content's own WriteTo when src
// (http.ServeContent's io.LimitedReader over a watchedReader) asks for all
// of the content from its offset on: a blob in a local file is then sent
// with sendfile and hashed beside the send (cas.FileReader). ok is false
// when src is anything else.
func writeRest(w io.Writer, src io.Reader) (n int64, err error, ok bool) {
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		return 0, nil, false
	}
	wr, ok := lr.R.(*watchedReader)
	if !ok {
		return 0, nil, false
	}
	wt, ok := wr.ReadSeeker.(io.WriterTo)
	if !ok {
		return 0, nil, false
	}
	sized, ok := wr.ReadSeeker.(interface{ Size() int64 })
	if !ok {
		return 0, nil, false
	}
	pos, err := wr.Seek(0, io.SeekCurrent)
	if err != nil || pos+lr.N != sized.Size() {
		return 0, nil, false
	}
	n, err = wt.WriteTo(w)
	lr.N -= n
	if err != nil && wr.err == nil {
		wr.err = err
	}
	return n, err, true
}

// pipelineFrom is the size from which content is copied by two goroutines.
const pipelineFrom = 1 << 20

// copyPipelined copies src to dst with two goroutines: one reads the next
// chunk from the blob store (a read that also verifies the hash) while the
// other writes the previous one to the client, so that the two overlap on
// different cores. A read error other than io.EOF (a hash mismatch at the
// end of a blob) is returned without writing the chunk it ended. src is not
// touched after copyPipelined returns.
func copyPipelined(dst io.Writer, src io.Reader) (written int64, err error) {
	const depth = 2
	type chunk struct {
		b   *[]byte
		n   int
		err error
	}
	full := make(chan chunk, depth)
	free := make(chan *[]byte, depth+1)
	for range depth + 1 {
		free <- copyBuffers.Get().(*[]byte)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(full)
		for {
			var b *[]byte
			select {
			case b = <-free:
			case <-quit:
				return
			}
			n, err := io.ReadFull(src, *b)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			full <- chunk{b, n, err} // the writer drains full until it closes
			if err != nil {
				return
			}
		}
	})
	defer func() {
		close(quit)
		for c := range full {
			copyBuffers.Put(c.b)
		}
		wg.Wait()
		for {
			select {
			case b := <-free:
				copyBuffers.Put(b)
			default:
				return
			}
		}
	}()
	for c := range full {
		if c.err != nil && c.err != io.EOF {
			copyBuffers.Put(c.b)
			return written, c.err
		}
		if c.n > 0 {
			n, err := dst.Write((*c.b)[:c.n])
			written += int64(n)
			if err != nil {
				copyBuffers.Put(c.b)
				return written, err
			}
		}
		if c.err == io.EOF {
			copyBuffers.Put(c.b)
			return written, nil
		}
		free <- c.b
	}
	return written, nil
}

func (j *jsonErrors) Unwrap() http.ResponseWriter { return j.ResponseWriter }

// writerOnly hides every method but Write (so io.Copy does not recurse
// into ReadFrom).
type writerOnly struct{ io.Writer }

// etagMatches reports whether an If-None-Match header names tag (or is *).
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
