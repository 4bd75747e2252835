package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Defaults of ServerOptions.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMinRateBytes      = 64 << 10
	DefaultMinRateWindow     = 30 * time.Second
)

// ServerOptions configure the http.Server of NewServer. There is no total
// read or write timeout: a long upload or download that keeps moving is
// never cut off; a client that stalls is.
type ServerOptions struct {
	// ReadHeaderTimeout bounds the time to read a request's headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its
	// next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the size of a request's headers.
	MaxHeaderBytes int
	// MinRateBytes and MinRateWindow set the minimum rate of request and
	// response bodies: a client that sends (or takes) fewer than
	// MinRateBytes in a window of MinRateWindow is cut off. Negative
	// MinRateBytes disables the check.
	MinRateBytes  int64
	MinRateWindow time.Duration
	// Logger receives the server's own errors; nil discards them.
	Logger *slog.Logger
}

// NewServer returns an http.Server for h on addr with header, idle and
// minimum-rate limits (ServerOptions).
func NewServer(addr string, h http.Handler, opt ServerOptions) *http.Server {
	if opt.ReadHeaderTimeout <= 0 {
		opt.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = DefaultIdleTimeout
	}
	if opt.MaxHeaderBytes <= 0 {
		opt.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opt.MinRateBytes == 0 {
		opt.MinRateBytes = DefaultMinRateBytes
	}
	if opt.MinRateWindow <= 0 {
		opt.MinRateWindow = DefaultMinRateWindow
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.MinRateBytes > 0 {
		h = &minRate{next: h, bytes: opt.MinRateBytes, window: opt.MinRateWindow}
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		IdleTimeout:       opt.IdleTimeout,
		MaxHeaderBytes:    opt.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// onDeadline, when set, is told every deadline minRate sets on a
// connection ("read" or "write"; the zero time lifts it), so that tests
// wait for the deadlines the code chose instead of guessing with sleeps.
var onDeadline func(kind string, at time.Time)

func setReadDeadline(rc *http.ResponseController, at time.Time) {
	if onDeadline != nil {
		onDeadline("read", at)
	}
	_ = rc.SetReadDeadline(at)
}

func setWriteDeadline(rc *http.ResponseController, at time.Time) {
	if onDeadline != nil {
		onDeadline("write", at)
	}
	_ = rc.SetWriteDeadline(at)
}

// minRate cuts off a client whose request body arrives, or whose response
// is taken, slower than bytes per window. It works with connection
// deadlines: each time a window's worth of bytes has moved, the deadline
// moves a window ahead; a client that stalls meets it.
type minRate struct {
	next   http.Handler
	bytes  int64
	window time.Duration
}

func (m *minRate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// A deadline left by an earlier request on this connection must not
	// cut this one.
	setWriteDeadline(rc, time.Time{})
	var body *rateBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &rateBody{rc: rc, body: r.Body, min: m.bytes, window: m.window}
		body.extend(time.Now())
		r.Body = body
	}
	rw := &rateWriter{ResponseWriter: w, rc: rc, min: m.bytes, window: m.window}
	defer func() {
		if body != nil {
			body.stop()
		}
		// The server flushes what is buffered after the handler returns:
		// give it a window, not a stale deadline.
		setWriteDeadline(rc, time.Now().Add(m.window))
	}()
	m.next.ServeHTTP(rw, r)
}

// rateBody is a request body read under a moving read deadline. When the
// body ends, the deadline is lifted: a deadline that fired while the
// handler still works would cancel the request's context.
type rateBody struct {
	rc     *http.ResponseController
	body   io.ReadCloser
	min    int64
	window time.Duration

	mu    sync.Mutex
	n     int64 // bytes read since the deadline last moved
	ended bool  // EOF or error: the deadline is lifted or moot
}

func (b *rateBody) extend(now time.Time) {
	setReadDeadline(b.rc, now.Add(b.window))
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return n, err
	}
	b.n += int64(n)
	if b.n >= b.min {
		b.n = 0
		b.extend(time.Now())
	}
	switch {
	case err == io.EOF:
		b.ended = true
		setReadDeadline(b.rc, time.Time{})
	case err != nil:
		b.ended = true
		if isTimeout(err) {
			err = fmt.Errorf("%w: fewer than %d bytes in %s", ErrSlowClient, b.min, b.window)
		}
	}
	return n, err
}

func (b *rateBody) Close() error { return b.body.Close() }

// stop lifts the deadline when the handler returns with the body read to
// its end; otherwise the deadline stays, so that the server's draining of
// an unread body cannot hang on a stalled client.
func (b *rateBody) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// rateWriter writes a response under a moving write deadline, set at the
// first write (a handler may think a long time before it writes).
type rateWriter struct {
	http.ResponseWriter
	rc     *http.ResponseController
	min    int64
	window time.Duration
	n      int64
	armed  bool
}

func (w *rateWriter) account(n int) {
	w.n += int64(n)
	if !w.armed || w.n >= w.min {
		w.armed = true
		w.n = 0
		setWriteDeadline(w.rc, time.Now().Add(w.window))
	}
}

func (w *rateWriter) Write(p []byte) (int, error) {
	if !w.armed {
		w.account(0)
	}
	// Write in slices of at most min bytes so that a large write is not
	// judged as a whole against one window.
	written := 0
	for len(p) > 0 {
		k := min(int64(len(p)), max(w.min, 1))
		n, err := w.ResponseWriter.Write(p[:k])
		written += n
		w.account(n)
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

// copyBuffers are the buffers of rateWriter.ReadFrom (large writes cost
// fewer system calls).
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 256<<10)
	return &b
}}

// ReadFrom copies src with a large buffer.
func (w *rateWriter) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
			if _, ok := lr.R.(*os.File); ok {
				return w.sendFile(rf, lr)
			}
		}
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(writerOnly{w}, src, *bp)
}

func (w *rateWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sendFile passes a file's bytes (cas.FileReader's send) to the server's
// own ReadFrom, which uses sendfile, in slices of at most min bytes each
// under its own deadline, as Write does.
func (w *rateWriter) sendFile(rf io.ReaderFrom, lr *io.LimitedReader) (int64, error) {
	var total int64
	for lr.N > 0 {
		if !w.armed {
			w.account(0)
		}
		k := min(lr.N, max(w.min, 1))
		n, err := rf.ReadFrom(&io.LimitedReader{R: lr.R, N: k})
		lr.N -= n
		total += n
		w.account(int(n))
		if err != nil || n < k {
			return total, err
		}
	}
	return total, nil
}
