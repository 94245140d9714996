package timer

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
	"pgregory.net/rapid"
)

type fired struct {
	id int
	at time.Duration
}

func TestOrderingVirtual(t *testing.T) {
	v := clock.NewVirtual()
	s := NewService(v)
	var got []fired
	ts := make([]Timer, 5)
	for i := range ts {
		s.Init(&ts[i], func() { got = append(got, fired{i, v.Now()}) })
	}
	s.Reset(&ts[0], 30)
	s.Reset(&ts[1], 10)
	s.Reset(&ts[2], 10)
	s.Reset(&ts[3], 20)
	s.Reset(&ts[4], 10)
	s.Reset(&ts[1], 10) // re-arm at same deadline: now after 2 and 4
	if !s.Stop(&ts[3]) || s.Stop(&ts[3]) {
		t.Fatal("Stop results")
	}
	if ts[3].Armed() || !ts[0].Armed() || ts[0].Deadline() != 30 {
		t.Fatal("Armed/Deadline")
	}
	v.Advance(100)
	want := []fired{{2, 10}, {4, 10}, {1, 10}, {0, 30}}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	if !ts[0].Expired() || ts[3].Expired() {
		t.Fatal("Expired")
	}
	s.Reset(&ts[0], 1)
	if ts[0].Expired() {
		t.Fatal("Expired after Reset")
	}
}

func TestCallbackArmsDueTimerSameAdvance(t *testing.T) {
	v := clock.NewVirtual()
	s := NewService(v)
	var a, b, c Timer
	var got []string
	s.Init(&a, func() {
		got = append(got, "a")
		s.Reset(&b, 0) // due now
		s.Reset(&c, 5) // due at 15, inside this Advance
	})
	s.Init(&b, func() { got = append(got, "b") })
	s.Init(&c, func() {
		got = append(got, "c")
		if v.Now() != 15 {
			t.Errorf("c at %v", v.Now())
		}
	})
	s.Reset(&a, 10)
	v.Advance(20)
	if len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("got %v", got)
	}
}

func TestNeverSynchronous(t *testing.T) {
	v := clock.NewVirtual()
	s := NewService(v)
	var tm Timer
	n := 0
	s.Init(&tm, func() { n++ })
	s.Reset(&tm, 0)
	s.Reset(&tm, -5)
	if n != 0 {
		t.Fatal("callback ran inside Reset")
	}
	v.Advance(0)
	if n != 1 {
		t.Fatalf("n = %d", n)
	}
}

// The service keeps exactly one clock call pending however many timers are
// armed, and moving deadlines later does not touch the clock.
func TestSingleWakeup(t *testing.T) {
	v := clock.NewVirtual()
	s := NewService(v)
	ts := make([]Timer, 1000)
	for i := range ts {
		s.Init(&ts[i], func() {})
		s.Reset(&ts[i], time.Duration(1000-i)*time.Millisecond)
		if v.Pending() != 1 {
			t.Fatalf("%d clock calls pending", v.Pending())
		}
	}
	if d, _ := v.Next(); d != time.Millisecond {
		t.Fatalf("wakeup at %v", d)
	}
	// Stopping the earliest leaves a (lazy) wakeup that finds nothing due.
	s.Stop(&ts[999])
	v.Advance(time.Millisecond)
	if st := s.Stats(); st.Wakeups != 1 || st.Fired != 0 {
		t.Fatalf("stats %+v", st)
	}
	if d, _ := v.Next(); d != 2*time.Millisecond || v.Pending() != 1 {
		t.Fatalf("wakeup at %v, %d pending", d, v.Pending())
	}
	v.Advance(time.Second)
	if st := s.Stats(); st.Fired != 999 || st.Armed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if v.Pending() != 0 {
		t.Fatal("wakeup left pending with no timers")
	}
}

// 100k armed idle timers with far deadlines: no callbacks, no wakeups, while
// time advances.
func TestIdle100k(t *testing.T) {
	v := clock.NewVirtual()
	s := NewService(v)
	const n = 100_000
	ts := make([]Timer, n)
	var calls atomic.Int64
	r := rand.New(rand.NewPCG(1, 2))
	for i := range ts {
		s.Init(&ts[i], func() { calls.Add(1) })
		s.Reset(&ts[i], time.Hour+time.Duration(r.Int64N(int64(time.Hour))))
	}
	for i := 0; i < 1000; i++ {
		v.Advance(time.Millisecond)
	}
	st := s.Stats()
	if st.Wakeups != 0 || st.Fired != 0 || calls.Load() != 0 || st.Armed != n {
		t.Fatalf("idle timers cost work: %+v", st)
	}
	if v.Pending() != 1 {
		t.Fatalf("%d clock calls pending", v.Pending())
	}
}

func TestZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    clock.Clock
	}{{"virtual", clock.NewVirtual()}, {"real", clock.NewReal()}} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewService(tc.c)
			defer s.Close()
			ts := make([]Timer, 100_000)
			for i := range ts {
				s.Init(&ts[i], func() {})
				s.Reset(&ts[i], time.Hour+time.Duration(i)*time.Millisecond)
			}
			i := 0
			allocs := testing.AllocsPerRun(10000, func() {
				i++
				t := &ts[(i*7919)%len(ts)]
				s.Reset(t, time.Hour+time.Duration(i%1000)*time.Second)
				if i%3 == 0 {
					s.Stop(t)
				}
				if i%5 == 0 {
					// Earlier than every deadline: moves the clock wakeup.
					s.Reset(t, time.Minute+time.Duration(i%1000)*time.Millisecond)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocs per Reset/Stop", allocs)
			}
		})
	}
}

func TestClose(t *testing.T) {
	v := clock.NewVirtual()
	s := NewService(v)
	var tm Timer
	s.Init(&tm, func() { t.Error("fired after Close") })
	s.Reset(&tm, 10)
	s.Close()
	if tm.Armed() || v.Pending() != 0 {
		t.Fatal("Close left work")
	}
	s.Reset(&tm, 1)
	v.Advance(100)
}

func TestRealClockFires(t *testing.T) {
	c := clock.NewReal()
	s := NewService(c)
	defer s.Close()
	var mu sync.Mutex
	var order []int
	done := make(chan struct{})
	var a, b Timer
	s.Init(&a, func() { mu.Lock(); order = append(order, 1); mu.Unlock(); close(done) })
	s.Init(&b, func() { mu.Lock(); order = append(order, 2); mu.Unlock() })
	start := c.Now()
	s.Reset(&a, 30*time.Millisecond)
	s.Reset(&b, 10*time.Millisecond) // earlier: must move the wakeup
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire")
	}
	if el := c.Now() - start; el < 30*time.Millisecond {
		t.Fatalf("fired early: %v", el)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != 2 {
		t.Fatalf("order %v", order)
	}
}

// conn mimics a TCP connection: its timer callbacks take the connection lock,
// and the connection resets/stops its timers while holding it.
type conn struct {
	mu      sync.Mutex
	s       *Service
	t       [3]Timer
	stopped [3]bool // stopped by the owner and not re-armed since
	fires   atomic.Int64
	stale   atomic.Int64
	running atomic.Int32
}

func TestConcurrentResetStopRace(t *testing.T) {
	c := clock.NewReal()
	s := NewService(c)
	defer s.Close()
	const nconn = 16
	conns := make([]*conn, nconn)
	var overlap atomic.Bool
	var callbacks atomic.Int32
	for i := range conns {
		cn := &conn{s: s}
		conns[i] = cn
		for j := range cn.t {
			s.Init(&cn.t[j], func() {
				if callbacks.Add(1) != 1 {
					overlap.Store(true)
				}
				defer callbacks.Add(-1)
				cn.mu.Lock()
				defer cn.mu.Unlock()
				if !cn.t[j].Expired() {
					cn.stale.Add(1)
					return
				}
				if cn.stopped[j] {
					t.Error("Expired true for a timer stopped under the owner's lock")
				}
				cn.fires.Add(1)
				if j == 0 { // periodic: re-arm from inside the callback
					s.Reset(&cn.t[j], time.Duration(50+j)*time.Microsecond)
				}
			})
		}
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for time.Now().Before(deadline) {
				cn := conns[r.IntN(nconn)]
				j := r.IntN(3)
				cn.mu.Lock()
				if r.IntN(3) == 0 {
					s.Stop(&cn.t[j])
					cn.stopped[j] = true
				} else {
					s.Reset(&cn.t[j], time.Duration(r.IntN(200))*time.Microsecond)
					cn.stopped[j] = false
				}
				_ = cn.t[j].Armed()
				_ = cn.t[j].Deadline()
				cn.mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	var fires, stale int64
	for _, cn := range conns {
		fires += cn.fires.Load()
		stale += cn.stale.Load()
	}
	if fires == 0 {
		t.Fatal("no timer fired")
	}
	if overlap.Load() {
		t.Fatal("callbacks ran concurrently")
	}
	t.Logf("fires=%d stale=%d %+v", fires, stale, s.Stats())
}

// Property: on a Virtual clock, callbacks fire exactly as a simple model
// predicts: earliest deadline first, ties in arm order, at their deadline,
// including periodic timers re-armed from their own callbacks.
func TestModelRapid(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const n = 6
		v := clock.NewVirtual()
		s := NewService(v)
		ts := make([]Timer, n)
		period := make([]time.Duration, n)
		var got []fired
		for i := range ts {
			period[i] = time.Duration(rapid.IntRange(0, 3).Draw(rt, "period"))
			s.Init(&ts[i], func() {
				got = append(got, fired{i, v.Now()})
				if period[i] > 0 {
					s.Reset(&ts[i], period[i])
				}
			})
		}
		// Model.
		type mt struct {
			armed bool
			when  time.Duration
			seq   int
		}
		model := make([]mt, n)
		seq := 0
		var want []fired
		now := time.Duration(0)
		arm := func(i int, at time.Duration) {
			model[i] = mt{true, at, seq}
			seq++
		}
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for k := 0; k < steps; k++ {
			i := rapid.IntRange(0, n-1).Draw(rt, "timer")
			switch rapid.IntRange(0, 2).Draw(rt, "op") {
			case 0:
				d := time.Duration(rapid.IntRange(-1, 8).Draw(rt, "d"))
				s.Reset(&ts[i], d)
				arm(i, now+max(d, 0))
			case 1:
				was := s.Stop(&ts[i])
				if was != model[i].armed {
					rt.Fatalf("Stop(%d) = %v, model %v", i, was, model[i].armed)
				}
				model[i].armed = false
			case 2:
				target := now + time.Duration(rapid.IntRange(0, 6).Draw(rt, "adv"))
				for {
					m := -1
					for j := range model {
						if model[j].armed && model[j].when <= target &&
							(m < 0 || model[j].when < model[m].when ||
								model[j].when == model[m].when && model[j].seq < model[m].seq) {
							m = j
						}
					}
					if m < 0 {
						break
					}
					model[m].armed = false
					want = append(want, fired{m, model[m].when})
					if period[m] > 0 {
						arm(m, model[m].when+period[m])
					}
				}
				now = target
				v.AdvanceTo(target)
			}
			for j := range model {
				if ts[j].Armed() != model[j].armed {
					rt.Fatalf("timer %d Armed=%v model %v", j, ts[j].Armed(), model[j].armed)
				}
			}
		}
		if len(got) != len(want) {
			rt.Fatalf("got %v\nwant %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				rt.Fatalf("got %v\nwant %v", got, want)
			}
		}
		if p := v.Pending(); p > 1 {
			rt.Fatalf("%d clock calls pending", p)
		}
	})
}

