package httpapi

import (
	"io"
	"net/http"
	"strings"
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

// ReadFrom keeps io.Copy on the underlying writer's fast path.
func (j *jsonErrors) ReadFrom(src io.Reader) (int64, error) {
	if !j.wroteHdr {
		j.WriteHeader(http.StatusOK)
	}
	if j.swallow {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := j.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{j.ResponseWriter}, src)
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
