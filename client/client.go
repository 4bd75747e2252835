package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/blockstore/blockstore/internal/backoff"
)

// Defaults of Options.
const (
	DefaultRetries    = 4
	DefaultBackoff    = 200 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	DefaultUserAgent  = "blockstore-client/1"
)

// apiPrefix is the base path of version 1 of the API.
const apiPrefix = "/api/v1"

// maxErrorBody bounds how much of an error answer the client reads.
const maxErrorBody = 64 << 10

// Options configure a Client. The zero value works.
type Options struct {
	// HTTPClient sends the requests; nil is a client with a transport tuned
	// for many parallel streams to one server (no overall timeout: bodies
	// may be gigabytes; use contexts).
	HTTPClient *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Retries is how many times a request is sent again after a connection
	// error or a 503: 0 is DefaultRetries, a negative number none.
	Retries int
	// Backoff is the wait before the first retry, doubled on each next one
	// (with jitter) up to MaxBackoff: 0 is DefaultBackoff.
	Backoff time.Duration
	// MaxBackoff caps one wait: 0 is DefaultMaxBackoff.
	MaxBackoff time.Duration
	// UserAgent is sent as User-Agent: "" is DefaultUserAgent.
	UserAgent string
	// PreferRedirect asks the server to answer downloads of blobs and of
	// asset content with a redirect to the blob store's own short-lived URL
	// (`Prefer: redirect`, honoured on S3 deployments), which the client
	// then fetches without the token. Bytes then bypass the server, which
	// does not verify them, and such a Download has no ETag; a redirect
	// that fails is retried through the server.
	PreferRedirect bool
}

// Client talks to one Blockstore server. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	hc         *http.Client
	token      string
	retries    int
	backoff    time.Duration
	maxBackoff time.Duration
	userAgent  string
	// preferRedirect is Options.PreferRedirect; noFollow is hc without
	// following redirects, so that the token never goes to the blob store.
	preferRedirect bool
	noFollow       *http.Client
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8080",
// optionally with a path prefix when a proxy serves the API under one).
func New(baseURL string, opt Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: base URL %q: scheme must be http or https", ErrInvalid, u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q has no host", ErrInvalid, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: base URL %q has a query or fragment", ErrInvalid, u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:       u,
		hc:         opt.HTTPClient,
		token:      opt.Token,
		retries:    opt.Retries,
		backoff:    opt.Backoff,
		maxBackoff: opt.MaxBackoff,
		userAgent:  opt.UserAgent,
		sleep:      backoff.Sleep,
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport()}
	}
	if opt.PreferRedirect {
		c.preferRedirects()
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.backoff <= 0 {
		c.backoff = DefaultBackoff
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = DefaultMaxBackoff
	}
	if c.maxBackoff < c.backoff {
		c.maxBackoff = c.backoff
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	return c, nil
}

// BaseURL returns the server's base URL as given to New (without a trailing slash).
func (c *Client) BaseURL() string { return c.base.String() }

// newTransport is http.DefaultTransport with room for many parallel
// streams to one host and larger buffers for bulk bodies.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.WriteBufferSize = 128 << 10
	t.ReadBufferSize = 128 << 10
	return t
}

// Body is the bytes of an upload and the way to send them again on a
// retry. The zero Body is empty (no bytes).
type Body struct {
	size int64 // -1 when unknown (sent chunked)
	open func() (io.ReadCloser, error)
	// used is shared by copies of a Body made from a plain io.Reader, which
	// can be read only once.
	used *bool
}

// OpenBody returns a Body whose bytes open returns, called once per attempt;
// the client closes what it returns. size is the length in bytes, or -1
// when unknown.
func OpenBody(size int64, open func() (io.ReadCloser, error)) Body {
	return Body{size: size, open: open}
}

// BytesBody returns a Body over b (which must not change while in use).
func BytesBody(b []byte) Body {
	return OpenBody(int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// ReaderBody returns a Body over r. An io.ReadSeeker is sent from its
// current offset and rewound there for each retry; any other reader is sent
// once (a retry that would need it again fails with ErrNotRewindable).
// size is the number of bytes r will give, or -1 when unknown. The client
// does not close r.
func ReaderBody(r io.Reader, size int64) Body {
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			return OpenBody(size, func() (io.ReadCloser, error) {
				if _, err := rs.Seek(start, io.SeekStart); err != nil {
					return nil, fmt.Errorf("client: rewind body: %w", err)
				}
				return io.NopCloser(rs), nil
			})
		}
	}
	used := false
	return Body{size: size, used: &used, open: func() (io.ReadCloser, error) {
		return io.NopCloser(r), nil
	}}
}

// Size is the body's length in bytes, or -1 when unknown.
func (b Body) Size() int64 {
	if b.open == nil {
		return 0
	}
	return b.size
}

// IsZero reports whether b is the zero (empty) Body.
func (b Body) IsZero() bool { return b.open == nil }

// reopenable reports whether another attempt can send the bytes again.
func (b Body) reopenable() bool { return b.used == nil || !*b.used }

// request is one logical API call, sent once or more.
type request struct {
	method string
	path   string // under the base URL, starting with "/"
	query  url.Values
	header http.Header
	body   Body
	// idempotencyKey is sent as Idempotency-Key on every attempt.
	idempotencyKey string
	// deleting: a DELETE that answers 404 after an attempt whose outcome is
	// unknown (the connection broke) succeeded on that attempt.
	deleting bool
	// noFollow: a redirect is returned as it is, not followed.
	noFollow bool
}

