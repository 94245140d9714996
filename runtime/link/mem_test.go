package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
)

func pkt(seq int, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, uint64(seq))
	for i := 8; i < size; i++ {
		p[i] = byte(seq*7 + i)
	}
	return p
}

func seqOf(p []byte) int { return int(binary.BigEndian.Uint64(p)) }

type delivery struct {
	seq int
	at  time.Duration
	buf []byte
}

// collect records deliveries at m (copying, as pkt is only valid in the call).
func collect(m *Mem, c clock.Clock) *[]delivery {
	var got []delivery
	m.SetReceiver(func(p []byte) {
		got = append(got, delivery{seqOf(p), c.Now(), bytes.Clone(p)})
	})
	return &got
}

func TestVirtualPerfectLink(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{})
	got := collect(b, v)
	back := collect(a, v)
	for i := 0; i < 100; i++ {
		if err := a.Send(pkt(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	b.Send(pkt(1000, 40))
	if len(*got) != 0 {
		t.Fatal("Send delivered synchronously")
	}
	v.Advance(0)
	if len(*got) != 100 || len(*back) != 1 {
		t.Fatalf("delivered %d/%d", len(*got), len(*back))
	}
	for i, d := range *got {
		if d.seq != i || !bytes.Equal(d.buf, pkt(i, 100)) || d.at != 0 {
			t.Fatalf("delivery %d: %+v", i, d)
		}
	}
	if st := a.Stats(); st != (Stats{Sent: 100, Delivered: 100}) {
		t.Fatalf("stats %+v", st)
	}
	if a.MTU() != DefaultMTU {
		t.Fatal("MTU")
	}
	if err := a.Send(make([]byte, DefaultMTU+1)); !errors.Is(err, ErrTooBig) {
		t.Fatalf("oversize Send: %v", err)
	}
}

func TestSenderMayReuseBuffer(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{AtoB: Impairments{Delay: time.Millisecond}})
	got := collect(b, v)
	p := pkt(1, 64)
	a.Send(p)
	for i := range p {
		p[i] = 0xff
	}
	v.Advance(time.Millisecond)
	if len(*got) != 1 || !bytes.Equal((*got)[0].buf, pkt(1, 64)) {
		t.Fatal("link retained the sender's buffer")
	}
}

func TestDelayAndJitter(t *testing.T) {
	v := clock.NewVirtual()
	const delay, jitter = 10 * time.Millisecond, 5 * time.Millisecond
	a, b := Pair(v, PairConfig{Seed: 1, AtoB: Impairments{Delay: delay}, BtoA: Impairments{Delay: delay, Jitter: jitter}})
	gotB, gotA := collect(b, v), collect(a, v)
	for i := 0; i < 1000; i++ {
		a.Send(pkt(i, 60))
		b.Send(pkt(i, 60))
		v.Advance(100 * time.Microsecond)
	}
	v.Advance(time.Second)
	for _, d := range *gotB {
		if sent := time.Duration(d.seq) * 100 * time.Microsecond; d.at != sent+delay {
			t.Fatalf("packet %d sent %v delivered %v", d.seq, sent, d.at)
		}
	}
	var spread time.Duration
	for i, d := range *gotA {
		sent := time.Duration(d.seq) * 100 * time.Microsecond
		lat := d.at - sent
		if d.seq != i {
			t.Fatalf("jitter reordered: %d at %d", d.seq, i)
		}
		// Jitter may be absorbed by FIFO order but never exceeds delay+jitter
		// beyond the previous packet's latency.
		if lat < delay || lat >= delay+jitter+100*time.Microsecond {
			t.Fatalf("latency %v", lat)
		}
		spread = max(spread, lat-delay)
	}
	if len(*gotA) != 1000 || len(*gotB) != 1000 || spread < jitter/2 {
		t.Fatalf("delivered %d/%d spread %v", len(*gotA), len(*gotB), spread)
	}
}

// run sends n packets a->b on a Virtual clock with im, 10µs apart, and
// returns the deliveries and stats.
func run(t *testing.T, seed int64, im Impairments, n int) ([]delivery, Stats) {
	t.Helper()
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{Seed: seed, AtoB: im})
	got := collect(b, v)
	for i := 0; i < n; i++ {
		if err := a.Send(pkt(i, 100)); err != nil {
			t.Fatal(err)
		}
		v.Advance(10 * time.Microsecond)
	}
	v.Advance(10 * time.Second)
	if v.Pending() != 0 {
		t.Fatalf("%d clock calls left after drain", v.Pending())
	}
	return *got, a.Stats()
}

