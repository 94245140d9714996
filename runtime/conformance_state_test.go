package runtime_test

// Per-state conformance: every state × every arriving segment class. Each
// case drives a real connection into its state with hand-crafted segments
// (harness_test.go), injects one segment and checks the exact reply
// segment(s) and the next state. Case names cite the RFC 9293 §3.10.7.x step
// (or RFC 5961 section) they exercise.

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

const (
	fSYN = wire.SYN
	fACK = wire.ACK
	fRST = wire.RST
	fFIN = wire.FIN
	fPSH = wire.PSH
)

// inSeg is a segment from the peer: SEG.SEQ = RCV.NXT+seq, SEG.ACK = SND.NXT+ack.
type inSeg struct {
	flags    wire.Flags
	seq, ack int
	data     int
	badSum   bool // corrupt the TCP checksum
}

type stateCase struct {
	state string // key of setups
	name  string
	inSeg inSeg
	wait  time.Duration // advance the clock (delayed ACK) before checking replies
	want  []pkt
	next  tcpfsm.State
	check func(h *harness)
}

// Reusable post-checks.

func readN(n int) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		b, _ := h.readAll()
		if len(b) != n {
			h.t.Fatalf("read %d bytes, want %d", len(b), n)
		}
	}
}

func readEOF(n int) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		b, err := h.readAll()
		if len(b) != n || err != io.EOF {
			h.t.Fatalf("read %d bytes, %v; want %d bytes then EOF", len(b), err, n)
		}
	}
}

func readErr(want error) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		_, err := h.conn.ReadAvailable(make([]byte, 10))
		if !errors.Is(err, want) {
			h.t.Fatalf("read error %v, want %v", err, want)
		}
		if _, err := h.conn.WriteAvailable([]byte("x")); err == nil {
			h.t.Fatal("write on a reset connection succeeded")
		}
	}
}

func dialErr(want error) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		_, err := h.dialResult()
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			h.t.Fatalf("dial error %v, want %v", err, want)
		}
	}
}

func dialPending(h *harness) {
	h.t.Helper()
	if !h.dialPending() {
		h.t.Fatal("dial returned; want it still waiting in SYN-SENT")
	}
}

func malformedOnce(h *harness) {
	h.t.Helper()
	if got := h.st.Stats().Malformed[wire.BadTCPChecksum]; got != 1 {
		h.t.Fatalf("Stats().Malformed[BadTCPChecksum] = %d, want 1", got)
	}
}

func challengeACKs(n uint64) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		if got := h.st.Stats().ChallengeACKs; got != n {
			h.t.Fatalf("Stats().ChallengeACKs = %d, want %d", got, n)
		}
	}
}

func rstDropped(h *harness) {
	h.t.Helper()
	if got := h.st.Stats().Dropped["rst-outside-window"]; got != 1 {
		h.t.Fatalf(`Stats().Dropped["rst-outside-window"] = %d, want 1`, got)
	}
}

func checkAll(fs ...func(*harness)) func(*harness) {
	return func(h *harness) {
		h.t.Helper()
		for _, f := range fs {
			f(h)
		}
	}
}

// acceptsConn checks that the listener hands out the connection.
func acceptsConn(h *harness) { h.t.Helper(); h.accept() }

var (
	ackReply    = []pkt{{flags: fACK}} // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
	noReply     = []pkt(nil)           // silently dropped
	outOfWnd    = rcvBuf               // first sequence number past RCV.NXT+RCV.WND
	tooOldAck   = -(peerWnd + 10)      // SEG.ACK < SND.UNA - MAX.SND.WND (RFC 5961 §5.2)
	stClosed    = tcpfsm.StateClosed
	stListen    = tcpfsm.StateListen
	stSynSent   = tcpfsm.StateSynSent
	stSynRcvd   = tcpfsm.StateSynReceived
	stEstab     = tcpfsm.StateEstablished
	stFinWait1  = tcpfsm.StateFinWait1
	stFinWait2  = tcpfsm.StateFinWait2
	stCloseWait = tcpfsm.StateCloseWait
	stClosing   = tcpfsm.StateClosing
	stLastAck   = tcpfsm.StateLastAck
	stTimeWait  = tcpfsm.StateTimeWait
	delackTime  = 40 * time.Millisecond                                         // Options.DelayedACK
	rstReplyTo  = func(ack int) []pkt { return []pkt{{flags: fRST, seq: ack}} } // <SEQ=SEG.ACK><CTL=RST>
)

