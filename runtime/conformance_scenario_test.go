package runtime_test

// Multi-step conformance scenarios: transitions that need more than one
// segment (simultaneous open and close, return to LISTEN), timers on virtual
// time (retransmission backoff and abort, TIME-WAIT, delayed ACK, user
// timeout) and the RFC 5961 challenge-ACK budget.

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// expectAt checks that nothing is sent before virtual time at and that
// exactly want is sent at it.
func (h *harness) expectAt(at time.Duration, want ...pkt) {
	h.t.Helper()
	h.clk.AdvanceTo(at - 1)
	if got := h.lnk.count(); got != 0 {
		h.t.Fatalf("at %v (1ns early) %d segments were already sent", at, got)
	}
	h.clk.AdvanceTo(at)
	h.expect(want...)
}

// handshakeAgain runs a fresh passive handshake on the same 4-tuple with a
// new IRS, proving the listener still accepts.
func (h *harness) handshakeAgain(irs uint32) {
	h.t.Helper()
	h.irs = seqnum.Value(irs)
	h.rcvNxt = h.irs
	syn := h.segment(fSYN, h.irs, 0, nil)
	syn.Options = synOpts
	h.inject(syn)
	got := h.expect(pkt{flags: fSYN | fACK, anySeq: true, ack: 1})
	h.iss = got[0].Seq
	h.sndNxt, h.rcvNxt = h.iss.Add(1), h.irs.Add(1)
	h.expectState(stSynRcvd)
	h.send(fACK, 0, 0, nil)
	h.expectNothing()
	h.expectState(stEstab)
	h.accept()
}

type scenarioCase struct {
	name string
	opts func(*fsmrt.Options)
	run  func(h *harness)
}

