package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/link"
)

// simCounters aggregates what the simulation runs exercised.
type simCounters struct {
	retransmits, malformed, timeWait, challengeACKs uint64
	gsoSends                                        uint64 // packets the link segmented
	copyRuns                                        uint64 // runs over links without SendGather
}

var simTotals simCounters

// closeOrder is how the two ends of a simulated connection shut down.
type closeOrder int

const (
	closeActive       closeOrder = iota // the dialer closes first
	closePassive                        // the acceptor closes first
	closeSimultaneous                   // both close in the same instant
	closeHalf                           // the dialer half-closes at once, then reads everything
)

var closeOrderNames = []string{"active", "passive", "simultaneous", "half-close"}

// simEnd is one application endpoint: what it must send, what it got.
type simEnd struct {
	conn    *fsmrt.Conn
	out     []byte
	sent    int
	got     []byte
	eof     bool
	closed  bool
	closeAt int // bytes sent before this end closes (CloseWrite)
}

// step does the non-blocking application work for one end.
func (e *simEnd) step(t *rapid.T, buf []byte, mayClose bool) {
	if e.conn == nil {
		return
	}
	if e.sent < len(e.out) && !e.closed {
		n, err := e.conn.WriteAvailable(e.out[e.sent:])
		if err != nil {
			t.Fatalf("write after %d bytes: %v", e.sent, err)
		}
		e.sent += n
	}
	for !e.eof {
		n, err := e.conn.ReadAvailable(buf)
		e.got = append(e.got, buf[:n]...)
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("read after %d bytes: %v", len(e.got), err)
			}
			e.eof = true
		}
		if n == 0 {
			break
		}
	}
	if mayClose && !e.closed && e.sent >= e.closeAt && e.sent == len(e.out) {
		if err := e.conn.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		e.closed = true
	}
}

// TestSimulation runs two stacks over an impaired in-memory link on virtual
// time: random payloads both ways, random close orders, loss up to 20%,
// duplication, reordering and corruption. Every byte must arrive exactly,
// both ends must reach CLOSED (through TIME-WAIT), and no timer or
// goroutine may be left behind. A failure prints rapid's seed, which
// reproduces the run exactly (-rapid.seed=N).
func TestSimulation(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	simTotals = simCounters{}
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Uint64().Draw(t, "seed")
		imp := func(dir string) link.Impairments {
			return link.Impairments{
				Loss:      rapid.Float64Range(0, 0.2).Draw(t, dir+"loss"),
				Duplicate: rapid.Float64Range(0, 0.1).Draw(t, dir+"dup"),
				Reorder:   rapid.Float64Range(0, 0.1).Draw(t, dir+"reorder"),
				Corrupt:   rapid.Float64Range(0, 0.05).Draw(t, dir+"corrupt"),
				Delay:     time.Duration(rapid.IntRange(0, 20).Draw(t, dir+"delayMs")) * time.Millisecond,
			}
		}
		order := closeOrder(rapid.IntRange(0, 3).Draw(t, "closeOrder"))
		aLen := rapid.IntRange(0, 200_000).Draw(t, "aBytes")
		bLen := rapid.IntRange(0, 200_000).Draw(t, "bBytes")
		// Half the runs give the link segmentation offload, so the stacks
		// send up to 64 KiB at once and the link cuts it into segments.
		gso := rapid.Bool().Draw(t, "gso")
		// A quarter hide the link's gathering send, so the stacks copy each
		// segment's payload behind its headers themselves (as over TUN).
		gather := rapid.IntRange(0, 3).Draw(t, "gather") > 0
		t.Logf("seed=%d close=%s aBytes=%d bBytes=%d gso=%v gather=%v", seed, closeOrderNames[order], aLen, bLen, gso, gather)
		runSimulation(t, seed, imp("ab."), imp("ba."), order, aLen, bLen, gso, gather)
	})
	// The runs must have exercised what they claim to.
	if simTotals.retransmits == 0 || simTotals.malformed == 0 || simTotals.timeWait == 0 || simTotals.gsoSends == 0 ||
		simTotals.copyRuns == 0 {
		t.Errorf("simulation exercised too little: %+v", simTotals)
	}
	t.Logf("totals over all runs: %+v", simTotals)
	// Stacks on virtual time start no goroutines; give stray ones a moment.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Errorf("goroutine leak: %d before, %d after", goroutines, n)
	}
}

// memNoGather is a Mem without SendGather (link.Gatherer).
type memNoGather struct {
	link.Link
	m *link.Mem
}

func (l memNoGather) GSOMaxSize() int                   { return l.m.GSOMaxSize() }
func (l memNoGather) SendGSO(pkt []byte, mss int) error { return l.m.SendGSO(pkt, mss) }
func (l memNoGather) SetBatchEnd(end func())            { l.m.SetBatchEnd(end) }

