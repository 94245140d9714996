// Package clock abstracts time for the TCP stack so tests can run on virtual
// time: a Real clock backed by the runtime's timers, and a Virtual clock that
// only moves when the test advances it.
package clock

import "time"

// Clock is a monotonic time source that can call a function later.
type Clock interface {
	// Now is the time since the clock's epoch.
	Now() time.Duration
	// AfterFunc calls f once, d from now, on a goroutine of the clock's
	// choosing (Real) or from inside Advance/Step (Virtual). The returned
	// Stopper cancels the call if it has not started.
	AfterFunc(d time.Duration, f func()) Stopper
}

// Stopper cancels a scheduled call. Stop reports whether it prevented the call.
type Stopper interface {
	Stop() bool
}
