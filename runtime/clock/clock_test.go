package clock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVirtualOrderAndTime(t *testing.T) {
	v := NewVirtual()
	var got []string
	var at []time.Duration
	rec := func(s string) func() {
		return func() { got = append(got, s); at = append(at, v.Now()) }
	}
	v.AfterFunc(20, rec("c"))
	v.AfterFunc(10, rec("a"))
	v.AfterFunc(10, rec("b")) // same instant: scheduling order
	v.AfterFunc(30, rec("d"))
	if d, ok := v.Next(); !ok || d != 10 {
		t.Fatalf("Next = %v,%v", d, ok)
	}
	v.Advance(25)
	if v.Now() != 25 {
		t.Fatalf("Now = %v", v.Now())
	}
	want := []string{"a", "b", "c"}
	if len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
		t.Fatalf("got %v want %v", got, want)
	}
	if at[0] != 10 || at[1] != 10 || at[2] != 20 {
		t.Fatalf("callbacks saw times %v", at)
	}
	if !v.Step() || v.Now() != 30 || got[3] != "d" {
		t.Fatalf("Step: now %v got %v", v.Now(), got)
	}
	if v.Step() {
		t.Fatal("Step with nothing pending")
	}
	if _, ok := v.Next(); ok {
		t.Fatal("Next with nothing pending")
	}
}

func TestVirtualNestedScheduling(t *testing.T) {
	v := NewVirtual()
	var got []int
	v.AfterFunc(5, func() {
		got = append(got, 1)
		v.AfterFunc(0, func() { got = append(got, 2) })  // due now: same Advance
		v.AfterFunc(5, func() { got = append(got, 3) })  // at 10 == target: same Advance
		v.AfterFunc(6, func() { got = append(got, 99) }) // at 11: later
	})
	if n := v.RunFor(10); n != 3 {
		t.Fatalf("RunFor ran %d calls, want 3 (%v)", n, got)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("got %v", got)
	}
	if v.Pending() != 1 {
		t.Fatalf("Pending = %d", v.Pending())
	}
	v.AdvanceTo(11)
	if len(got) != 4 {
		t.Fatalf("got %v", got)
	}
	v.AdvanceTo(3) // past: no-op
	if v.Now() != 11 {
		t.Fatalf("time moved backwards: %v", v.Now())
	}
}

func TestVirtualZeroDelayNotSynchronous(t *testing.T) {
	var v Virtual // zero value usable
	ran := false
	v.AfterFunc(0, func() { ran = true })
	if ran {
		t.Fatal("AfterFunc(0) ran synchronously")
	}
	v.Advance(0)
	if !ran {
		t.Fatal("Advance(0) did not run due call")
	}
}

func TestVirtualStopReset(t *testing.T) {
	v := NewVirtual()
	n := 0
	s := v.AfterFunc(10, func() { n++ })
	if !s.Stop() || s.Stop() {
		t.Fatal("Stop results wrong")
	}
	v.Advance(20)
	if n != 0 {
		t.Fatal("stopped call ran")
	}
	r := s.(Resetter)
	if r.Reset(5) {
		t.Fatal("Reset of stopped call reported pending")
	}
	if !r.Reset(10) { // now 20 -> due at 30
		t.Fatal("Reset of pending call reported not pending")
	}
	v.Advance(9)
	if n != 0 {
		t.Fatal("ran early")
	}
	v.Advance(1)
	if n != 1 {
		t.Fatal("did not run")
	}
	// Reset of a call that already ran schedules it again.
	r.Reset(1)
	v.Advance(1)
	if n != 2 {
		t.Fatal("re-armed call did not run")
	}
	// Reset moves a call behind others at the same instant.
	var order []int
	a := v.AfterFunc(5, func() { order = append(order, 1) }).(Resetter)
	v.AfterFunc(5, func() { order = append(order, 2) })
	a.Reset(5)
	v.Advance(5)
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Fatalf("order %v", order)
	}
}

func TestVirtualResetZeroAllocs(t *testing.T) {
	v := NewVirtual()
	for i := 0; i < 100; i++ {
		v.AfterFunc(time.Duration(i)*time.Second, func() {})
	}
	r := v.AfterFunc(time.Hour, func() {}).(Resetter)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		r.Reset(time.Duration(i%200) * time.Second)
	})
	if allocs != 0 {
		t.Fatalf("Reset allocates %v per op", allocs)
	}
}

func TestVirtualConcurrent(t *testing.T) {
	v := NewVirtual()
	var ran atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				s := v.AfterFunc(time.Duration(i%7), func() { ran.Add(1) })
				if i%3 == 0 {
					s.Stop()
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				v.Advance(1)
			}
		}
	}()
	wg.Wait()
	close(done)
	v.Advance(100)
	if v.Pending() != 0 {
		t.Fatalf("%d calls left", v.Pending())
	}
	if got := ran.Load(); got > 4*500 || got < 4*500*2/3-4 {
		t.Fatalf("ran %d", got)
	}
}

func TestReal(t *testing.T) {
	var zero Real
	if zero.Now() <= 0 {
		t.Fatal("zero Real has no epoch")
	}
	c := NewReal()
	t0 := c.Now()
	ch := make(chan time.Duration, 1)
	c.AfterFunc(5*time.Millisecond, func() { ch <- c.Now() })
	select {
	case at := <-ch:
		if at-t0 < 5*time.Millisecond {
			t.Fatalf("fired early: %v", at-t0)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not fire")
	}
	s := c.AfterFunc(time.Hour, func() { t.Error("stopped call ran") })
	if !s.Stop() {
		t.Fatal("Stop")
	}
	if _, ok := s.(Resetter); !ok {
		t.Fatal("Real Stopper is not a Resetter")
	}
}

func BenchmarkVirtualReset(b *testing.B) {
	v := NewVirtual()
	for i := 0; i < 1000; i++ {
		v.AfterFunc(time.Duration(i)*time.Millisecond, func() {})
	}
	r := v.AfterFunc(0, func() {}).(Resetter)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Reset(time.Duration(i%1000) * time.Millisecond)
	}
}
