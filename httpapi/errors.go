package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/gc"
	"github.com/blockstore/blockstore/index"
	"github.com/blockstore/blockstore/refs"
)

// Errors of the HTTP layer itself; the service's and the stores' sentinels
// are mapped beside them in errorOf.
var (
	// ErrBadRequest: the request does not parse or breaks a rule of API.md.
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge: the request is over a limit.
	ErrTooLarge = errors.New("request too large")
	// ErrSlowClient: the request body arrived slower than the server's
	// minimum rate.
	ErrSlowClient = errors.New("request body arrived too slowly")
	// ErrGCNotConfigured: the server runs no garbage collector (Options.GC).
	ErrGCNotConfigured = errors.New("garbage collection is not configured on this server")
	// ErrNotReady: the index or the blob store does not answer (/readyz).
	ErrNotReady = errors.New("not ready")

	errNoRoute          = errors.New("no such path")
	errMethodNotAllowed = errors.New("method not allowed")
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTooLarge, fmt.Sprintf(format, args...))
}

// apiError is an error as the API shows it.
type apiError struct {
	Status  int       `json:"-"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Hash    *cas.Hash `json:"hash,omitempty"`   // the missing blob of a 404
	Holder  *string   `json:"holder,omitempty"` // the uuid holding what a 409 wanted
}

// errorOf maps an error to the API's status and code: the one place where
// the sentinels of index, cas, refs and this package meet the status codes
// of API.md. Messages of 5xx errors do not show internals.
func errorOf(err error) apiError {
	e := apiError{Message: err.Error()}
	var (
		maxBytes *http.MaxBytesError
		missing  *index.BlobMissingError
		conflict *index.ConflictError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, ErrNotReady):
		e.Status, e.Code = http.StatusServiceUnavailable, "unavailable"
		e.Message = "not ready: " + unavailable(err)
	case errors.As(err, &maxBytes), errors.Is(err, ErrTooLarge), errors.Is(err, cas.ErrTooLarge):
		e.Status, e.Code = http.StatusRequestEntityTooLarge, "too_large"
		if maxBytes != nil {
			e.Message = fmt.Sprintf("request body is larger than %d bytes", maxBytes.Limit)
		}
	case errors.Is(err, ErrSlowClient), errors.Is(err, io.ErrUnexpectedEOF) && !dependencyFailed(err):
		// A body cut short is the client's; a connection to the index or
		// the bucket cut short is not (it is 503 below).
		e.Status, e.Code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, cas.ErrHashMismatch):
		e.Status, e.Code = http.StatusUnprocessableEntity, "hash_mismatch"
	case errors.As(err, &missing):
		e.Status, e.Code = http.StatusNotFound, "not_found"
		e.Hash = &missing.Hash
		e.Message = "blob " + missing.Hash.String() + " is not stored: upload it (PUT /api/v1/blobs/{hash}) and retry"
	case errors.Is(err, ErrBadRequest), errors.Is(err, index.ErrInvalid), errors.Is(err, refs.ErrInvalid),
		errors.Is(err, cas.ErrInvalidHash), errors.Is(err, gc.ErrInvalid), errors.Is(err, errors.ErrUnsupported):
		e.Status, e.Code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, errNoRoute), errors.Is(err, index.ErrNotFound), errors.Is(err, cas.ErrNotFound),
		errors.Is(err, gc.ErrNotFound):
		e.Status, e.Code = http.StatusNotFound, "not_found"
	case errors.Is(err, errMethodNotAllowed):
		e.Status, e.Code = http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, index.ErrConflict), errors.Is(err, refs.ErrKeyReused), errors.Is(err, gc.ErrRunning):
		e.Status, e.Code = http.StatusConflict, "conflict"
		if errors.As(err, &conflict) && conflict.Holder != uuid.Nil {
			h := conflict.Holder.String()
			e.Holder = &h
		}
	case errors.Is(err, index.ErrGone):
		e.Status, e.Code = http.StatusGone, "gone"
	case errors.Is(err, ErrGCNotConfigured), errors.Is(err, ErrChangesNotConfigured):
		e.Status, e.Code = http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, index.ErrBlobBusy), errors.Is(err, index.ErrUnavailable), errors.Is(err, refs.ErrRetry),
		errors.Is(err, index.ErrClosed), errors.Is(err, cas.ErrClosed), errors.Is(err, gc.ErrClosed), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.As(err, &netErr),
		errors.Is(err, refs.ErrBlobStoreUnavailable):
		e.Status, e.Code = http.StatusServiceUnavailable, "unavailable"
		e.Message = unavailable(err)
	default:
		e.Status, e.Code = http.StatusInternalServerError, "internal"
		e.Message = "internal error"
	}
	e.Message = tidyMessage(e.Message)
	return e
}

// unavailable says what cannot answer behind a 503, and never how it is
// reached: the errors of the stores name hosts, ports, users, database names
// and buckets, which the log has (writeError) and the client must not see.
// The order matters: a full disk is said first, whichever store hit it; an
// index that does not answer is index.ErrUnavailable (pgindex translates
// its timeouts and connection errors into it), so a bare deadline or network
// error left over is the bucket's (s3store.TimeoutError is a deadline).
func unavailable(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The server's disk, not the request: nothing was stored, and the
		// same request succeeds once an operator frees space.
		return "out of space: nothing was stored; retry once space is freed"
	case errors.Is(err, index.ErrUnavailable), errors.Is(err, index.ErrClosed):
		return "the index is unavailable; retry later"
	case errors.Is(err, refs.ErrBlobStoreUnavailable), errors.Is(err, cas.ErrClosed):
		return "the blob store is unavailable; retry later"
	case errors.Is(err, index.ErrBlobBusy), errors.Is(err, refs.ErrRetry):
		return "a garbage collection sweep is deleting bytes this request needs: nothing was committed; send the request again, with its body"
	case errors.Is(err, gc.ErrClosed), errors.Is(err, context.Canceled):
		return "the server is stopping; retry"
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) {
		return "the blob store is unavailable; retry later"
	}
	return "the service cannot answer now; retry later"
}

// errorForStatus is the error of a status that the HTTP machinery chose
// (http.ServeContent's 416, a 500 of its own).
func errorForStatus(status int, message string) apiError {
	codes := map[int]string{
		http.StatusBadRequest:                   "bad_request",
		http.StatusUnauthorized:                 "unauthorized",
		http.StatusForbidden:                    "forbidden",
		http.StatusNotFound:                     "not_found",
		http.StatusMethodNotAllowed:             "method_not_allowed",
		http.StatusConflict:                     "conflict",
		http.StatusRequestEntityTooLarge:        "too_large",
		http.StatusRequestedRangeNotSatisfiable: "range_not_satisfiable",
		http.StatusUnprocessableEntity:          "hash_mismatch",
		http.StatusServiceUnavailable:           "unavailable",
	}
	code, ok := codes[status]
	if !ok {
		if status >= 500 {
			status, code = http.StatusInternalServerError, "internal"
		} else {
			status, code = http.StatusBadRequest, "bad_request"
		}
	}
	return apiError{Status: status, Code: code, Message: tidyMessage(message)}
}

// tidyMessage drops the package prefixes that wrapping leaves ("refs: ",
// "index: ") so that clients read a sentence.
func tidyMessage(m string) string {
	for _, p := range []string{"refs: ", "index: ", "cas: ", "httpapi: "} {
		m = strings.ReplaceAll(m, p, "")
	}
	return strings.TrimSpace(m)
}

// writeError answers err in the documented shape (no body for HEAD).
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := errorOf(err)
	switch {
	case e.Status >= 500:
		if r.Context().Err() == nil {
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "error", err.Error())
		}
	default:
		a.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "error", err.Error())
	}
	writeAPIError(w, r, e)
}

func writeAPIError(w http.ResponseWriter, r *http.Request, e apiError) {
	h := w.Header()
	for _, k := range []string{"ETag", "Cache-Control", "Last-Modified", "Content-Range", "Content-Encoding"} {
		if e.Status != http.StatusRequestedRangeNotSatisfiable || k != "Content-Range" {
			h.Del(k)
		}
	}
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	body, _ := encodeJSON(struct {
		Error apiError `json:"error"`
	}{e})
	writeBody(w, r, e.Status, body)
}

// dependencyFailed reports whether err says the index or the blob store
// failed, whatever the lower error it carries (an io.ErrUnexpectedEOF from
// a dropped database connection included).
func dependencyFailed(err error) bool {
	return errors.Is(err, index.ErrUnavailable) || errors.Is(err, refs.ErrBlobStoreUnavailable)
}