func jsonRequest(method, path string, v any) (*request, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("client: encode %s %s: %w", method, path, err)
	}
	r := &request{method: method, path: path, body: BytesBody(buf.Bytes()), header: http.Header{}}
	r.header.Set("Content-Type", "application/json")
	return r, nil
}

// creating marks r as a creating POST: it gets a fresh Idempotency-Key.
func (r *request) creating() *request {
	r.idempotencyKey = newIdempotencyKey()
	return r
}

func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// do sends r, retrying connection errors and 503s, and returns a response
// whose status is below 400 (the caller must close its body) or an error:
// an *Error for the server's refusals.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	var lastErr error
	var after time.Duration // the server's Retry-After on the last 503
	ambiguous := false      // an earlier attempt may have reached the server
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > c.retries {
				return nil, lastErr
			}
			if !r.body.reopenable() {
				return nil, fmt.Errorf("%w: %w", ErrNotRewindable, lastErr)
			}
			if err := c.sleep(ctx, c.wait(attempt, after)); err != nil {
				return nil, fmt.Errorf("client: %s %s: %w (after %w)", r.method, r.path, err, lastErr)
			}
		}
		resp, err := c.send(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, ctx.Err())
			}
			if !retryable(err) {
				return nil, err
			}
			lastErr, after, ambiguous = err, 0, true
			continue
		}
		if resp.StatusCode < 400 {
			return resp, nil
		}
		apiErr := c.decodeError(r, resp)
		if resp.StatusCode == http.StatusServiceUnavailable {
			lastErr, after = apiErr, retryAfter(resp)
			continue
		}
		if r.deleting && ambiguous && resp.StatusCode == http.StatusNotFound {
			return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Header: http.Header{}}, nil
		}
		return nil, apiErr
	}
}

// wait is the pause before retry number attempt (1-based): exponential with
// jitter in [d/2, d], at least the server's Retry-After, at most maxBackoff.
func (c *Client) wait(attempt int, after time.Duration) time.Duration {
	d := backoff.Jitter(backoff.Policy{First: c.backoff, Max: c.maxBackoff}.Delay(attempt))
	if after > d {
		d = min(after, c.maxBackoff)
	}
	return d
}

func retryAfter(resp *http.Response) time.Duration {
	s := resp.Header.Get("Retry-After")
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		return time.Until(t)
	}
	return 0
}

// retryable reports whether err is a failure to talk to the server (as
// opposed to a request the client could not even build).
func retryable(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// transportError is a failure of the connection: nothing or only part of an
// answer arrived.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	return u.String()
}

// send makes one attempt.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	var body io.ReadCloser = http.NoBody
	size := int64(0)
	if r.body.open != nil {
		if r.body.used != nil {
			*r.body.used = true
		}
		rc, err := r.body.open()
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: open body: %w", r.method, r.path, err)
		}
		body, size = rc, r.body.size
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r.path, r.query), body)
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	if size == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
		body.Close()
	} else {
		req.ContentLength = size // -1: chunked
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}
	hc := c.hc
	if r.noFollow {
		hc = c.noFollow
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &transportError{fmt.Errorf("client: %s %s: %w", r.method, r.path, unwrapURLError(err))}
	}
	return resp, nil
}

// unwrapURLError drops *url.Error's copy of the URL, whose query may hold
// names the caller did not ask to print twice.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError reads an error answer and closes its body.
func (c *Client) decodeError(r *request, resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode, Method: r.method, Path: r.path}
	if r.method == http.MethodHead {
		return e
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	} else if len(b) > 0 {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		e.Message = msg
	}
	return e
}

// call sends r and decodes a JSON answer into out (when out is not nil).
// A broken answer body is retried like a broken connection.
func (c *Client) call(ctx context.Context, r *request, out any) (status int, err error) {
	for tries := 0; ; tries++ {
		resp, err := c.do(ctx, r)
		if err != nil {
			return 0, err
		}
		if out == nil || resp.StatusCode == http.StatusNoContent || r.method == http.MethodHead {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		err = json.NewDecoder(resp.Body).Decode(out)
		resp.Body.Close()
		if err == nil {
			return resp.StatusCode, nil
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) || tries >= c.retries || !r.body.reopenable() || ctx.Err() != nil {
			return 0, fmt.Errorf("client: %s %s: decode answer: %w", r.method, r.path, err)
		}
		// The connection broke in the middle of the answer: ask again (with
		// the same idempotency key, so a create is not repeated).
		if err := c.sleep(ctx, c.wait(tries+1, 0)); err != nil {
			return 0, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
		}
	}
}

// isConnError reports whether err is a network failure (for callers that
// want to tell the server's refusals from an unreachable server).
func isConnError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || retryable(err)
}

// IsTemporary reports whether err is a failure that a later attempt may not
// meet: a connection error or a 503 that outlived the retries.
func IsTemporary(err error) bool {
	return isConnError(err) || errors.Is(err, ErrUnavailable)
}

// PreferringRedirects returns a client like c (same server, token and
// transport) whose downloads prefer redirects, as Options.PreferRedirect.
func (c *Client) PreferringRedirects() *Client {
	cc := *c
	cc.preferRedirects()
	return &cc
}

func (c *Client) preferRedirects() {
	c.preferRedirect = true
	nf := *c.hc
	nf.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.noFollow = &nf
}