func near(t *testing.T, what string, got uint64, n int, p float64) {
	t.Helper()
	want := p * float64(n)
	if tol := 5*sqrt(want) + 1; float64(got) < want-tol || float64(got) > want+tol {
		t.Fatalf("%s: %d, want about %.0f", what, got, want)
	}
}

func sqrt(x float64) float64 {
	z := x
	for i := 0; i < 50 && z > 0; i++ {
		z = (z + x/z) / 2
	}
	return z
}

func TestLoss(t *testing.T) {
	const n = 20000
	got, st := run(t, 7, Impairments{Loss: 0.1}, n)
	near(t, "lost", st.Lost, n, 0.1)
	if st.Sent != n || st.Delivered != n-st.Lost || uint64(len(got)) != st.Delivered {
		t.Fatalf("stats %+v, %d delivered", st, len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].seq <= got[i-1].seq {
			t.Fatal("loss reordered")
		}
	}
}

func TestDuplicate(t *testing.T) {
	const n = 20000
	got, st := run(t, 7, Impairments{Duplicate: 0.05}, n)
	near(t, "duplicated", st.Duplicated, n, 0.05)
	if st.Delivered != n+st.Duplicated || uint64(len(got)) != st.Delivered {
		t.Fatalf("stats %+v, %d delivered", st, len(got))
	}
	dups := 0
	for i := 1; i < len(got); i++ {
		if got[i].seq == got[i-1].seq {
			dups++
			if !bytes.Equal(got[i].buf, got[i-1].buf) {
				t.Fatal("duplicate differs")
			}
		}
	}
	if uint64(dups) != st.Duplicated {
		t.Fatalf("saw %d adjacent duplicates, stats say %d", dups, st.Duplicated)
	}
}

func TestReorder(t *testing.T) {
	const n = 20000
	got, st := run(t, 7, Impairments{Reorder: 0.1, Delay: time.Millisecond}, n)
	// A packet is held with p=0.1 unless one is already held, and is then
	// overtaken by the very next packet (sent 10µs later, well within
	// ReorderHold): rate p/(1+p).
	near(t, "reordered", st.Reordered, n, 0.1/1.1)
	if st.Delivered != n || len(got) != n {
		t.Fatalf("stats %+v", st)
	}
	// Each reordered packet shows up as an adjacent swap.
	swaps := 0
	for i := 1; i < len(got); i++ {
		if got[i].seq < got[i-1].seq {
			swaps++
			if got[i].seq != got[i-1].seq-1 {
				t.Fatalf("not an adjacent swap: %d after %d", got[i].seq, got[i-1].seq)
			}
		}
	}
	if uint64(swaps) != st.Reordered {
		t.Fatalf("%d swaps, stats say %d", swaps, st.Reordered)
	}
}

func TestReorderHoldFallback(t *testing.T) {
	// A held packet with no successor is delivered ReorderHold late.
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{AtoB: Impairments{Reorder: 1, Delay: time.Millisecond}})
	got := collect(b, v)
	a.Send(pkt(0, 40))
	v.Advance(time.Second)
	if len(*got) != 1 || (*got)[0].at != time.Millisecond+ReorderHold {
		t.Fatalf("got %+v", *got)
	}
	if a.Stats().Reordered != 0 {
		t.Fatal("counted a packet nobody overtook")
	}
}

func TestCorrupt(t *testing.T) {
	const n = 20000
	got, st := run(t, 7, Impairments{Corrupt: 0.05}, n)
	near(t, "corrupted", st.Corrupted, n, 0.05)
	bad := 0
	for i, d := range got { // no loss or reordering: the i-th delivery is packet i
		want := pkt(i, 100)
		diff := 0
		for i := range want {
			diff += bits.OnesCount8(want[i] ^ d.buf[i])
		}
		if diff > 1 {
			t.Fatalf("%d bits flipped", diff)
		}
		bad += diff
	}
	if uint64(bad) != st.Corrupted || len(got) != n {
		t.Fatalf("found %d corrupted packets, stats say %d", bad, st.Corrupted)
	}
}

