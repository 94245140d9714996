package clock

import "time"

// Resetter is optionally implemented by the Stopper returned from
// AfterFunc when the pending call can be re-armed in place. Schedulers that
// keep a single wakeup (runtime/timer, the link simulator) use it to move
// that wakeup without allocating a new one. *time.Timer implements it, so the
// Real clock's Stoppers do, and so do the Virtual clock's.
type Resetter interface {
	Stopper
	// Reset re-arms the call to run d from now (once), whether or not it
	// already ran or was stopped. It reports whether the call was pending.
	Reset(d time.Duration) bool
}

// processEpoch is the epoch of a zero Real, so the zero value is usable.
var processEpoch = time.Now()

// Real is a Clock backed by the runtime's monotonic clock and timers.
// The zero value measures time from package initialization.
type Real struct {
	epoch time.Time
}

// NewReal returns a Real clock whose epoch is now.
func NewReal() *Real { return &Real{epoch: time.Now()} }

// Now returns the monotonic time elapsed since the clock's epoch.
func (r *Real) Now() time.Duration {
	if r.epoch.IsZero() {
		return time.Since(processEpoch)
	}
	return time.Since(r.epoch)
}

// AfterFunc calls f on its own goroutine after d, via time.AfterFunc.
// The returned Stopper is a *time.Timer, which also implements Resetter.
func (r *Real) AfterFunc(d time.Duration, f func()) Stopper {
	return time.AfterFunc(d, f)
}

var _ Clock = (*Real)(nil)
var _ Resetter = (*time.Timer)(nil)