func armed100k(b *testing.B, c clock.Clock) (*Service, []Timer) {
	s := NewService(c)
	ts := make([]Timer, 100_000)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range ts {
		s.Init(&ts[i], func() {})
		s.Reset(&ts[i], time.Hour+time.Duration(r.Int64N(int64(time.Hour))))
	}
	return s, ts
}

// BenchmarkReset re-arms random timers among 100k armed ones to a later
// deadline, as TCP does with RTO/keepalive on every ACK.
func BenchmarkReset(b *testing.B) {
	for _, bc := range []struct {
		name string
		c    clock.Clock
	}{{"virtual", clock.NewVirtual()}, {"real", clock.NewReal()}} {
		b.Run(bc.name, func(b *testing.B) {
			s, ts := armed100k(b, bc.c)
			defer s.Close()
			r := rand.New(rand.NewPCG(5, 6))
			b.ReportAllocs()
			for b.Loop() {
				s.Reset(&ts[r.IntN(len(ts))], time.Hour+time.Duration(r.Int64N(int64(time.Hour))))
			}
		})
	}
}

// BenchmarkResetRTO is the TCP pattern: time moves on, and a random
// connection's timer among 100k is pushed to now+RTO (to the heap's bottom).
func BenchmarkResetRTO(b *testing.B) {
	v := clock.NewVirtual()
	s, ts := armed100k(b, v)
	r := rand.New(rand.NewPCG(5, 6))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%16 == 0 {
			v.Advance(time.Microsecond)
		}
		s.Reset(&ts[r.IntN(len(ts))], 2*time.Hour)
	}
}

// BenchmarkStopReset disarms and re-arms a timer among 100k armed ones.
func BenchmarkStopReset(b *testing.B) {
	s, ts := armed100k(b, clock.NewVirtual())
	r := rand.New(rand.NewPCG(5, 6))
	b.ReportAllocs()
	for b.Loop() {
		t := &ts[r.IntN(len(ts))]
		s.Stop(t)
		s.Reset(t, time.Hour+time.Duration(r.Int64N(int64(time.Hour))))
	}
}

// BenchmarkIdle100k advances a Virtual clock by 1µs per op with 100k idle
// timers armed far in the future: it measures (and reports) that they cost
// no wakeups.
func BenchmarkIdle100k(b *testing.B) {
	v := clock.NewVirtual()
	s, _ := armed100k(b, v)
	b.ReportAllocs()
	for b.Loop() {
		v.Advance(time.Microsecond) // 1e9 ops = 1000s, well short of 1h
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Wakeups), "wakeups")
	b.ReportMetric(float64(st.Fired), "fired")
}

// BenchmarkFire measures arming plus firing (heap pop and callback) on a
// Virtual clock with 1k other timers armed.
func BenchmarkFire(b *testing.B) {
	v := clock.NewVirtual()
	s := NewService(v)
	others := make([]Timer, 1000)
	for i := range others {
		s.Init(&others[i], func() {})
		s.Reset(&others[i], time.Hour)
	}
	var tm Timer
	n := 0
	s.Init(&tm, func() { n++ })
	b.ReportAllocs()
	for b.Loop() {
		s.Reset(&tm, time.Microsecond)
		v.Advance(time.Microsecond)
	}
	if n != b.N {
		b.Fatalf("fired %d of %d", n, b.N)
	}
}