func TestRateAndQueueLimit(t *testing.T) {
	v := clock.NewVirtual()
	// 1500 B at 1.5 MB/s takes 1ms to serialize.
	a, b := Pair(v, PairConfig{
		MTU:  1500,
		AtoB: Impairments{RateBytesPerSec: 1_500_000, QueueLimit: 5, Delay: time.Millisecond},
		BtoA: Impairments{RateBytesPerSec: 1_500_000},
	})
	gotB, gotA := collect(b, v), collect(a, v)
	for i := 0; i < 10; i++ {
		a.Send(pkt(i, 1500))
		b.Send(pkt(i, 1500))
	}
	v.Advance(time.Second)
	if st := a.Stats(); st.QueueDropped != 5 || st.Delivered != 5 {
		t.Fatalf("a->b stats %+v", st)
	}
	for i, d := range *gotB {
		if want := time.Duration(i+1)*time.Millisecond + time.Millisecond; d.seq != i || d.at != want {
			t.Fatalf("a->b %d: seq %d at %v, want %v", i, d.seq, d.at, want)
		}
	}
	// Unlimited queue: all ten, 1ms apart.
	if len(*gotA) != 10 || (*gotA)[9].at != 10*time.Millisecond {
		t.Fatalf("b->a %+v", *gotA)
	}
	// Once the queue drains, sends are accepted again.
	a.Send(pkt(99, 1500))
	v.Advance(time.Second)
	if st := a.Stats(); st.Delivered != 6 {
		t.Fatalf("after drain %+v", st)
	}
}

func TestQueueLimitWithoutRate(t *testing.T) {
	_, st := run(t, 1, Impairments{Delay: time.Millisecond, QueueLimit: 50}, 1000)
	// 10µs apart with 1ms delay keeps ~100 in flight; the limit caps it at 50.
	if st.QueueDropped == 0 || st.Delivered+st.QueueDropped != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

// trace runs a bidirectional scenario with every impairment and returns
// everything observable.
func trace(seed int64) ([]delivery, Stats, Stats) {
	v := clock.NewVirtual()
	im := Impairments{Loss: 0.05, Duplicate: 0.05, Reorder: 0.05, Corrupt: 0.05,
		Delay: 2 * time.Millisecond, Jitter: time.Millisecond, RateBytesPerSec: 2_000_000, QueueLimit: 20}
	a, b := Pair(v, PairConfig{Seed: seed, AtoB: im, BtoA: im})
	var got []delivery
	a.SetReceiver(func(p []byte) {
		got = append(got, delivery{-seqOf(p), v.Now(), bytes.Clone(p)})
		if seqOf(p)%3 == 0 { // replies from inside delivery, like a stack
			a.Send(pkt(seqOf(p)+1_000_000, 80))
		}
	})
	b.SetReceiver(func(p []byte) {
		got = append(got, delivery{seqOf(p), v.Now(), bytes.Clone(p)})
		b.Send(pkt(seqOf(p), 600))
		b.Send(pkt(seqOf(p)+500_000, 600))
	})
	for i := 0; i < 2000; i++ {
		a.Send(pkt(i, 100+i%1000))
		v.Advance(time.Duration(i%7) * 50 * time.Microsecond)
	}
	v.Advance(time.Minute)
	return got, a.Stats(), b.Stats()
}

func TestDeterminism(t *testing.T) {
	g1, a1, b1 := trace(42)
	g2, a2, b2 := trace(42)
	if a1 != a2 || b1 != b2 || len(g1) != len(g2) {
		t.Fatalf("stats differ: %+v %+v / %+v %+v", a1, b1, a2, b2)
	}
	for i := range g1 {
		if g1[i].seq != g2[i].seq || g1[i].at != g2[i].at || !bytes.Equal(g1[i].buf, g2[i].buf) {
			t.Fatalf("delivery %d differs", i)
		}
	}
	for _, st := range []Stats{a1, b1} {
		if st.Lost == 0 || st.Duplicated == 0 || st.Reordered == 0 || st.Corrupted == 0 || st.QueueDropped == 0 {
			t.Fatalf("scenario does not exercise every impairment: %+v", st)
		}
	}
	g3, a3, _ := trace(43)
	if a3 == a1 && len(g3) == len(g1) {
		t.Fatal("different seeds gave identical runs")
	}
}

func TestCloseVirtual(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{AtoB: Impairments{Delay: time.Millisecond}})
	got := collect(b, v)
	a.Send(pkt(1, 40))
	b.Close()
	v.Advance(time.Second)
	if len(*got) != 0 {
		t.Fatal("delivered after Close")
	}
	if err := b.Send(pkt(2, 40)); err != ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := a.Send(pkt(3, 40)); err != nil {
		t.Fatalf("Send to closed peer: %v", err)
	}
	if b.Close() != nil || v.Pending() != 0 {
		t.Fatal("Close not idempotent or left clock calls")
	}
}