func runSimulation(t *rapid.T, seed uint64, ab, ba link.Impairments, order closeOrder, aLen, bLen int, gso, gather bool) {
	vc := clock.NewVirtual()
	cfg := link.PairConfig{Seed: int64(seed), AtoB: ab, BtoA: ba}
	if gso {
		cfg.GSOMaxSize = 65535
	}
	la, lb := link.Pair(vc, cfg)
	defer la.Close()
	defer lb.Close()
	rng := rand.New(rand.NewPCG(seed, 1))
	opts := fsmrt.Options{
		Clock: vc, MSL: time.Second, MinRTO: 50 * time.Millisecond, InitialRTO: 200 * time.Millisecond,
		DataRetries: 30, SynRetries: 30, SendBuffer: 64 << 10, ReceiveBuffer: 64 << 10,
	}
	mk := func(l link.Link, addr string, stream uint64) *fsmrt.Stack {
		o := opts
		o.Addr = netip.MustParseAddr(addr)
		o.Entropy = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(stream)})
		o.Observer = func(_ tcpfsm.State, _ tcpfsm.Event, to tcpfsm.State, _ tcpfsm.TransitionID) {
			if to == tcpfsm.StateTimeWait {
				simTotals.timeWait++
			}
		}
		s, err := fsmrt.NewStack(l, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var linkA, linkB link.Link = la, lb
	if !gather {
		linkA, linkB = memNoGather{la, la}, memNoGather{lb, lb}
		simTotals.copyRuns++
	}
	sa, sb := mk(linkA, "10.201.0.1", 1), mk(linkB, "10.201.0.2", 2)
	defer sa.Close()
	defer sb.Close()
	ln, err := sb.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	dialed := make(chan net.Conn, 1)
	dialErr := make(chan error, 1)
	go func() {
		c, err := sa.DialContext(context.Background(), "tcp", "10.201.0.2:80")
		if err != nil {
			dialErr <- err
			return
		}
		dialed <- c
	}()
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	a := &simEnd{out: payload(aLen)}
	b := &simEnd{out: payload(bLen)}
	switch order {
	case closeHalf:
		a.closeAt = 0 // a sends everything then half-closes; b keeps sending
	}
	buf := make([]byte, 32<<10)
	for step := 0; ; step++ {
		if step > 2_000_000 {
			t.Fatalf("no progress after %d steps at virtual %v: a=%v b=%v", step, vc.Now(), state(a), state(b))
		}
		if a.conn == nil {
			select {
			case c := <-dialed:
				a.conn = c.(*fsmrt.Conn)
			case err := <-dialErr:
				t.Fatalf("dial: %v", err)
			default:
			}
		}
		if b.conn == nil {
			select {
			case c := <-accepted:
				b.conn = c.(*fsmrt.Conn)
			default:
			}
		}
		aMay, bMay := true, true
		switch order {
		case closeActive:
			bMay = a.closed && b.eof
		case closePassive:
			aMay = b.closed && a.eof
		case closeSimultaneous:
			both := a.conn != nil && b.conn != nil && a.sent == len(a.out) && b.sent == len(b.out)
			aMay, bMay = both, both
		case closeHalf:
			bMay = a.closed
		}
		a.step(t, buf, aMay)
		b.step(t, buf, bMay)
		if done(a) && done(b) && a.conn.State() == tcpfsm.StateClosed && b.conn.State() == tcpfsm.StateClosed {
			break
		}
		if a.conn == nil || b.conn == nil {
			// Handshake in flight: goroutines hand over the conns; let
			// them run when nothing is due on the virtual clock.
			if _, ok := vc.Next(); !ok {
				time.Sleep(time.Millisecond)
				continue
			}
		}
		if !vc.Step() {
			if a.conn == nil || b.conn == nil {
				time.Sleep(time.Millisecond)
				continue
			}
			t.Fatalf("deadlock at virtual %v: nothing scheduled; a=%v b=%v", vc.Now(), state(a), state(b))
		}
	}
	if !bytes.Equal(a.got, b.out) {
		t.Fatalf("a received %d bytes, b sent %d: %s", len(a.got), len(b.out), firstDiff(a.got, b.out))
	}
	if !bytes.Equal(b.got, a.out) {
		t.Fatalf("b received %d bytes, a sent %d: %s", len(b.got), len(a.out), firstDiff(b.got, a.out))
	}
	simTotals.gsoSends += la.Stats().GSO + lb.Stats().GSO
	for name, s := range map[string]*fsmrt.Stack{"a": sa, "b": sb} {
		st := s.Stats()
		simTotals.retransmits += st.Retransmits
		simTotals.malformed += st.MalformedTotal()
		simTotals.challengeACKs += st.ChallengeACKs
		if st.Conns != 0 {
			t.Fatalf("stack %s: %d connections left in the demux table", name, st.Conns)
		}
		// The listener is closed below; only its own TCB may hold no timers.
		if st.ArmedTimers != 0 {
			t.Fatalf("stack %s: %d timers still armed after close", name, st.ArmedTimers)
		}
	}
}

func done(e *simEnd) bool { return e.conn != nil && e.eof && e.closed }

func state(e *simEnd) string {
	if e.conn == nil {
		return "not connected"
	}
	return fmt.Sprintf("%v sent=%d/%d got=%d eof=%v closed=%v", e.conn.State(), e.sent, len(e.out), len(e.got), e.eof, e.closed)
}

func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	return "one is a prefix of the other"
}
