package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// DefaultTimeout is Config.Timeout when it is 0.
const DefaultTimeout = 30 * time.Second

// copyRate is the slowest server-side copy a move from a temporary key is
// allowed: its bound is the timeout plus the size at this rate.
const copyRate = 20 << 20 // bytes per second

// errNoAnswer is the cause of a wait on the bucket that outlived the timeout.
var errNoAnswer = errors.New("s3store: no answer from the bucket")

// TimeoutError is the error of a wait on the bucket that outlived
// Config.Timeout: the bucket, or the network to it, stopped answering. It
// matches context.DeadlineExceeded with errors.Is.
type TimeoutError struct {
	Timeout time.Duration
	Err     error // what the request returned when it was cut
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("s3store: no answer from the bucket within %s: %v", e.Timeout, e.Err)
}

func (e *TimeoutError) Unwrap() []error { return []error{context.DeadlineExceeded, e.Err} }

// bounded returns ctx bounded by the timeout plus extra.
func (s *Store) bounded(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.timeout+extra, errNoAnswer)
}

// late turns err into a *TimeoutError when ctx was cut by the timeout.
func (s *Store) late(ctx context.Context, err error) error {
	if err == nil || err == io.EOF || !errors.Is(context.Cause(ctx), errNoAnswer) {
		return err
	}
	return &TimeoutError{Timeout: s.timeout, Err: err}
}

// guard runs f and calls cut if f has not returned within d: a wait that
// makes no progress for d ends, a long transfer that keeps moving does not.
func guard(d time.Duration, cut func(), f func()) {
	t := time.AfterFunc(d, cut)
	defer t.Stop()
	f()
}
