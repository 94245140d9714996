package runtime_test

// Timeout conformance (RFC 9293 §3.10.8): the retransmission timeout and its
// abort once the retries are spent (RFC 6298 §5, RFC 1122 §4.2.3.5 R2), and
// the user timeout (RFC 5482) in every state that can have a SYN, data or
// FIN unacknowledged. Each case runs on virtual time and checks the exact
// segments and when they are sent, the transition that closes the
// connection, and what the user API reports afterwards.

import (
	"errors"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
)

// expectClosedBy checks that the connection's last transition was
// from --ev--> CLOSED.
func (h *harness) expectClosedBy(from tcpfsm.State, ev tcpfsm.Event) {
	h.t.Helper()
	l := netip.AddrPortFrom(stackAddr, h.localPort).String()
	r := netip.AddrPortFrom(peerAddr, h.remotePort).String()
	h.trace.mu.Lock()
	var last transition
	found := false
	for i := len(h.trace.all) - 1; i >= 0 && !found; i-- {
		if tr := h.trace.all[i]; tr.local == l && tr.remote == r {
			last, found = tr, true
		}
	}
	h.trace.mu.Unlock()
	if !found || last.from != from.String() || last.event != ev.String() || last.to != stClosed {
		h.t.Fatalf("last transition %s --%s--> %v, want %v --%v--> CLOSED; transitions:%s",
			last.from, last.event, last.to, from, ev, h.transitions())
	}
	h.expectState(stClosed)
}

// nothingLeft checks that the aborted connection left no timer or demux
// entry behind and sends nothing more.
func nothingLeft(h *harness) {
	h.t.Helper()
	st := h.st.Stats()
	if st.ArmedTimers != 0 || st.Conns != 0 {
		h.t.Fatalf("after the abort: %d timers armed, %d connections; want 0, 0", st.ArmedTimers, st.Conns)
	}
	h.advance(time.Minute)
	h.expectNothing()
}

// userErrs checks what Read and Write return on the aborted connection.
func userErrs(readWant, writeWant error) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		h.conn.SetDeadline(time.Now().Add(5 * time.Second)) // real time: never hang
		if n, err := h.conn.Read(make([]byte, 10)); n != 0 || !errors.Is(err, readWant) {
			h.t.Fatalf("Read = %d, %v; want 0, %v", n, err, readWant)
		}
		if n, err := h.conn.Write([]byte("late")); n != 0 || !errors.Is(err, writeWant) {
			h.t.Fatalf("Write = %d, %v; want 0, %v", n, err, writeWant)
		}
		h.expectNothing()
	}
}

func retransmits(n uint64) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		if got := h.st.Stats().Retransmits; got != n {
			h.t.Fatalf("Stats().Retransmits = %d, want %d", got, n)
		}
	}
}

func userTimeout(d time.Duration) func(*fsmrt.Options) {
	return func(o *fsmrt.Options) { o.UserTimeout = d }
}

var (
	finRtx  = pkt{flags: fFIN | fACK, seq: -1}      // our FIN again, at SND.NXT-1
	rtoBack = []time.Duration{200, 600, 1400, 3000} // RTO 200ms doubling (RFC 6298 5.5), ms after the first send
	rtoDead = 6200 * time.Millisecond               // the fifth expiry: DataRetries (4) spent
	ms      = func(d time.Duration) time.Duration { return d * time.Millisecond }
)