var stateCases = []stateCase{
	// ---- CLOSED: no TCB (§3.10.7.1) ----------------------------------------------
	{state: "CLOSED", name: "3.10.7.1 SYN gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>", inSeg: inSeg{flags: fSYN},
		want: []pkt{{flags: fRST | fACK, absSeq: true, ack: 1}}, next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 SYN with text: ACK=SEG.SEQ+SEG.LEN counts SYN and text", inSeg: inSeg{flags: fSYN, data: 10},
		want: []pkt{{flags: fRST | fACK, absSeq: true, ack: 11}}, next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 ACK gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: 5},
		want: rstReplyTo(5), next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 SYN,ACK gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fSYN | fACK, ack: 7},
		want: rstReplyTo(7), next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 data with ACK gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK | fPSH, ack: 3, data: 100},
		want: rstReplyTo(3), next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 FIN without ACK gets RST,ACK with ACK=SEG.SEQ+1", inSeg: inSeg{flags: fFIN},
		want: []pkt{{flags: fRST | fACK, absSeq: true, ack: 1}}, next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 text without any flag gets RST,ACK with ACK=SEG.SEQ+SEG.LEN", inSeg: inSeg{data: 5},
		want: []pkt{{flags: fRST | fACK, absSeq: true, ack: 5}}, next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 RST is discarded", inSeg: inSeg{flags: fRST}, want: noReply, next: stClosed},
	{state: "CLOSED", name: "3.10.7.1 RST,ACK is discarded", inSeg: inSeg{flags: fRST | fACK, ack: 1}, want: noReply, next: stClosed},
	{state: "CLOSED", name: "3.1 bad checksum is counted and dropped", inSeg: inSeg{flags: fSYN, badSum: true},
		want: noReply, next: stClosed, check: malformedOnce},

	// ---- LISTEN (§3.10.7.2) -----------------------------------------------------
	{state: "LISTEN", name: "3.10.7.2 first: RST is ignored", inSeg: inSeg{flags: fRST}, want: noReply, next: stListen},
	{state: "LISTEN", name: "3.10.7.2 first: RST,ACK is ignored", inSeg: inSeg{flags: fRST | fACK, ack: 1}, want: noReply, next: stListen},
	{state: "LISTEN", name: "3.10.7.2 first: RST,SYN is ignored (RST checked first)", inSeg: inSeg{flags: fRST | fSYN}, want: noReply, next: stListen},
	{state: "LISTEN", name: "3.10.7.2 second: ACK gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: 5},
		want: rstReplyTo(5), next: stListen},
	{state: "LISTEN", name: "3.10.7.2 second: data with ACK gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK | fPSH, ack: 9, data: 20},
		want: rstReplyTo(9), next: stListen},
	{state: "LISTEN", name: "3.10.7.2 second: SYN,ACK gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fSYN | fACK, ack: 77},
		want: rstReplyTo(77), next: stListen},
	{state: "LISTEN", name: "3.10.7.2 third: SYN gets <SEQ=ISS><ACK=SEG.SEQ+1><CTL=SYN,ACK>", inSeg: inSeg{flags: fSYN},
		want: []pkt{{flags: fSYN | fACK, anySeq: true, ack: 1}}, next: stSynRcvd},
	{state: "LISTEN", name: "3.10.7.2 fourth: FIN alone is dropped", inSeg: inSeg{flags: fFIN}, want: noReply, next: stListen},
	{state: "LISTEN", name: "3.10.7.2 fourth: text without SYN, ACK or RST is dropped", inSeg: inSeg{data: 10}, want: noReply, next: stListen},
	{state: "LISTEN", name: "3.1 SYN with bad checksum is counted and dropped", inSeg: inSeg{flags: fSYN, badSum: true},
		want: noReply, next: stListen, check: malformedOnce},

	// ---- SYN-SENT (§3.10.7.3) ---------------------------------------------------
	{state: "SYN-SENT", name: "3.10.7.3 fourth: SYN,ACK of our SYN gets ACK, ESTABLISHED", inSeg: inSeg{flags: fSYN | fACK},
		want: []pkt{{flags: fACK, ack: 1}}, next: stEstab, check: dialErr(nil)},
	{state: "SYN-SENT", name: "3.10.7.3 fourth+sixth: SYN,ACK with text is delivered", inSeg: inSeg{flags: fSYN | fACK, data: 10}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 1}, {flags: fACK, ack: 11}}, next: stEstab, check: checkAll(dialErr(nil), readN(10))},
	{state: "SYN-SENT", name: "3.10.7.3 fourth+eighth: SYN,ACK,FIN goes on to CLOSE-WAIT", inSeg: inSeg{flags: fSYN | fACK | fFIN},
		want: []pkt{{flags: fACK, ack: 1}, {flags: fACK, ack: 2}}, next: stCloseWait, check: dialErr(nil)},
	{state: "SYN-SENT", name: "3.10.7.3 first: SYN,ACK with SEG.ACK =< ISS gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fSYN | fACK, ack: -1},
		want: rstReplyTo(-1), next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 first: ACK > SND.NXT gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: 1},
		want: rstReplyTo(1), next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 first: ACK = ISS gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: -1},
		want: rstReplyTo(-1), next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 first: RST with unacceptable ACK is dropped", inSeg: inSeg{flags: fRST | fACK, ack: 1},
		want: noReply, next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 second: RST,ACK acceptable: CLOSED, connection refused", inSeg: inSeg{flags: fRST | fACK},
		want: noReply, next: stClosed, check: dialErr(syscall.ECONNREFUSED)},
	{state: "SYN-SENT", name: "3.10.7.3 second: RST without ACK is dropped", inSeg: inSeg{flags: fRST},
		want: noReply, next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 fourth: SYN (simultaneous open) gets <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>", inSeg: inSeg{flags: fSYN},
		want: []pkt{{flags: fSYN | fACK, seq: -1, ack: 1}}, next: stSynRcvd, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 fifth: acceptable ACK without SYN is dropped", inSeg: inSeg{flags: fACK},
		want: noReply, next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 fifth: FIN without SYN is dropped", inSeg: inSeg{flags: fFIN},
		want: noReply, next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.10.7.3 fifth: text without SYN or ACK is dropped", inSeg: inSeg{data: 10},
		want: noReply, next: stSynSent, check: dialPending},
	{state: "SYN-SENT", name: "3.1 SYN,ACK with bad checksum is counted and dropped", inSeg: inSeg{flags: fSYN | fACK, badSum: true},
		want: noReply, next: stSynSent, check: checkAll(malformedOnce, dialPending)},

	// ---- SYN-RECEIVED after a passive OPEN (§3.10.7.4) -----------------------------
	{state: "SYN-RECEIVED", name: "3.10.7.4 fifth: ACK of SYN: ESTABLISHED", inSeg: inSeg{flags: fACK},
		want: noReply, next: stEstab, check: acceptsConn},
	{state: "SYN-RECEIVED", name: "3.10.7.4 fifth+seventh: ACK of SYN with text: ESTABLISHED, text delivered", inSeg: inSeg{flags: fACK | fPSH, data: 10}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 10}}, next: stEstab, check: checkAll(acceptsConn, readN(10))},
	{state: "SYN-RECEIVED", name: "3.10.7.4 fifth+eighth: ACK of SYN with FIN: CLOSE-WAIT", inSeg: inSeg{flags: fACK | fFIN},
		want: []pkt{{flags: fACK, ack: 1}}, next: stCloseWait, check: checkAll(acceptsConn, readEOF(0))},
	{state: "SYN-RECEIVED", name: "3.10.7.4 fifth: ACK > SND.NXT gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: 1},
		want: rstReplyTo(1), next: stSynRcvd},
	{state: "SYN-RECEIVED", name: "3.10.7.4 fifth: ACK =< SND.UNA gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: -1},
		want: rstReplyTo(-1), next: stSynRcvd},
	{state: "SYN-RECEIVED", name: "3.10.7.4 fifth: segment without ACK is dropped", inSeg: inSeg{flags: fPSH, data: 10},
		want: noReply, next: stSynRcvd},
	{state: "SYN-RECEIVED", name: "3.10.7.4 second, Figure 5 note 1: RST at RCV.NXT returns to LISTEN", inSeg: inSeg{flags: fRST},
		want: noReply, next: stListen},
	{state: "SYN-RECEIVED", name: "3.10.7.4 second, Figure 5 note 1: RST,ACK at RCV.NXT returns to LISTEN", inSeg: inSeg{flags: fRST | fACK},
		want: noReply, next: stListen},
	{state: "SYN-RECEIVED", name: "RFC 5961 3.2: RST in window but not at RCV.NXT gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 100},
		want: ackReply, next: stSynRcvd, check: challengeACKs(1)},
	{state: "SYN-RECEIVED", name: "RFC 5961 3.2: RST outside the window is dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd},
		want: noReply, next: stSynRcvd, check: rstDropped},
	{state: "SYN-RECEIVED", name: "3.10.7.4 first: retransmitted SYN (below RCV.NXT) gets an ACK", inSeg: inSeg{flags: fSYN, seq: -1},
		want: ackReply, next: stSynRcvd},
	{state: "SYN-RECEIVED", name: "3.10.7.4 fourth: SYN in window after passive OPEN returns to LISTEN", inSeg: inSeg{flags: fSYN, seq: 5},
		want: noReply, next: stListen},
	{state: "SYN-RECEIVED", name: "3.10.7.4 first: text beyond the window gets an ACK", inSeg: inSeg{flags: fACK, seq: outOfWnd, data: 10},
		want: ackReply, next: stSynRcvd},
	{state: "SYN-RECEIVED", name: "3.1 ACK with bad checksum is counted and dropped", inSeg: inSeg{flags: fACK, badSum: true},
		want: noReply, next: stSynRcvd, check: malformedOnce},

	// ---- SYN-RECEIVED after an active OPEN (simultaneous open) ---------------------
	{state: "SYN-RECEIVED(active)", name: "3.10.7.4 fifth: ACK of SYN: ESTABLISHED, dial returns", inSeg: inSeg{flags: fACK},
		want: noReply, next: stEstab, check: dialErr(nil)},
	{state: "SYN-RECEIVED(active)", name: "3.10.7.4 second: RST after active OPEN: CLOSED, connection refused", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed, check: dialErr(syscall.ECONNREFUSED)},
	{state: "SYN-RECEIVED(active)", name: "RFC 5961 4.2: SYN in window after active OPEN gets a challenge ACK", inSeg: inSeg{flags: fSYN, seq: 5},
		want: ackReply, next: stSynRcvd, check: checkAll(challengeACKs(1), dialPending)},
	{state: "SYN-RECEIVED(active)", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 5},
		want: ackReply, next: stSynRcvd, check: dialPending},
	{state: "SYN-RECEIVED(active)", name: "3.10.7.4 fifth: ACK > SND.NXT gets <SEQ=SEG.ACK><CTL=RST>", inSeg: inSeg{flags: fACK, ack: 3},
		want: rstReplyTo(3), next: stSynRcvd, check: dialPending},

	// ---- ESTABLISHED (§3.10.7.4) ----------------------------------------------
	{state: "ESTABLISHED", name: "3.10.7.4 seventh: in-order text is delivered and ACKed within the delayed-ACK time", inSeg: inSeg{flags: fACK | fPSH, data: 100}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 100}}, next: stEstab, check: readN(100)},
	{state: "ESTABLISHED", name: "3.10.7.4 first: text at RCV.NXT+RCV.WND (outside the window) gets an ACK and is dropped", inSeg: inSeg{flags: fACK, seq: outOfWnd, data: 10},
		want: ackReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "3.10.7.4 first: old duplicate text (below RCV.NXT) gets an ACK and is dropped", inSeg: inSeg{flags: fACK, seq: -10, data: 10},
		want: ackReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "3.10.7.4 first+seventh: text straddling RCV.NXT: only the new part is taken", inSeg: inSeg{flags: fACK, seq: -4, data: 10}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 6}}, next: stEstab, check: readN(6)},
	{state: "ESTABLISHED", name: "3.10.7.4 seventh: text straddling the right window edge is trimmed to the window", inSeg: inSeg{flags: fACK, data: rcvBuf + 100}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: rcvBuf}}, next: stEstab, check: readN(rcvBuf)},
	{state: "ESTABLISHED", name: "3.10.7.4 seventh, RFC 5681 4.2: out-of-order text in window is held, immediate duplicate ACK", inSeg: inSeg{flags: fACK, seq: 10, data: 10},
		want: ackReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "3.10.7.4 first: empty segment beyond the window gets an ACK", inSeg: inSeg{flags: fACK, seq: outOfWnd},
		want: ackReply, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.7.4 first: empty segment below RCV.NXT gets an ACK", inSeg: inSeg{flags: fACK, seq: -1},
		want: ackReply, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.7.4 fifth: ACK > SND.NXT gets an ACK, segment dropped", inSeg: inSeg{flags: fACK | fPSH, ack: 1, data: 10},
		want: ackReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "RFC 5961 5.2: ACK < SND.UNA-MAX.SND.WND gets an ACK, segment dropped", inSeg: inSeg{flags: fACK | fPSH, ack: tooOldAck, data: 10},
		want: ackReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "RFC 5961 5.2: old ACK within MAX.SND.WND is ignored, text still taken", inSeg: inSeg{flags: fACK | fPSH, ack: -100, data: 10}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 10}}, next: stEstab, check: readN(10)},
	{state: "ESTABLISHED", name: "3.10.7.4 fifth: duplicate ACK with nothing outstanding is ignored", inSeg: inSeg{flags: fACK},
		want: noReply, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.7.4 fifth: segment without ACK is dropped", inSeg: inSeg{flags: fPSH, data: 10},
		want: noReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "3.10.7.4 fifth: FIN without ACK is dropped", inSeg: inSeg{flags: fFIN},
		want: noReply, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.7.4 second, RFC 5961 3.2: RST at RCV.NXT: CLOSED, connection reset", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed, check: readErr(syscall.ECONNRESET)},
	{state: "ESTABLISHED", name: "3.10.7.4 second, RFC 5961 3.2: RST,ACK at RCV.NXT: CLOSED, connection reset", inSeg: inSeg{flags: fRST | fACK},
		want: noReply, next: stClosed, check: readErr(syscall.ECONNRESET)},
	{state: "ESTABLISHED", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 1},
		want: ackReply, next: stEstab, check: challengeACKs(1)},
	{state: "ESTABLISHED", name: "RFC 5961 3.2: RST at the last in-window sequence number gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: rcvBuf - 1},
		want: ackReply, next: stEstab, check: challengeACKs(1)},
	{state: "ESTABLISHED", name: "RFC 5961 3.2 (1): RST at RCV.NXT+RCV.WND is silently dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd},
		want: noReply, next: stEstab, check: rstDropped},
	{state: "ESTABLISHED", name: "RFC 5961 3.2 (1): RST below RCV.NXT is silently dropped", inSeg: inSeg{flags: fRST, seq: -1},
		want: noReply, next: stEstab, check: rstDropped},
	{state: "ESTABLISHED", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN at RCV.NXT gets a challenge ACK", inSeg: inSeg{flags: fSYN},
		want: ackReply, next: stEstab, check: challengeACKs(1)},
	{state: "ESTABLISHED", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN,ACK in window gets a challenge ACK", inSeg: inSeg{flags: fSYN | fACK, seq: 5},
		want: ackReply, next: stEstab, check: challengeACKs(1)},
	{state: "ESTABLISHED", name: "3.10.7.4 first: old SYN (below RCV.NXT) gets an ACK", inSeg: inSeg{flags: fSYN, seq: -1},
		want: ackReply, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.7.4 eighth: FIN: CLOSE-WAIT, ACK of the FIN, end of stream", inSeg: inSeg{flags: fFIN | fACK},
		want: []pkt{{flags: fACK, ack: 1}}, next: stCloseWait, check: readEOF(0)},
	{state: "ESTABLISHED", name: "3.10.7.4 seventh+eighth: text and FIN: CLOSE-WAIT, ACK covers both", inSeg: inSeg{flags: fFIN | fACK | fPSH, data: 10},
		want: []pkt{{flags: fACK, ack: 11}}, next: stCloseWait, check: readEOF(10)},
	{state: "ESTABLISHED", name: "3.10.7.4 eighth: FIN beyond RCV.NXT is not processed yet, duplicate ACK", inSeg: inSeg{flags: fFIN | fACK, seq: 5, data: 5},
		want: ackReply, next: stEstab, check: readN(0)},
	{state: "ESTABLISHED", name: "3.1 data with bad checksum is counted and dropped", inSeg: inSeg{flags: fACK | fPSH, data: 10, badSum: true},
		want: noReply, next: stEstab, check: checkAll(malformedOnce, readN(0))},
	{state: "ESTABLISHED", name: "3.10.7.4 first: FIN beyond the window gets an ACK and is dropped", inSeg: inSeg{flags: fFIN | fACK, seq: outOfWnd},
		want: ackReply, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.7.4 second, 3.5.3: RST carrying diagnostic text at RCV.NXT resets", inSeg: inSeg{flags: fRST | fACK, data: 12},
		want: noReply, next: stClosed, check: readErr(syscall.ECONNRESET)},

	// ---- ESTABLISHED after an active OPEN ----------------------------------------
	{state: "ESTABLISHED(active)", name: "3.10.7.4 first: retransmitted SYN,ACK (our ACK was lost) gets an ACK", inSeg: inSeg{flags: fSYN | fACK, seq: -1},
		want: ackReply, next: stEstab},
	{state: "ESTABLISHED(active)", name: "3.10.7.4 seventh: in-order text is delivered", inSeg: inSeg{flags: fACK | fPSH, data: 50}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 50}}, next: stEstab, check: readN(50)},
	{state: "ESTABLISHED(active)", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED, connection reset", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed, check: readErr(syscall.ECONNRESET)},

	// ---- FIN-WAIT-1 (our FIN at SND.NXT-1 is outstanding) -------------------------
	{state: "FIN-WAIT-1", name: "3.10.7.4 fifth: ACK of our FIN: FIN-WAIT-2", inSeg: inSeg{flags: fACK},
		want: noReply, next: stFinWait2},
	{state: "FIN-WAIT-1", name: "3.10.7.4 fifth: ACK not covering our FIN: stay", inSeg: inSeg{flags: fACK, ack: -1},
		want: noReply, next: stFinWait1},
	{state: "FIN-WAIT-1", name: "3.10.7.4 eighth: FIN not acknowledging ours: CLOSING (simultaneous close)", inSeg: inSeg{flags: fFIN | fACK, ack: -1},
		want: []pkt{{flags: fACK, ack: 1}}, next: stClosing, check: readEOF(0)},
	{state: "FIN-WAIT-1", name: "3.10.7.4 eighth, Figure 5 note 2: FIN that acknowledges our FIN: TIME-WAIT", inSeg: inSeg{flags: fFIN | fACK},
		want: []pkt{{flags: fACK, ack: 1}}, next: stTimeWait},
	{state: "FIN-WAIT-1", name: "3.10.7.4 seventh+eighth, note 2: text+FIN acknowledging our FIN: TIME-WAIT", inSeg: inSeg{flags: fFIN | fACK | fPSH, data: 10},
		want: []pkt{{flags: fACK, ack: 11}}, next: stTimeWait, check: readEOF(10)},
	{state: "FIN-WAIT-1", name: "3.10.7.4 seventh: text is still accepted", inSeg: inSeg{flags: fACK | fPSH, ack: -1, data: 10}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 10}}, next: stFinWait1, check: readN(10)},
	{state: "FIN-WAIT-1", name: "3.10.7.4 fifth: FIN without ACK is dropped", inSeg: inSeg{flags: fFIN},
		want: noReply, next: stFinWait1},
	{state: "FIN-WAIT-1", name: "3.10.7.4 fifth: ACK > SND.NXT gets an ACK", inSeg: inSeg{flags: fACK, ack: 1},
		want: ackReply, next: stFinWait1},
	{state: "FIN-WAIT-1", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed},
	{state: "FIN-WAIT-1", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 3},
		want: ackReply, next: stFinWait1, check: challengeACKs(1)},
	{state: "FIN-WAIT-1", name: "RFC 5961 3.2 (1): RST outside the window is dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd},
		want: noReply, next: stFinWait1, check: rstDropped},
	{state: "FIN-WAIT-1", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN gets a challenge ACK", inSeg: inSeg{flags: fSYN},
		want: ackReply, next: stFinWait1, check: challengeACKs(1)},
	{state: "FIN-WAIT-1", name: "3.10.7.4 first: text outside the window gets an ACK", inSeg: inSeg{flags: fACK, seq: outOfWnd, data: 10},
		want: ackReply, next: stFinWait1},
	{state: "FIN-WAIT-1", name: "3.1 ACK of FIN with bad checksum is counted and dropped", inSeg: inSeg{flags: fACK, badSum: true},
		want: noReply, next: stFinWait1, check: malformedOnce},
	{state: "FIN-WAIT-1", name: "3.10.7.4 fifth+eighth: FIN beyond RCV.NXT acknowledging our FIN: FIN-WAIT-2, FIN held, duplicate ACK", inSeg: inSeg{flags: fFIN | fACK, seq: 5},
		want: ackReply, next: stFinWait2},

	// ---- FIN-WAIT-2 (our FIN acknowledged) -------------------------------------
	{state: "FIN-WAIT-2", name: "3.10.7.4 eighth: FIN: TIME-WAIT, ACK of the FIN", inSeg: inSeg{flags: fFIN | fACK},
		want: []pkt{{flags: fACK, ack: 1}}, next: stTimeWait, check: readEOF(0)},
	{state: "FIN-WAIT-2", name: "3.10.7.4 seventh+eighth: text and FIN: TIME-WAIT, ACK covers both", inSeg: inSeg{flags: fFIN | fACK | fPSH, data: 10},
		want: []pkt{{flags: fACK, ack: 11}}, next: stTimeWait, check: readEOF(10)},
	{state: "FIN-WAIT-2", name: "3.10.7.4 seventh: text is accepted", inSeg: inSeg{flags: fACK | fPSH, data: 10}, wait: delackTime,
		want: []pkt{{flags: fACK, ack: 10}}, next: stFinWait2, check: readN(10)},
	{state: "FIN-WAIT-2", name: "3.10.7.4 fifth: duplicate ACK is ignored", inSeg: inSeg{flags: fACK},
		want: noReply, next: stFinWait2},
	{state: "FIN-WAIT-2", name: "3.10.7.4 fifth: ACK > SND.NXT gets an ACK", inSeg: inSeg{flags: fACK, ack: 1},
		want: ackReply, next: stFinWait2},
	{state: "FIN-WAIT-2", name: "RFC 5961 5.2: ACK < SND.UNA-MAX.SND.WND gets an ACK", inSeg: inSeg{flags: fACK | fPSH, ack: tooOldAck, data: 5},
		want: ackReply, next: stFinWait2, check: readN(0)},
	{state: "FIN-WAIT-2", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed},
	{state: "FIN-WAIT-2", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 7},
		want: ackReply, next: stFinWait2, check: challengeACKs(1)},
	{state: "FIN-WAIT-2", name: "RFC 5961 3.2 (1): RST outside the window is dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd + 1000},
		want: noReply, next: stFinWait2, check: rstDropped},
	{state: "FIN-WAIT-2", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN gets a challenge ACK", inSeg: inSeg{flags: fSYN, seq: 1},
		want: ackReply, next: stFinWait2, check: challengeACKs(1)},
	{state: "FIN-WAIT-2", name: "3.10.7.4 first: text outside the window gets an ACK", inSeg: inSeg{flags: fACK, seq: -20, data: 10},
		want: ackReply, next: stFinWait2},
	{state: "FIN-WAIT-2", name: "3.10.7.4 eighth, RFC 5681 4.2: FIN beyond RCV.NXT is held, duplicate ACK", inSeg: inSeg{flags: fFIN | fACK, seq: 5},
		want: ackReply, next: stFinWait2},
	{state: "FIN-WAIT-2", name: "3.1 FIN with bad checksum is counted and dropped", inSeg: inSeg{flags: fFIN | fACK, badSum: true},
		want: noReply, next: stFinWait2, check: malformedOnce},

	// ---- CLOSE-WAIT (peer's FIN received) ---------------------------------------
	{state: "CLOSE-WAIT", name: "3.10.7.4 eighth: retransmitted FIN gets an ACK", inSeg: inSeg{flags: fFIN | fACK, seq: -1},
		want: ackReply, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.10.7.4 seventh: text after the FIN is ignored", inSeg: inSeg{flags: fACK | fPSH, data: 10}, wait: delackTime,
		want: noReply, next: stCloseWait, check: readEOF(0)},
	{state: "CLOSE-WAIT", name: "3.10.7.4 fifth: duplicate ACK is ignored", inSeg: inSeg{flags: fACK},
		want: noReply, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.10.7.4 fifth: ACK > SND.NXT gets an ACK", inSeg: inSeg{flags: fACK, ack: 1},
		want: ackReply, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed},
	{state: "CLOSE-WAIT", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 2},
		want: ackReply, next: stCloseWait, check: challengeACKs(1)},
	{state: "CLOSE-WAIT", name: "RFC 5961 3.2 (1): RST below RCV.NXT is dropped", inSeg: inSeg{flags: fRST, seq: -1},
		want: noReply, next: stCloseWait, check: rstDropped},
	{state: "CLOSE-WAIT", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN gets a challenge ACK", inSeg: inSeg{flags: fSYN},
		want: ackReply, next: stCloseWait, check: challengeACKs(1)},
	{state: "CLOSE-WAIT", name: "3.10.7.4 first: text outside the window gets an ACK", inSeg: inSeg{flags: fACK, seq: outOfWnd, data: 10},
		want: ackReply, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.10.7.4 eighth: retransmitted text+FIN gets an ACK", inSeg: inSeg{flags: fFIN | fACK | fPSH, seq: -11, data: 10},
		want: ackReply, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.1 retransmitted FIN with bad checksum is counted and dropped", inSeg: inSeg{flags: fFIN | fACK, seq: -1, badSum: true},
		want: noReply, next: stCloseWait, check: malformedOnce},

	// ---- CLOSING (both FINs sent, ours not acknowledged) ---------------------------
	{state: "CLOSING", name: "3.10.7.4 fifth: ACK of our FIN: TIME-WAIT", inSeg: inSeg{flags: fACK},
		want: noReply, next: stTimeWait},
	{state: "CLOSING", name: "3.10.7.4 fifth: ACK not covering our FIN: stay", inSeg: inSeg{flags: fACK, ack: -1},
		want: noReply, next: stClosing},
	{state: "CLOSING", name: "3.10.7.4 eighth: retransmitted FIN gets an ACK", inSeg: inSeg{flags: fFIN | fACK, seq: -1, ack: -1},
		want: ackReply, next: stClosing},
	{state: "CLOSING", name: "3.10.7.4 fifth: ACK > SND.NXT gets an ACK", inSeg: inSeg{flags: fACK, ack: 1},
		want: ackReply, next: stClosing},
	{state: "CLOSING", name: "3.10.7.4 seventh: text after the FIN is ignored", inSeg: inSeg{flags: fACK | fPSH, ack: -1, data: 10}, wait: delackTime,
		want: noReply, next: stClosing},
	{state: "CLOSING", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed},
	{state: "CLOSING", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 4},
		want: ackReply, next: stClosing, check: challengeACKs(1)},
	{state: "CLOSING", name: "RFC 5961 3.2 (1): RST outside the window is dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd},
		want: noReply, next: stClosing, check: rstDropped},
	{state: "CLOSING", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN gets a challenge ACK", inSeg: inSeg{flags: fSYN},
		want: ackReply, next: stClosing, check: challengeACKs(1)},
	{state: "CLOSING", name: "3.10.7.4 first: a retransmitted FIN is old even if it acknowledges our FIN: ACK, stay", inSeg: inSeg{flags: fFIN | fACK, seq: -1},
		want: ackReply, next: stClosing},
	{state: "CLOSING", name: "3.1 ACK of FIN with bad checksum is counted and dropped", inSeg: inSeg{flags: fACK, badSum: true},
		want: noReply, next: stClosing, check: malformedOnce},

	// ---- LAST-ACK (our FIN after the peer's, not acknowledged) -----------------------
	{state: "LAST-ACK", name: "3.10.7.4 fifth: ACK of our FIN: CLOSED", inSeg: inSeg{flags: fACK},
		want: noReply, next: stClosed},
	{state: "LAST-ACK", name: "3.10.7.4 fifth: ACK not covering our FIN: stay", inSeg: inSeg{flags: fACK, ack: -1},
		want: noReply, next: stLastAck},
	{state: "LAST-ACK", name: "3.10.7.4 eighth: retransmitted FIN gets an ACK", inSeg: inSeg{flags: fFIN | fACK, seq: -1, ack: -1},
		want: ackReply, next: stLastAck},
	{state: "LAST-ACK", name: "3.10.7.4 fifth: ACK > SND.NXT gets an ACK", inSeg: inSeg{flags: fACK, ack: 1},
		want: ackReply, next: stLastAck},
	{state: "LAST-ACK", name: "3.10.7.4 seventh: text after the FIN is ignored", inSeg: inSeg{flags: fACK | fPSH, ack: -1, data: 10}, wait: delackTime,
		want: noReply, next: stLastAck},
	{state: "LAST-ACK", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed},
	{state: "LAST-ACK", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 4},
		want: ackReply, next: stLastAck, check: challengeACKs(1)},
	{state: "LAST-ACK", name: "RFC 5961 3.2 (1): RST outside the window is dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd},
		want: noReply, next: stLastAck, check: rstDropped},
	{state: "LAST-ACK", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN gets a challenge ACK", inSeg: inSeg{flags: fSYN},
		want: ackReply, next: stLastAck, check: challengeACKs(1)},
	{state: "LAST-ACK", name: "3.10.7.4 first: text outside the window gets an ACK", inSeg: inSeg{flags: fACK, seq: outOfWnd, data: 10},
		want: ackReply, next: stLastAck},
	{state: "LAST-ACK", name: "3.1 ACK of FIN with bad checksum is counted and dropped", inSeg: inSeg{flags: fACK, badSum: true},
		want: noReply, next: stLastAck, check: malformedOnce},

	// ---- TIME-WAIT ---------------------------------------------------------------
	{state: "TIME-WAIT", name: "3.10.7.4 eighth: retransmitted FIN gets an ACK", inSeg: inSeg{flags: fFIN | fACK, seq: -1},
		want: ackReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 eighth: retransmitted text+FIN gets an ACK", inSeg: inSeg{flags: fFIN | fACK | fPSH, seq: -21, data: 20},
		want: ackReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 first: SYN below RCV.NXT gets an ACK", inSeg: inSeg{flags: fSYN, seq: -100},
		want: ackReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 fifth: ACK is ignored", inSeg: inSeg{flags: fACK},
		want: noReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 fifth: ACK > SND.NXT is ignored (only a FIN matters)", inSeg: inSeg{flags: fACK, ack: 5},
		want: noReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 seventh: text is ignored", inSeg: inSeg{flags: fACK | fPSH, data: 10}, wait: delackTime,
		want: noReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 first: text outside the window gets an ACK", inSeg: inSeg{flags: fACK, seq: outOfWnd, data: 10},
		want: ackReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.7.4 second: RST at RCV.NXT: CLOSED", inSeg: inSeg{flags: fRST},
		want: noReply, next: stClosed},
	{state: "TIME-WAIT", name: "RFC 5961 3.2: RST in window gets a challenge ACK", inSeg: inSeg{flags: fRST, seq: 9},
		want: ackReply, next: stTimeWait, check: challengeACKs(1)},
	{state: "TIME-WAIT", name: "RFC 5961 3.2 (1): RST outside the window is dropped", inSeg: inSeg{flags: fRST, seq: outOfWnd},
		want: noReply, next: stTimeWait, check: rstDropped},
	{state: "TIME-WAIT", name: "3.10.7.4 fourth, RFC 5961 4.2: SYN gets a challenge ACK", inSeg: inSeg{flags: fSYN},
		want: ackReply, next: stTimeWait, check: challengeACKs(1)},
	{state: "TIME-WAIT", name: "3.1 FIN with bad checksum is counted and dropped", inSeg: inSeg{flags: fFIN | fACK, seq: -1, badSum: true},
		want: noReply, next: stTimeWait, check: malformedOnce},
}

func TestConformanceSegments(t *testing.T) {
	for _, tc := range stateCases {
		t.Run(tc.state+"/"+tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			stateSetups[tc.state](h)
			h.expectNothing()
			seg := h.segment(tc.inSeg.flags, relSeq(h.rcvNxt, tc.inSeg.seq), relSeq(h.sndNxt, tc.inSeg.ack), testPayload(tc.inSeg.data))
			if tc.inSeg.flags&fSYN != 0 {
				seg.Options = synOpts
			}
			snd, rcv := h.sndNxt, h.rcvNxt
			if tc.inSeg.badSum {
				h.injectRaw(h.badChecksum(seg))
			} else {
				h.inject(seg)
			}
			if tc.wait > 0 {
				h.advance(tc.wait)
			}
			h.expectRel(snd, rcv, tc.want...)
			h.expectState(tc.next)
			if tc.check != nil {
				tc.check(h)
			}
		})
	}
}
