// Package backoff is the wait between attempts of an operation that failed
// for a reason that passes: a PostgreSQL serialization failure, a blob that a
// sweep is deleting, a server answering 503. The index engines, refs and the
// client share it, so that every retry loop grows its waits the same way and
// stops waiting as soon as its context ends.
//
// # Invariants
//
//   - Delay(n) never decreases with n and never exceeds Max.
//   - Sleep returns at once when its context has ended, with the context's
//     error, and never leaves a timer running.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a delay that doubles from First on each retry, up to Max.
type Policy struct {
	// First is the wait before the first retry.
	First time.Duration
	// Max caps one wait; a Max below First is First.
	Max time.Duration
}

// Delay is the wait before retry number n (1 for the first retry).
func (p Policy) Delay(n int) time.Duration {
	ceiling := max(p.Max, p.First)
	d := p.First
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// Jitter returns a wait drawn uniformly from [d/2, d], so that clients that
// failed together do not retry together.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Sleep waits d, or until ctx ends: then it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
