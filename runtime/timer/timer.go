// Package timer multiplexes all of a stack's timers (retransmission, delayed
// ACK, keepalive, TIME-WAIT, ...) onto a single pending clock wakeup.
//
// Timers are intrusive: a Timer is embedded by value in its owner (a
// connection), so arming and disarming never allocate. A Service keeps its
// armed timers in a 4-ary min-heap ordered by (deadline, arm sequence), each
// Timer storing its own heap index so Reset and Stop are O(log n) in place.
//
// Why a heap and not a hierarchical timing wheel: deadlines stay exact
// (a wheel rounds to its tick, which perturbs RTO/RTT behaviour and
// virtual-clock determinism); ties fire in arm order; the earliest deadline is
// always h[0], which is exactly the one clock wakeup the service needs; and
// there is no periodic tick or cascade, so idle timers cost nothing. A 4-ary
// heap is ~log4(n) levels (≈8 for 100k timers, half a binary heap's) with the
// four child pointers on one cache line, which favours sift-down - the common
// case, since TCP mostly re-arms timers to later deadlines. At 100k timers a
// Reset is ~100ns, so a wheel's O(1) would buy little for what it gives up.
//
// The clock wakeup is moved lazily: arming a timer earlier than the pending
// wakeup moves it (in place via clock.Resetter, no allocation), but arming
// later or stopping the earliest timer leaves it; a wakeup that finds nothing
// due just re-arms for the new earliest deadline. That costs at most one
// spurious wakeup per pending-deadline and keeps Reset/Stop off the clock's
// own lock in the common re-arm-later case.
package timer

import (
	"math"
	"sync"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
)

// Service runs timer callbacks at their deadlines using one clock.
//
// Callbacks run one at a time (never concurrently with each other), outside
// the service's lock, on the clock's goroutine (Real) or inside
// Advance/Step (Virtual). A callback may therefore take its owner's lock,
// and owners may call Reset/Stop while holding that same lock.
type Service struct {
	c clock.Clock

	mu      sync.Mutex
	h       []*Timer // 4-ary min-heap on (when, seq)
	seq     uint64
	wake    clock.Stopper  // the one pending clock call, reused
	wakeR   clock.Resetter // wake as a Resetter, if it is one
	wakeAt  time.Duration
	wakeSet bool // wake is pending for wakeAt
	running bool // a fire loop is running callbacks
	closed  bool
	fireFn  func() // s.fire, bound once so scheduling does not allocate

	wakeups uint64
	fired   uint64
}

// Timer is one timer. Embed it by value and call Service.Init once before
// use; it must not be copied after Init. The zero value is disarmed.
type Timer struct {
	s     *Service
	fn    func()
	when  time.Duration
	seq   uint64
	pos   int  // 1 + index in s.h; 0 when disarmed
	fired bool // popped by the service and not Reset/Stopped since
}

// Stats is a snapshot of a Service's counters.
type Stats struct {
	Armed   int    // timers currently armed
	Wakeups uint64 // clock wakeups taken (including ones that found nothing due)
	Fired   uint64 // callbacks started
}

// NewService returns a timer service driven by c.
func NewService(c clock.Clock) *Service {
	s := &Service{c: c}
	s.fireFn = s.fire
	return s
}

// Init binds t to s with callback fn. It must be called before any other use
// of t, and not while t is armed.
func (s *Service) Init(t *Timer, fn func()) {
	if fn == nil {
		panic("timer: Init with nil func")
	}
	if t.pos != 0 {
		panic("timer: Init of an armed Timer")
	}
	*t = Timer{s: s, fn: fn}
}

// Reset arms t to fire d from now (d <= 0 means as soon as possible, never
// synchronously), replacing any earlier deadline. Among timers with the same
// deadline, those armed earlier fire first. Reset on a closed Service does
// nothing.
func (s *Service) Reset(t *Timer, d time.Duration) {
	if t.s != s {
		panic("timer: Timer not initialized on this Service")
	}
	now := s.c.Now()
	when := now
	if d > 0 {
		when = now + d
		if when < now { // overflow: effectively never
			when = math.MaxInt64
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	t.when = when
	t.seq = s.seq
	s.seq++
	t.fired = false
	if t.pos == 0 {
		s.h = append(s.h, t)
		s.up(len(s.h) - 1)
	} else {
		s.fix(t.pos - 1)
	}
	// Only an earlier deadline needs the wakeup moved; a running fire loop
	// re-arms the wakeup itself when it finishes.
	if !s.running && (!s.wakeSet || when < s.wakeAt) {
		s.schedule(now, when)
	}
	s.mu.Unlock()
}

// Stop disarms t. It reports whether t was armed, i.e. whether Stop prevented
// a callback. A false result with a callback in flight is normal; see
// Timer.Expired.
func (s *Service) Stop(t *Timer) bool {
	if t.s != s {
		panic("timer: Timer not initialized on this Service")
	}
	s.mu.Lock()
	t.fired = false
	if t.pos == 0 {
		s.mu.Unlock()
		return false
	}
	s.remove(t.pos - 1)
	s.mu.Unlock()
	return true
}

// Close disarms every timer and cancels the clock wakeup. Later Resets do
// nothing. A callback already running finishes; no new ones start.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for i, t := range s.h {
		t.pos = 0
		s.h[i] = nil
	}
	s.h = s.h[:0]
	if s.wake != nil {
		s.wake.Stop()
	}
	s.wakeSet = false
}

