package indextest

import (
	"sync"
	"time"
)

// Clock is the controllable clock the suite gives stores through
// index.Options.Now. Every reading moves it forward by Step (one microsecond
// unless changed), so times are strictly increasing, distinct per call and
// exact at PostgreSQL's microsecond precision; Advance jumps ahead to
// exercise retention, leases, orphans and idempotency expiry.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

// Epoch is where a suite clock starts: a whole second, in UTC, after any
// time a real clock in the tests would give, so that a backend reading the
// wall clock instead of Options.Now shows up as a failure.
var Epoch = time.Date(2031, time.March, 1, 9, 0, 0, 0, time.UTC)

// NewClock returns a clock at start (truncated to the microsecond, in UTC)
// that ticks one microsecond per reading.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start.UTC().Truncate(time.Microsecond), step: time.Microsecond}
}

// Now moves the clock one step forward and returns the new time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// Peek returns the time of the last reading without moving the clock.
func (c *Clock) Peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (rounded down to the microsecond);
// a negative d is ignored, the clock never goes back.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d.Truncate(time.Microsecond))
	}
}

// SetStep sets how far each reading moves the clock; 0 holds it still (so
// that several entities share one creation time), which is monotonic but not
// strictly increasing.
func (c *Clock) SetStep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step = d.Truncate(time.Microsecond)
}
