package pgindex

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/blockstore/blockstore/index"
)

// dbError is an engine error translated into the index's sentinels. It
// unwraps to both the sentinel (errors.Is(err, index.ErrConflict)) and the
// native error (errors.As(err, **pgconn.PgError)).
type dbError struct {
	sentinel error // index.ErrConflict, ErrUnavailable, ErrNotFound, or nil
	retry    bool  // a serialization failure or deadlock: run the transaction again
	err      error
}

func (e *dbError) Error() string {
	if e.sentinel != nil {
		return e.sentinel.Error() + ": " + e.err.Error()
	}
	return e.err.Error()
}

func (e *dbError) Unwrap() []error {
	if e.sentinel != nil {
		return []error{e.sentinel, e.err}
	}
	return []error{e.err}
}

// translate is the one place that maps PostgreSQL and pgx errors to the
// index's sentinels:
//
//   - 23505 unique violation, 23503 foreign key violation → index.ErrConflict
//   - BSK01 (blockstore_put_idempotency: the key is taken) → *index.ConflictError
//   - BSN01 (blockstore_claim_name: the name is taken) → index.NameTaken
//   - 40001 serialization failure, 40P01 deadlock → retryable (Update runs
//     the transaction again; when retries run out, index.ErrUnavailable)
//   - connection failures, class 08, 53 (resources), 57P0x (shutdown),
//     timeouts → index.ErrUnavailable
//   - pgx.ErrNoRows → index.ErrNotFound
//
// A cancelled context stays context.Canceled. Other errors pass unchanged.
// sqlstateKeyUsed is raised by blockstore_put_idempotency when a live
// record holds the key.
const sqlstateKeyUsed = "BSK01"

// sqlstateNameTaken is raised by blockstore_claim_name when another entity
// holds the name (DETAIL says which).
const sqlstateNameTaken = "BSN01"

func translate(err error) error {
	if err == nil {
		return nil
	}
	var de *dbError
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &dbError{sentinel: index.ErrNotFound, err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == sqlstateNameTaken:
			return nameTaken(pe.Detail)
		case pe.Code == sqlstateKeyUsed:
			return &index.ConflictError{Reason: "idempotency key already used"}
		case pe.Code == "23505" || pe.Code == "23503":
			return &dbError{sentinel: index.ErrConflict, err: err}
		case pe.Code == "40001" || pe.Code == "40P01":
			return &dbError{sentinel: index.ErrUnavailable, retry: true, err: err}
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"),
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "57014":
			// 57014 is a statement cancelled by statement_timeout or the server.
			return &dbError{sentinel: index.ErrUnavailable, err: err}
		}
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return &dbError{sentinel: index.ErrUnavailable, err: err}
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) {
		return &dbError{sentinel: index.ErrUnavailable, err: err}
	}
	return err
}

// retryable reports whether err asks for the transaction to run again.
func retryable(err error) bool {
	var de *dbError
	return errors.As(err, &de) && de.retry
}

// redactedError replaces the text of an error that might quote a connection
// string, keeping the chain for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact hides password, in clear and URL-escaped, and any password= or
// :password@ in URLs, from err's text.
func redact(err error, password string) error {
	if err == nil {
		return nil
	}
	msg := RedactURL(err.Error())
	if password != "" {
		for _, p := range []string{password, url.QueryEscape(password), url.PathEscape(password)} {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// RedactURL hides the password of every postgres:// or postgresql:// URL in
// s and of every password=… keyword, so that s can be logged.
func RedactURL(s string) string {
	var b strings.Builder
	for _, field := range strings.SplitAfter(s, " ") {
		trimmed := strings.TrimRight(field, " ")
		core := strings.Trim(trimmed, "`'\"()[],;")
		switch {
		case strings.HasPrefix(core, "postgres://") || strings.HasPrefix(core, "postgresql://"):
			if u, err := url.Parse(core); err == nil && u.User != nil {
				if _, ok := u.User.Password(); ok {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
					field = strings.Replace(field, core, u.String(), 1)
				}
			}
			if strings.Contains(field, "password=") {
				field = redactKeyword(field)
			}
		case strings.Contains(core, "password="):
			field = redactKeyword(field)
		}
		b.WriteString(field)
	}
	return b.String()
}

// redactKeyword replaces the value after each password= in s.
func redactKeyword(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "password=")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+len("password=")])
		b.WriteString("xxxxx")
		rest := s[i+len("password="):]
		end := strings.IndexAny(rest, " &`'\"")
		if end < 0 {
			return b.String()
		}
		s = rest[end:]
	}
}