var timeoutCases = []scenarioCase{
	// ---- the acceptability test in CLOSING -----------------------------------------
	{name: "RFC 9293 3.10.7.4 first, RFC 5961 5.2: CLOSING: text beyond the window and a too-old ACK each get an ACK and are dropped", run: func(h *harness) {
		h.toClosing()
		h.send(fACK|fPSH, outOfWnd, -1, testPayload(10)) // SEG.SEQ = RCV.NXT+RCV.WND
		h.expect(pkt{flags: fACK})
		h.expectState(stClosing)
		h.send(fACK|fPSH, 0, tooOldAck, testPayload(5)) // in the window, SEG.ACK < SND.UNA-MAX.SND.WND
		h.expect(pkt{flags: fACK})
		h.expectState(stClosing)
		h.send(fACK, 0, 0, nil) // the connection is intact: the ACK of our FIN still counts
		h.expectNothing()
		h.expectState(stTimeWait)
	}},

	// ---- retransmission timeout and R2 abort ---------------------------------------
	{name: "RFC 9293 3.10.8, RFC 6298 5.4-5.6, RFC 1122 4.2.3.5: CLOSE-WAIT: data retransmitted with backoff; abort after DataRetries, no RST", run: func(h *harness) {
		h.toCloseWait() // RTO 200ms after the handshake
		t0 := h.clk.Now()
		writeN(10)(h)
		data := pkt{flags: fACK | fPSH, data: 10}
		h.expect(data)
		for _, at := range rtoBack {
			h.expectAt(t0+ms(at), data)
			h.expectState(stCloseWait)
		}
		h.expectAt(t0 + rtoDead)
		h.expectClosedBy(stCloseWait, tcpfsm.EventRtoTimeout)
		retransmits(4)(h)
		userErrs(io.EOF, syscall.ETIMEDOUT)(h) // the peer's FIN was delivered: reads see the end of stream
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 6298 5.5, RFC 1122 4.2.3.5: FIN-WAIT-1: FIN retransmitted with backoff; abort after DataRetries, no RST", run: func(h *harness) {
		h.toFinWait1()
		t0 := h.clk.Now()
		for _, at := range rtoBack {
			h.expectAt(t0+ms(at), finRtx)
			h.expectState(stFinWait1)
		}
		h.expectAt(t0 + rtoDead)
		h.expectClosedBy(stFinWait1, tcpfsm.EventRtoTimeout)
		retransmits(4)(h)
		userErrs(syscall.ETIMEDOUT, syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 6298 5.5, RFC 1122 4.2.3.5: CLOSING: FIN retransmitted with backoff; abort after DataRetries, no RST", run: func(h *harness) {
		h.toClosing()
		t0 := h.clk.Now() // our FIN went out at t0
		for _, at := range rtoBack {
			h.expectAt(t0+ms(at), finRtx)
			h.expectState(stClosing)
		}
		h.expectAt(t0 + rtoDead)
		h.expectClosedBy(stClosing, tcpfsm.EventRtoTimeout)
		retransmits(4)(h)
		userErrs(io.EOF, syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},

	// ---- user timeout (RFC 5482) ------------------------------------------------------
	{name: "RFC 9293 3.10.8, RFC 5482: SYN-SENT: the user timeout ends the SYN retransmissions early; the dial fails with ETIMEDOUT, no RST", opts: userTimeout(5 * time.Second), run: func(h *harness) {
		h.startDial() // t=0, InitialRTO 1s, SynRetries 3 (abort would be at 15s)
		syn := pkt{flags: fSYN, seq: -1}
		h.expectAt(1*time.Second, syn)
		h.expectAt(3*time.Second, syn)
		h.expectState(stSynSent)
		h.expectAt(5 * time.Second)
		h.expectClosedBy(stSynSent, tcpfsm.EventUserTimeout)
		dialErr(syscall.ETIMEDOUT)(h)
		retransmits(2)(h)
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 5482: SYN-RECEIVED (passive): the user timeout drops the embryonic connection, no RST; the listener keeps listening", opts: func(o *fsmrt.Options) { o.UserTimeout = 5 * time.Second; o.SynBacklog = 1 }, run: func(h *harness) {
		h.toSynReceived() // t=0
		synAck := pkt{flags: fSYN | fACK, seq: -1}
		h.expectAt(1*time.Second, synAck)
		h.expectAt(3*time.Second, synAck)
		h.expectState(stSynRcvd)
		h.expectAt(5 * time.Second)
		h.expectClosedBy(stSynRcvd, tcpfsm.EventUserTimeout)
		if got := h.listenerState(); got != stListen {
			h.t.Fatalf("listener state %v, want LISTEN", got)
		}
		nothingLeft(h)
		h.send(fACK, 0, 0, nil) // the late ACK of the SYN,ACK finds no TCB: <SEQ=SEG.ACK><CTL=RST> from the listener (3.10.7.2 second)
		h.expect(pkt{flags: fRST})
		h.handshakeAgain(0x0badcafe) // the backlog slot was released
	}},
	{name: "RFC 9293 3.10.8, RFC 5482: SYN-RECEIVED (simultaneous open): the user timeout aborts the dial with ETIMEDOUT, no RST", opts: userTimeout(5 * time.Second), run: func(h *harness) {
		h.toSynReceivedActive() // our SYN at t=0 armed the user timer
		synAck := pkt{flags: fSYN | fACK, seq: -1}
		h.expectAt(1*time.Second, synAck)
		h.expectAt(3*time.Second, synAck)
		h.expectState(stSynRcvd)
		h.expectAt(5 * time.Second)
		h.expectClosedBy(stSynRcvd, tcpfsm.EventUserTimeout)
		dialErr(syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 5482: FIN-WAIT-1: the user timeout ends the FIN retransmissions, no RST; Read and Write report ETIMEDOUT", opts: userTimeout(time.Second), run: func(h *harness) {
		h.toFinWait1()
		t0 := h.clk.Now()
		h.expectAt(t0+ms(200), finRtx)
		h.expectAt(t0+ms(600), finRtx)
		h.expectState(stFinWait1)
		h.expectAt(t0 + time.Second)
		h.expectClosedBy(stFinWait1, tcpfsm.EventUserTimeout)
		userErrs(syscall.ETIMEDOUT, syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 5482, RFC 6298 5.3: CLOSE-WAIT: an ACK of new data restarts the user timeout; it then aborts, no RST", opts: userTimeout(time.Second), run: func(h *harness) {
		h.toCloseWait()
		t0 := h.clk.Now()
		writeN(2000)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 1460}, pkt{flags: fACK | fPSH, seq: 1460, data: 540})
		h.expectAt(t0+ms(200), pkt{flags: fACK | fPSH, data: 1460}) // RTO; backed off to 400ms
		h.clk.AdvanceTo(t0 + ms(500))
		h.send(fACK, 0, 1460, nil) // partial ACK: the next hole goes at once (RFC 6582 3.2), both timers restart
		h.expect(pkt{flags: fACK | fPSH, seq: 1460, data: 540})
		h.expectAt(t0+ms(900), pkt{flags: fACK | fPSH, seq: 1460, data: 540})
		h.clk.AdvanceTo(t0 + time.Second) // the first send's deadline passes
		h.expectState(stCloseWait)
		h.expectAt(t0 + ms(1500)) // 1s after the ACK, before the RTO at 1700ms
		h.expectClosedBy(stCloseWait, tcpfsm.EventUserTimeout)
		userErrs(io.EOF, syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 5482: CLOSE-WAIT: the user timer stops once everything is acknowledged", opts: userTimeout(time.Second), run: func(h *harness) {
		h.toCloseWait()
		writeN(10)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 10})
		h.advance(100 * time.Millisecond)
		h.send(fACK, 0, 10, nil)
		h.advance(time.Minute)
		h.expectNothing()
		h.expectState(stCloseWait)
	}},
	{name: "RFC 9293 3.10.8, RFC 5482: CLOSING: the user timeout ends the FIN retransmissions, no RST", opts: userTimeout(time.Second), run: func(h *harness) {
		h.toClosing()
		t0 := h.clk.Now()
		h.expectAt(t0+ms(200), finRtx)
		h.expectAt(t0+ms(600), finRtx)
		h.expectState(stClosing)
		h.expectAt(t0 + time.Second)
		h.expectClosedBy(stClosing, tcpfsm.EventUserTimeout)
		userErrs(io.EOF, syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},
	{name: "RFC 9293 3.10.8, RFC 5482: LAST-ACK: the user timeout ends the FIN retransmissions, no RST", opts: userTimeout(time.Second), run: func(h *harness) {
		h.toLastAck()
		t0 := h.clk.Now()
		h.expectAt(t0+ms(200), finRtx)
		h.expectAt(t0+ms(600), finRtx)
		h.expectState(stLastAck)
		h.expectAt(t0 + time.Second)
		h.expectClosedBy(stLastAck, tcpfsm.EventUserTimeout)
		userErrs(io.EOF, syscall.ETIMEDOUT)(h)
		nothingLeft(h)
	}},
}

func TestConformanceTimeouts(t *testing.T) {
	for _, sc := range timeoutCases {
		t.Run(sc.name, func(t *testing.T) {
			h := newHarness(t, sc.opts)
			sc.run(h)
		})
	}
}