var scenarioCases = []scenarioCase{
	{name: "3.10.7.4 second, Figure 5 note 1: RST in SYN-RECEIVED returns to LISTEN and the listener accepts again", opts: func(o *fsmrt.Options) { o.SynBacklog = 1 }, run: func(h *harness) {
		h.toSynReceived()
		h.send(fRST, 0, 0, nil)
		h.expectNothing()
		h.expectState(stListen)
		h.advance(30 * time.Second) // the embryonic connection's SYN,ACK timer is gone
		h.expectNothing()
		h.handshakeAgain(0x01020304)
	}},
	{name: "3.10.7.4 fourth: SYN in window in SYN-RECEIVED returns to LISTEN and the listener accepts again", run: func(h *harness) {
		h.toSynReceived()
		h.send(fSYN, 3, 0, nil)
		h.expectNothing()
		h.expectState(stListen)
		h.handshakeAgain(0x7ffffff0)
	}},
	{name: "3.10.7.3 fourth, 3.10.7.4 fifth: simultaneous open SYN-SENT > SYN-RECEIVED > ESTABLISHED", run: func(h *harness) {
		h.toSynReceivedActive()
		h.send(fACK, 0, 0, nil)
		h.expectNothing()
		h.expectState(stEstab)
		if _, err := h.dialResult(); err != nil {
			h.t.Fatal(err)
		}
		writeN(10)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 10})
	}},
	{name: "3.5 Figure 7 line 6, A.2: simultaneous open: the peer's SYN,ACK in SYN-RECEIVED completes the handshake", run: func(h *harness) {
		h.toSynReceivedActive()                              // lines 2-5: our SYN, the peer's SYN, our SYN,ACK
		synAck := h.segment(fSYN|fACK, h.irs, h.sndNxt, nil) // line 6: <SEQ=IRS><ACK=ISS+1><CTL=SYN,ACK>
		synAck.Options = synOpts
		h.inject(synAck)
		h.expectNothing()
		h.expectState(stEstab)
		dialErr(nil)(h)
		h.advance(time.Minute) // our SYN,ACK is not retransmitted any more
		h.expectNothing()
	}},
	{name: "3.10.7.4 eighth, fifth: simultaneous close FIN-WAIT-1 > CLOSING > TIME-WAIT > CLOSED after 2MSL", run: func(h *harness) {
		h.toClosing()
		h.send(fACK, 0, 0, nil) // acknowledges our FIN
		h.expectNothing()
		h.expectState(stTimeWait)
		t0 := h.clk.Now()
		h.expectAt(t0 + 2*testMSL)
		h.expectState(stClosed)
	}},
	{name: "3.10.8: TIME-WAIT lasts exactly 2*MSL; afterwards a segment gets <SEQ=SEG.ACK><CTL=RST> (3.10.7.1)", run: func(h *harness) {
		h.toTimeWait()
		t0 := h.clk.Now()
		h.clk.AdvanceTo(t0 + 2*testMSL - 1)
		h.expectState(stTimeWait)
		h.clk.AdvanceTo(t0 + 2*testMSL)
		h.expectState(stClosed)
		h.expectNothing()
		h.send(fFIN|fACK, -1, 0, nil)
		h.expect(pkt{flags: fRST})
		h.expectState(stClosed)
	}},
	{name: "3.10.7.4 eighth: TIME-WAIT re-ACKs a retransmitted FIN and restarts the 2MSL timeout", run: func(h *harness) {
		h.toTimeWait()
		t0 := h.clk.Now()
		h.advance(8 * time.Second)
		h.send(fFIN|fACK, -1, 0, nil)
		h.expect(pkt{flags: fACK})
		t1 := h.clk.Now()
		h.clk.AdvanceTo(t0 + 2*testMSL) // the original expiry passes
		h.expectState(stTimeWait)
		h.clk.AdvanceTo(t1 + 2*testMSL - 1)
		h.expectState(stTimeWait)
		h.clk.AdvanceTo(t1 + 2*testMSL)
		h.expectState(stClosed)
		h.expectNothing()
	}},
	{name: "3.10.7.4 fifth: FIN-WAIT-1 > FIN-WAIT-2 > TIME-WAIT > CLOSED; no FIN-WAIT-2 timer in the RFC", run: func(h *harness) {
		h.toFinWait2()
		h.advance(10 * time.Minute)
		h.expectNothing()
		h.expectState(stFinWait2)
		h.send(fFIN|fACK, 0, 0, nil)
		h.expect(pkt{flags: fACK, ack: 1})
		h.expectState(stTimeWait)
		h.advance(2 * testMSL)
		h.expectState(stClosed)
	}},
	{name: "3.10.8, RFC 6298 5.5, RFC 1122 4.2.3.5: SYN retransmitted with backoff 1s,2s,4s; abort after SynRetries", run: func(h *harness) {
		h.startDial() // at t=0, InitialRTO 1s, SynRetries 3
		syn := pkt{flags: fSYN, seq: -1}
		h.expectAt(1*time.Second, syn)
		h.expectAt(3*time.Second, syn)
		h.expectAt(7*time.Second, syn)
		h.expectState(stSynSent)
		h.expectAt(15 * time.Second) // abort: no RST in SYN-SENT
		h.expectState(stClosed)
		dialErr(syscall.ETIMEDOUT)(h)
		if got := h.st.Stats().Retransmits; got != 3 {
			h.t.Fatalf("Stats().Retransmits = %d, want 3", got)
		}
	}},
	{name: "3.10.8: SYN,ACK retransmitted with backoff in SYN-RECEIVED; abort after SynRetries, the listener keeps listening", opts: func(o *fsmrt.Options) { o.SynBacklog = 1 }, run: func(h *harness) {
		h.toSynReceived() // at t=0
		synAck := pkt{flags: fSYN | fACK, seq: -1}
		h.expectAt(1*time.Second, synAck)
		h.expectAt(3*time.Second, synAck)
		h.expectAt(7*time.Second, synAck)
		h.expectState(stSynRcvd)
		h.expectAt(15 * time.Second)
		h.expectState(stClosed)
		if got := h.listenerState(); got != stListen {
			h.t.Fatalf("listener state %v, want LISTEN", got)
		}
		h.handshakeAgain(0x55555555)
	}},
	{name: "3.10.8, RFC 6298 5.4-5.6: data retransmitted on RTO with backoff; abort after DataRetries", run: func(h *harness) {
		h.toEstablished() // RTO is MinRTO (200ms) after the handshake's RTT sample
		t0 := h.clk.Now()
		writeN(10)(h)
		data := pkt{flags: fACK | fPSH, data: 10}
		h.expect(data)
		h.expectAt(t0+200*time.Millisecond, data)
		h.expectAt(t0+600*time.Millisecond, data)
		h.expectAt(t0+1400*time.Millisecond, data)
		h.expectAt(t0+3000*time.Millisecond, data)
		h.expectState(stEstab)
		h.expectAt(t0 + 6200*time.Millisecond) // DataRetries 4: abort
		h.expectState(stClosed)
		readErr(syscall.ETIMEDOUT)(h)
	}},
	{name: "RFC 6298 5.2, 5.3: an ACK of all data stops the retransmission timer, a partial ACK restarts it", run: func(h *harness) {
		h.toEstablished()
		t0 := h.clk.Now()
		writeN(2000)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 1460}, pkt{flags: fACK | fPSH, seq: 1460, data: 540})
		h.advance(100 * time.Millisecond)
		h.send(fACK, 0, 1460, nil) // partial ACK: restart (RTO stays 200ms)
		h.expectNothing()
		h.expectAt(t0+300*time.Millisecond, pkt{flags: fACK | fPSH, seq: 1460, data: 540})
		h.send(fACK, 0, 2000, nil) // everything acknowledged
		h.advance(time.Minute)
		h.expectNothing()
		h.expectState(stEstab)
	}},
	{name: "RFC 5681 3.2: the third duplicate ACK triggers a fast retransmit", run: func(h *harness) {
		h.toEstablished()
		writeN(4 * 1460)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 1460}, pkt{flags: fACK | fPSH, seq: 1460, data: 1460},
			pkt{flags: fACK | fPSH, seq: 2920, data: 1460}, pkt{flags: fACK | fPSH, seq: 4380, data: 1460})
		h.send(fACK, 0, 1460, nil)
		h.expectNothing()
		h.send(fACK, 0, 1460, nil)
		h.send(fACK, 0, 1460, nil)
		h.expectNothing()
		h.send(fACK, 0, 1460, nil)
		h.expect(pkt{flags: fACK | fPSH, seq: 1460, data: 1460})
	}},
	{name: "3.10.8: FIN retransmitted on RTO in FIN-WAIT-1 until acknowledged", run: func(h *harness) {
		h.toFinWait1()
		t0 := h.clk.Now()
		fin := pkt{flags: fFIN | fACK, seq: -1}
		h.expectAt(t0+200*time.Millisecond, fin)
		h.expectAt(t0+600*time.Millisecond, fin)
		h.send(fACK, 0, 0, nil)
		h.expectState(stFinWait2)
		h.advance(time.Minute)
		h.expectNothing()
	}},
	{name: "3.10.8: FIN retransmitted on RTO in CLOSING; the ACK of it leads to TIME-WAIT", run: func(h *harness) {
		h.toClosing()
		t0 := h.clk.Now() // our FIN went out at t0 too
		h.expectAt(t0+200*time.Millisecond, pkt{flags: fFIN | fACK, seq: -1})
		h.send(fACK, 0, 0, nil)
		h.expectNothing()
		h.expectState(stTimeWait)
	}},
	{name: "3.10.8, RFC 1122 4.2.3.5: FIN retransmitted in LAST-ACK; abort after DataRetries", run: func(h *harness) {
		h.toLastAck()
		t0 := h.clk.Now()
		fin := pkt{flags: fFIN | fACK, seq: -1}
		for _, at := range []time.Duration{200, 600, 1400, 3000} {
			h.expectAt(t0+at*time.Millisecond, fin)
		}
		h.expectState(stLastAck)
		h.expectAt(t0 + 6200*time.Millisecond)
		h.expectState(stClosed)
	}},
	{name: "3.10.7.4 fifth: LAST-ACK > CLOSED on the ACK of our FIN; a retransmitted FIN then gets <SEQ=SEG.ACK><CTL=RST>", run: func(h *harness) {
		h.toLastAck()
		h.send(fACK, 0, 0, nil)
		h.expectNothing()
		h.expectState(stClosed)
		h.send(fFIN|fACK, -1, 0, nil)
		h.expect(pkt{flags: fRST})
	}},
	{name: "RFC 5961 7: challenge ACKs are limited to ChallengeACKLimit per second", opts: func(o *fsmrt.Options) { o.ChallengeACKLimit = 2 }, run: func(h *harness) {
		h.toEstablished()
		h.send(fRST, 1, 0, nil)
		h.send(fRST, 2, 0, nil)
		h.expect(pkt{flags: fACK}, pkt{flags: fACK})
		h.send(fRST, 3, 0, nil)
		h.send(fSYN, 0, 0, nil) // SYN challenge ACKs share the budget (RFC 5961 4.2)
		h.expectNothing()
		challengeACKs(2)(h)
		h.advance(time.Second)
		h.send(fSYN, 0, 0, nil)
		h.expect(pkt{flags: fACK})
		h.expectState(stEstab)
	}},
	{name: "RFC 1122 4.2.3.2: one segment is ACKed after exactly DelayedACK", run: func(h *harness) {
		h.toEstablished()
		t0 := h.clk.Now()
		h.send(fACK|fPSH, 0, 0, testPayload(100))
		h.expectAt(t0+delackTime, pkt{flags: fACK, ack: 100})
	}},
	{name: "RFC 1122 4.2.3.2, RFC 5681 4.2: the second full-sized segment is ACKed at once", run: func(h *harness) {
		h.toEstablished()
		h.send(fACK|fPSH, 0, 0, testPayload(1460))
		h.expectNothing()
		h.send(fACK|fPSH, 1460, 0, testPayload(1460))
		h.expect(pkt{flags: fACK, ack: 2920})
		readN(2920)(h)
	}},
	{name: "3.10.7.4 first: with RCV.WND zero, in-sequence text gets an ACK and is dropped; RECEIVE reopens the window (3.10.3)", run: func(h *harness) {
		h.toEstablished()
		h.send(fACK|fPSH, 0, 0, testPayload(rcvBuf))
		h.advance(delackTime)
		got := h.expect(pkt{flags: fACK, ack: rcvBuf})
		if got[0].Window != 0 {
			h.t.Fatalf("window %d after filling the buffer, want 0", got[0].Window)
		}
		h.send(fACK|fPSH, rcvBuf, 0, testPayload(1)) // a zero-window probe
		got = h.expect(pkt{flags: fACK, ack: rcvBuf})
		if got[0].Window != 0 {
			h.t.Fatalf("window %d, want 0", got[0].Window)
		}
		if n, _ := h.conn.ReadAvailable(make([]byte, 2*rcvBuf)); n != rcvBuf {
			h.t.Fatalf("read %d bytes, want %d", n, rcvBuf)
		}
		got = h.expect(pkt{flags: fACK, ack: rcvBuf}) // window update
		if got[0].Window != rcvBuf {
			h.t.Fatalf("window update %d, want %d", got[0].Window, rcvBuf)
		}
	}},
	{name: "3.10.7.4 eighth: a FIN beyond RCV.NXT waits for the gap, then CLOSE-WAIT", run: func(h *harness) {
		h.toEstablished()
		h.send(fFIN|fACK, 5, 0, nil)
		h.expect(pkt{flags: fACK}) // duplicate ACK for the out-of-order segment
		h.expectState(stEstab)
		h.send(fACK|fPSH, 0, 0, testPayload(5))
		h.expect(pkt{flags: fACK, ack: 6})
		h.expectState(stCloseWait)
		readEOF(5)(h)
	}},
	{name: "3.10.7.4 second, RFC 5961 3.2: RST at RCV.NXT after in-order text resets; Read reports it", run: func(h *harness) {
		h.toEstablished()
		h.send(fACK|fPSH, 0, 0, testPayload(10))
		h.send(fRST, 10, 0, nil)
		h.expectNothing()
		h.expectState(stClosed)
	}},
	{name: "3.10.4: a listener closed during the handshake resets the connection its ACK completes", run: func(h *harness) {
		h.toSynReceived()
		if err := h.ln.Close(); err != nil {
			h.t.Fatal(err)
		}
		h.send(fACK, 0, 0, nil)
		h.expect(pkt{flags: fRST})
		h.expectState(stClosed)
	}},
	{name: "3.10.8, RFC 5482: the user timeout aborts without RST", opts: func(o *fsmrt.Options) { o.UserTimeout = 3 * time.Second }, run: func(h *harness) {
		h.toEstablished()
		t0 := h.clk.Now()
		writeN(10)(h)
		data := pkt{flags: fACK | fPSH, data: 10}
		h.expect(data)
		for _, at := range []time.Duration{200, 600, 1400} {
			h.expectAt(t0+at*time.Millisecond, data)
		}
		h.expectAt(t0 + 3*time.Second)
		h.expectState(stClosed)
		readErr(syscall.ETIMEDOUT)(h)
	}},
	{name: "RFC 5961 3.2, 3.10.7.4 first: RCV.WND is the advertised window: without window scaling an RST beyond RCV.NXT+65535 is dropped", opts: func(o *fsmrt.Options) { o.ReceiveBuffer = 256 << 10 }, run: func(h *harness) {
		h.toEstablished() // the peer offered no window scale: the stack advertises 65535
		h.send(fRST, 65535+100, 0, nil)
		h.expectNothing()
		rstDropped(h)
		h.send(fACK|fPSH, 65535, 0, testPayload(10)) // text just beyond the window: ACK, drop
		h.expect(pkt{flags: fACK})
		h.send(fACK|fPSH, 0, 0, testPayload(32000))
		h.send(fACK|fPSH, 32000, 0, testPayload(33535))
		h.expect(pkt{flags: fACK, ack: 65535})
		readN(65535)(h) // the segment beyond the window was not held
		h.expectState(stEstab)
	}},
	{name: "RFC 7323 2.2, 2.3: with window scaling RCV.WND is the whole buffer; later windows are scaled", opts: func(o *fsmrt.Options) { o.ReceiveBuffer = 256 << 10 }, run: func(h *harness) {
		h.listen()
		syn := h.segment(fSYN, h.irs, 0, nil)
		syn.Options = wire.Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 2}
		h.inject(syn)
		got := h.lnk.drain()
		if len(got) != 1 || got[0].Flags != fSYN|fACK || !got[0].Options.HasWScale || got[0].Options.WScale != 3 || got[0].Window != 65535 {
			h.t.Fatalf("want SYN,ACK with WScale 3 and window 65535, got %v", got)
		}
		h.iss = got[0].Seq
		h.sndNxt, h.rcvNxt = h.iss.Add(1), h.irs.Add(1)
		h.send(fACK, 0, 0, nil)
		h.expectState(stEstab)
		h.accept()
		h.send(fRST, 200000, 0, nil) // inside the scaled 256 KiB window: challenge ACK
		got = h.expect(pkt{flags: fACK})
		if got[0].Window != (256<<10)>>3 {
			h.t.Fatalf("scaled window %d, want %d", got[0].Window, (256<<10)>>3)
		}
		h.send(fRST, 256<<10, 0, nil) // just past it: dropped
		h.expectNothing()
		h.expectState(stEstab)
	}},
	{name: "3.8.1 MUST-18, RFC 6298 5.7: after a SYN timeout the RTO is re-initialized to 3s for data (active OPEN)", run: func(h *harness) {
		h.startDial()
		h.expectAt(1*time.Second, pkt{flags: fSYN, seq: -1})
		h.advance(500 * time.Millisecond)
		synAck := h.segment(fSYN|fACK, h.irs, h.sndNxt, nil)
		synAck.Options = synOpts
		h.inject(synAck)
		h.rcvNxt = h.irs.Add(1)
		h.expect(pkt{flags: fACK})
		dialErr(nil)(h)
		t0 := h.clk.Now()
		writeN(10)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 10})
		h.expectAt(t0+3*time.Second, pkt{flags: fACK | fPSH, data: 10})
	}},
	{name: "3.8.1 MUST-18, RFC 6298 5.7: after a SYN,ACK timeout the RTO is re-initialized to 3s for data (passive OPEN)", run: func(h *harness) {
		h.toSynReceived()
		h.expectAt(1*time.Second, pkt{flags: fSYN | fACK, seq: -1})
		h.send(fACK, 0, 0, nil)
		h.expectState(stEstab)
		h.accept()
		t0 := h.clk.Now()
		writeN(10)(h)
		h.expect(pkt{flags: fACK | fPSH, data: 10})
		h.expectAt(t0+3*time.Second, pkt{flags: fACK | fPSH, data: 10})
	}},
	{name: "3.10.7.3 fourth: SYN,ACK after a SYN retransmission completes the active OPEN", run: func(h *harness) {
		h.startDial()
		h.expectAt(1*time.Second, pkt{flags: fSYN, seq: -1})
		synAck := h.segment(fSYN|fACK, h.irs, h.sndNxt, nil)
		synAck.Options = synOpts
		h.inject(synAck)
		h.rcvNxt = h.irs.Add(1)
		h.expect(pkt{flags: fACK})
		dialErr(nil)(h)
		h.expectState(stEstab)
		h.advance(time.Minute) // the SYN's timer is stopped
		h.expectNothing()
	}},
	{name: "3.10.7.4 seventh: FIN-WAIT-2 keeps receiving after CloseWrite (half-close) until the peer's FIN", run: func(h *harness) {
		h.toFinWait2()
		h.send(fACK|fPSH, 0, 0, testPayload(30))
		h.send(fFIN|fACK|fPSH, 30, 0, testPayload(20))
		h.expect(pkt{flags: fACK, ack: 51})
		h.expectState(stTimeWait)
		b, err := h.readAll()
		if len(b) != 50 || !errors.Is(err, io.EOF) {
			h.t.Fatalf("read %d bytes, %v; want 50 then EOF", len(b), err)
		}
	}},
	{name: "3.10.7.1: a segment for a port with no listener gets RST and the stack sent no other segment", run: func(h *harness) {
		h.toClosed()
		h.localPort = 81
		h.send(fSYN, 0, 0, nil)
		h.expect(pkt{flags: fRST | fACK, absSeq: true, ack: 1})
		if got := h.st.Stats().ResetsSent; got != 1 {
			h.t.Fatalf("Stats().ResetsSent = %d, want 1", got)
		}
	}},
}

func TestConformanceScenarios(t *testing.T) {
	for _, sc := range scenarioCases {
		t.Run(sc.name, func(t *testing.T) {
			h := newHarness(t, sc.opts)
			sc.run(h)
		})
	}
}