func TestRealFastPath(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{AtoB: Impairments{QueueLimit: 4096}})
	defer a.Close()
	const n = 2000
	var mu sync.Mutex
	var seqs []int
	done := make(chan struct{})
	b.SetReceiver(func(p []byte) {
		mu.Lock()
		seqs = append(seqs, seqOf(p))
		if !bytes.Equal(p, pkt(seqOf(p), 300)) {
			panic("corrupted on fast path")
		}
		if len(seqs) == n {
			close(done)
		}
		mu.Unlock()
	})
	for i := 0; i < n; i++ {
		if err := a.Send(pkt(i, 300)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("delivered %d of %d", len(seqs), n)
	}
	mu.Lock()
	for i, s := range seqs {
		if s != i {
			t.Fatalf("out of order at %d: %d", i, s)
		}
	}
	mu.Unlock()
	if st := a.Stats(); st.Sent != n || st.Delivered != n {
		t.Fatalf("stats %+v", st)
	}
}

func TestRealFastPathTailDrop(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{AtoB: Impairments{QueueLimit: 4}})
	defer b.Close()
	entered := make(chan struct{})
	release := make(chan struct{})
	var got atomic.Int64
	b.SetReceiver(func(p []byte) {
		if got.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	a.Send(pkt(0, 40))
	<-entered
	for i := 1; i <= 10; i++ {
		a.Send(pkt(i, 40))
	}
	close(release)
	waitFor(t, func() bool { return got.Load() == 4 })
	if st := a.Stats(); st.QueueDropped != 7 || st.Delivered != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRealImpaired(t *testing.T) {
	c := clock.NewReal()
	a, b := Pair(c, PairConfig{Seed: 3, AtoB: Impairments{Delay: 2 * time.Millisecond, Loss: 0.2}})
	defer a.Close()
	var got atomic.Int64
	var early atomic.Bool
	sentAt := c.Now()
	b.SetReceiver(func(p []byte) {
		if c.Now()-sentAt < 2*time.Millisecond {
			early.Store(true)
		}
		got.Add(1)
	})
	for i := 0; i < 200; i++ {
		a.Send(pkt(i, 40))
	}
	waitFor(t, func() bool { st := a.Stats(); return st.Delivered+st.Lost == 200 })
	if early.Load() || got.Load() == 200 || got.Load() < 100 {
		t.Fatalf("early=%v delivered=%d", early.Load(), got.Load())
	}
}

func TestCloseReal(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{})
	var after atomic.Bool
	var closed atomic.Bool
	b.SetReceiver(func([]byte) {
		if closed.Load() {
			after.Store(true)
		}
	})
	for i := 0; i < 100; i++ {
		a.Send(pkt(i, 40))
	}
	b.Close()
	closed.Store(true)
	for i := 0; i < 100; i++ {
		a.Send(pkt(i, 40))
	}
	time.Sleep(10 * time.Millisecond)
	if after.Load() {
		t.Fatal("delivered after Close returned")
	}
	if err := b.Send(pkt(0, 40)); err != ErrClosed {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached")
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	c := clock.NewReal()
	for i := 0; i < 50; i++ {
		var im Impairments
		if i%2 == 1 {
			im.Delay = time.Millisecond
		}
		a, b := Pair(c, PairConfig{AtoB: im})
		b.SetReceiver(func([]byte) {})
		a.SetReceiver(func([]byte) {})
		for j := 0; j < 10; j++ {
			a.Send(pkt(j, 100))
			b.Send(pkt(j, 100))
		}
		if i%3 == 0 {
			a.Close() // one end closing shuts both directions' goroutines
		} else {
			b.Close()
			a.Close()
		}
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

func TestZeroAllocsPerPacket(t *testing.T) {
	t.Run("virtual-impaired", func(t *testing.T) {
		v := clock.NewVirtual()
		a, b := Pair(v, PairConfig{Seed: 1, AtoB: Impairments{Loss: 0.01, Duplicate: 0.01, Reorder: 0.01,
			Corrupt: 0.01, Delay: time.Millisecond, Jitter: 100 * time.Microsecond, RateBytesPerSec: 1e9, QueueLimit: 1000}})
		b.SetReceiver(func([]byte) {})
		p := pkt(0, 1400)
		warm := func() {
			for i := 0; i < 10; i++ {
				a.Send(p)
			}
			v.Advance(100 * time.Microsecond)
		}
		for i := 0; i < 1000; i++ {
			warm()
		}
		if allocs := testing.AllocsPerRun(1000, warm); allocs != 0 {
			t.Fatalf("%v allocs per 10 packets", allocs)
		}
	})
	t.Run("real-fast", func(t *testing.T) {
		a, b := Pair(clock.NewReal(), PairConfig{})
		defer a.Close()
		var n atomic.Int64
		b.SetReceiver(func([]byte) { n.Add(1) })
		p := pkt(0, 1400)
		sent := int64(0)
		send := func() {
			a.Send(p)
			sent++
			for sent-n.Load()-int64(a.Stats().QueueDropped) > 64 {
				runtime.Gosched()
			}
		}
		for i := 0; i < 10000; i++ {
			send()
		}
		if allocs := testing.AllocsPerRun(10000, send); allocs != 0 {
			t.Fatalf("%v allocs per packet", allocs)
		}
	})
}

// BenchmarkMemFastPath streams 1400-byte packets through the Real-clock fast
// path, keeping at most 256 in flight (like a TCP window) so nothing is
// tail-dropped: ns/op is per delivered packet, sender and receiver included.
func BenchmarkMemFastPath(b *testing.B) {
	a, bb := Pair(clock.NewReal(), PairConfig{})
	defer a.Close()
	var n atomic.Int64
	bb.SetReceiver(func([]byte) { n.Add(1) })
	p := pkt(0, 1400)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	sent := int64(0)
	for b.Loop() {
		for sent-n.Load() >= 256 {
			runtime.Gosched()
		}
		a.Send(p)
		sent++
	}
	for n.Load() < sent {
		runtime.Gosched()
	}
	if d := a.Stats().QueueDropped; d != 0 {
		b.Fatalf("%d dropped", d)
	}
}

// BenchmarkMemFastPathPingPong bounces one packet between the two ends:
// ns/op is one round trip (two hand-offs between goroutines).
func BenchmarkMemFastPathPingPong(b *testing.B) {
	a, bb := Pair(clock.NewReal(), PairConfig{})
	defer a.Close()
	bb.SetReceiver(func(p []byte) { bb.Send(p) })
	pong := make(chan struct{}, 1)
	a.SetReceiver(func([]byte) { pong <- struct{}{} })
	p := pkt(0, 100)
	b.ReportAllocs()
	for b.Loop() {
		a.Send(p)
		<-pong
	}
}

// BenchmarkMemVirtual is one packet through an impaired direction on a
// Virtual clock (send, schedule, deliver).
func BenchmarkMemVirtual(b *testing.B) {
	v := clock.NewVirtual()
	a, bb := Pair(v, PairConfig{Seed: 1, AtoB: Impairments{Delay: time.Millisecond, Jitter: 10 * time.Microsecond, Loss: 0.001}})
	bb.SetReceiver(func([]byte) {})
	p := pkt(0, 1400)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		a.Send(p)
		v.Advance(10 * time.Microsecond)
	}
}
