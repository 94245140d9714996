package clock

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Virtual is a deterministic Clock for tests and simulations: time moves
// only when Advance, AdvanceTo, Step or RunFor is called, and scheduled calls
// run synchronously inside those methods, on the caller's goroutine.
//
// Calls run in deadline order; calls with the same deadline run in the order
// they were scheduled (or last Reset). While a call runs, Now reports its
// deadline, so a callback sees the time it was scheduled for. A call
// scheduled by a running call with a deadline within the current Advance's
// target runs in that same Advance.
//
// All methods are safe for concurrent use. Advance, AdvanceTo, Step and
// RunFor serialize with each other; they must not be called from inside a
// scheduled call (that would deadlock). The zero value is ready to use, at
// time 0.
type Virtual struct {
	run sync.Mutex // serializes Advance/Step so calls never overlap

	mu  sync.Mutex
	now atomic.Int64 // written under mu; read lock-free by Now
	seq uint64
	q   []*vcall // binary min-heap on (when, seq)
}

// NewVirtual returns a Virtual clock at time 0.
func NewVirtual() *Virtual { return &Virtual{} }

// Now returns the current virtual time.
func (v *Virtual) Now() time.Duration { return time.Duration(v.now.Load()) }

// AfterFunc schedules f to run d from now, inside a later Advance/Step (never
// synchronously, even when d <= 0). The returned Stopper also implements
// Resetter.
func (v *Virtual) AfterFunc(d time.Duration, f func()) Stopper {
	c := &vcall{v: v, f: f, idx: -1}
	c.Reset(d)
	return c
}

// Advance moves time forward by d, running every call due by then.
func (v *Virtual) Advance(d time.Duration) { v.RunFor(d) }

// RunFor is Advance that also reports how many calls ran.
func (v *Virtual) RunFor(d time.Duration) int {
	return v.runUntil(addSat(v.Now(), d))
}

// AdvanceTo moves time forward to t, running every call due by then.
// If t is in the past, only calls already due run and time does not move.
func (v *Virtual) AdvanceTo(t time.Duration) { v.runUntil(t) }

// Step runs the earliest pending call, moving time to its deadline (time
// never moves backwards). It reports false, doing nothing, if none is pending.
func (v *Virtual) Step() bool {
	v.run.Lock()
	defer v.run.Unlock()
	v.mu.Lock()
	if len(v.q) == 0 {
		v.mu.Unlock()
		return false
	}
	c := v.pop()
	v.mu.Unlock()
	c.f()
	return true
}

// Next reports the deadline of the earliest pending call, if any.
func (v *Virtual) Next() (time.Duration, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.q) == 0 {
		return 0, false
	}
	return v.q[0].when, true
}

// Pending reports how many calls are scheduled.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.q)
}

func (v *Virtual) runUntil(target time.Duration) int {
	v.run.Lock()
	defer v.run.Unlock()
	n := 0
	for {
		v.mu.Lock()
		if len(v.q) == 0 || v.q[0].when > target {
			if target > v.Now() {
				v.now.Store(int64(target))
			}
			v.mu.Unlock()
			return n
		}
		c := v.pop()
		v.mu.Unlock()
		c.f() // outside mu: f may schedule, stop or reset calls
		n++
	}
}

// pop removes the earliest call and moves time to it. v.mu must be held.
func (v *Virtual) pop() *vcall {
	c := v.q[0]
	v.remove(0)
	if c.when > v.Now() {
		v.now.Store(int64(c.when))
	}
	return c
}

// vcall is one scheduled call; it is its own Stopper/Resetter so re-arming
// never allocates.
type vcall struct {
	v    *Virtual
	f    func()
	when time.Duration
	seq  uint64
	idx  int // position in v.q, -1 when not pending
}

// Stop cancels the call if it is pending.
func (c *vcall) Stop() bool {
	v := c.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if c.idx < 0 {
		return false
	}
	v.remove(c.idx)
	return true
}

// Reset reschedules the call d from now, as a fresh scheduling (it runs after
// calls already scheduled for the same instant).
func (c *vcall) Reset(d time.Duration) bool {
	v := c.v
	v.mu.Lock()
	defer v.mu.Unlock()
	c.when = addSat(v.Now(), max(d, 0))
	c.seq = v.seq
	v.seq++
	if c.idx >= 0 {
		v.fix(c.idx)
		return true
	}
	c.idx = len(v.q)
	v.q = append(v.q, c)
	v.up(c.idx)
	return false
}

func (a *vcall) less(b *vcall) bool {
	return a.when < b.when || (a.when == b.when && a.seq < b.seq)
}

func (v *Virtual) swap(i, j int) {
	v.q[i], v.q[j] = v.q[j], v.q[i]
	v.q[i].idx = i
	v.q[j].idx = j
}

func (v *Virtual) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if !v.q[i].less(v.q[p]) {
			break
		}
		v.swap(i, p)
		i = p
		moved = true
	}
	return moved
}

func (v *Virtual) down(i int) {
	n := len(v.q)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && v.q[r].less(v.q[l]) {
			m = r
		}
		if !v.q[m].less(v.q[i]) {
			return
		}
		v.swap(i, m)
		i = m
	}
}

func (v *Virtual) fix(i int) {
	if !v.up(i) {
		v.down(i)
	}
}

func (v *Virtual) remove(i int) {
	last := len(v.q) - 1
	c := v.q[i]
	if i != last {
		v.swap(i, last)
	}
	v.q[last] = nil
	v.q = v.q[:last]
	if i != last {
		v.fix(i)
	}
	c.idx = -1
}

// addSat returns t+d, saturating instead of overflowing for huge d.
func addSat(t, d time.Duration) time.Duration {
	if d > 0 && t > math.MaxInt64-d {
		return math.MaxInt64
	}
	return t + d
}

var _ Clock = (*Virtual)(nil)
var _ Resetter = (*vcall)(nil)
