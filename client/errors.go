package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors, one per error code of the API. An *Error matches the
// sentinel of its code with errors.Is (a HEAD answer, which has no body,
// matches by its status).
var (
	ErrBadRequest          = errors.New("client: bad request")
	ErrUnauthorized        = errors.New("client: unauthorized")
	ErrForbidden           = errors.New("client: forbidden")
	ErrNotFound            = errors.New("client: not found")
	ErrMethodNotAllowed    = errors.New("client: method not allowed")
	ErrConflict            = errors.New("client: conflict")
	ErrTooLarge            = errors.New("client: too large")
	ErrRangeNotSatisfiable = errors.New("client: range not satisfiable")
	ErrHashMismatch        = errors.New("client: hash mismatch")
	ErrUnavailable         = errors.New("client: unavailable")
	ErrInternal            = errors.New("client: internal server error")
)

// Errors the client makes up itself, before or without asking the server.
var (
	// ErrInvalid: an argument the server would refuse anyway (OLX that is
	// not UTF-8, a zero hash, a negative version).
	ErrInvalid = errors.New("client: invalid argument")
	// ErrNotRewindable: a retry was needed but the body of the request was a
	// plain io.Reader already read. The error of the last attempt is wrapped
	// beside it.
	ErrNotRewindable = errors.New("client: request body cannot be sent again")
)

// Error is the server's answer when it said no: the HTTP status and the
// API's {"error": {"code", "message"}}. Code and Message are empty for HEAD
// requests and for answers that were not the API's JSON (a proxy's page).
type Error struct {
	Status  int
	Code    string
	Message string
	// Method and Path name the request that failed (the path without the
	// query string, which may hold names).
	Method, Path string
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	msg := fmt.Sprintf("client: %s %s: %d %s", e.Method, e.Path, e.Status, code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

var codeSentinels = map[string]error{
	"bad_request":           ErrBadRequest,
	"unauthorized":          ErrUnauthorized,
	"forbidden":             ErrForbidden,
	"not_found":             ErrNotFound,
	"method_not_allowed":    ErrMethodNotAllowed,
	"conflict":              ErrConflict,
	"too_large":             ErrTooLarge,
	"range_not_satisfiable": ErrRangeNotSatisfiable,
	"hash_mismatch":         ErrHashMismatch,
	"unavailable":           ErrUnavailable,
	"internal":              ErrInternal,
	"gone":                  ErrGone,
}

var statusSentinels = map[int]error{
	http.StatusBadRequest:                   ErrBadRequest,
	http.StatusUnauthorized:                 ErrUnauthorized,
	http.StatusForbidden:                    ErrForbidden,
	http.StatusNotFound:                     ErrNotFound,
	http.StatusMethodNotAllowed:             ErrMethodNotAllowed,
	http.StatusConflict:                     ErrConflict,
	http.StatusRequestEntityTooLarge:        ErrTooLarge,
	http.StatusRequestedRangeNotSatisfiable: ErrRangeNotSatisfiable,
	http.StatusUnprocessableEntity:          ErrHashMismatch,
	http.StatusServiceUnavailable:           ErrUnavailable,
	http.StatusInternalServerError:          ErrInternal,
	http.StatusGone:                         ErrGone,
}

// Is makes errors.Is(err, ErrNotFound) and the like true for an *Error of
// that code (or, without a code, of that status).
func (e *Error) Is(target error) bool {
	if s, ok := codeSentinels[e.Code]; ok {
		return s == target
	}
	return statusSentinels[e.Status] == target
}

// StatusOf returns the HTTP status of the *Error inside err, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