// Clock returns the clock driving s.
func (s *Service) Clock() clock.Clock { return s.c }

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Armed: len(s.h), Wakeups: s.wakeups, Fired: s.fired}
}

// Armed reports whether t is armed (a callback is scheduled and not yet
// started).
func (t *Timer) Armed() bool {
	if t.s == nil {
		return false
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.pos != 0
}

// Deadline returns the clock time t was last armed for. It is meaningful
// while t is armed and, after it fired, until the next Reset.
func (t *Timer) Deadline() time.Duration {
	if t.s == nil {
		return 0
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.when
}

// Expired reports whether t's last arming fired and t has not been Reset or
// Stopped since. Callbacks run outside the service lock, so a Stop or Reset
// can race with a callback that is about to run; such a Stop returns false.
// A callback that takes its owner's lock and then checks Expired under it
// can discard these stale firings: an owner's Stop or Reset made under the
// same lock before the callback got it makes Expired false.
func (t *Timer) Expired() bool {
	if t.s == nil {
		return false
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.fired
}

// schedule makes the clock wakeup pending for time at. s.mu must be held.
func (s *Service) schedule(now, at time.Duration) {
	d := at - now
	switch {
	case s.wakeR != nil:
		s.wakeR.Reset(d)
	case s.wake != nil:
		// A clock without in-place reset: replace the wakeup (allocates).
		s.wake.Stop()
		s.wake = s.c.AfterFunc(d, s.fireFn)
	default:
		s.wake = s.c.AfterFunc(d, s.fireFn)
		s.wakeR, _ = s.wake.(clock.Resetter)
	}
	s.wakeAt = at
	s.wakeSet = true
}

// fire is the clock wakeup: it runs every due callback, one at a time and in
// (deadline, arm order), re-reading the clock after each so callbacks that
// arm timers already due run in the same pass, then re-arms the wakeup.
func (s *Service) fire() {
	s.mu.Lock()
	if s.running || s.closed {
		// A stale wakeup (e.g. a time.Timer that was Reset after it began
		// firing) while a loop is active: that loop re-arms when done.
		s.mu.Unlock()
		return
	}
	s.running = true
	s.wakeSet = false
	s.wakeups++
	now := s.c.Now()
	for len(s.h) > 0 && !s.closed {
		if s.h[0].when > now {
			now = s.c.Now()
			if s.h[0].when > now {
				break
			}
		}
		t := s.h[0]
		s.remove(0)
		t.fired = true
		s.fired++
		fn := t.fn
		s.mu.Unlock()
		fn()
		s.mu.Lock()
	}
	s.running = false
	if len(s.h) > 0 && !s.closed {
		s.schedule(now, s.h[0].when)
	}
	s.mu.Unlock()
}

// 4-ary heap. s.mu must be held for all of these.
//
// The heap holds *Timer and compares through the pointer. Copying the key
// into the slice instead ({when, seq, *Timer}, 24 bytes) was measured ~1.5-2x
// slower at 100k timers: the 3x larger array costs more than the pointer
// chase, and moved Timers must be written (pos) either way.

func (a *Timer) less(b *Timer) bool {
	return a.when < b.when || (a.when == b.when && a.seq < b.seq)
}

func (s *Service) up(i int) bool {
	h := s.h
	t := h[i]
	moved := false
	for i > 0 {
		p := (i - 1) / 4
		if !t.less(h[p]) {
			break
		}
		h[i] = h[p]
		h[i].pos = i + 1
		i = p
		moved = true
	}
	h[i] = t
	t.pos = i + 1
	return moved
}

func (s *Service) down(i int) {
	h := s.h
	n := len(h)
	t := h[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for j := c + 1; j < end; j++ {
			if h[j].less(h[m]) {
				m = j
			}
		}
		if !h[m].less(t) {
			break
		}
		h[i] = h[m]
		h[i].pos = i + 1
		i = m
	}
	h[i] = t
	t.pos = i + 1
}

func (s *Service) fix(i int) {
	if !s.up(i) {
		s.down(i)
	}
}

func (s *Service) remove(i int) {
	t := s.h[i]
	last := len(s.h) - 1
	if i != last {
		s.h[i] = s.h[last]
	}
	s.h[last] = nil
	s.h = s.h[:last]
	if i != last {
		s.fix(i)
	}
	t.pos = 0
}
