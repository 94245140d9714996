package runtime_test

// Per-state conformance of the user calls (RFC 9293 §3.10.1-§3.10.5): OPEN,
// SEND, RECEIVE, CLOSE and ABORT in every state the API can reach, with the
// exact segments each sends and the next state.

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
)

type callCase struct {
	state string
	name  string
	call  func(h *harness) error
	err   error // the error the call must fail with (errAny: any), nil for success
	want  []pkt
	next  tcpfsm.State
	check func(h *harness)
}

func writeN(n int) func(*harness) error {
	return func(h *harness) error { _, err := h.conn.WriteAvailable(testPayload(n)); return err }
}

func closeWrite(h *harness) error { return h.conn.CloseWrite() }
func closeConn(h *harness) error  { return h.conn.Close() }

// abortStack is ABORT for every connection (Stack.Close).
func abortStack(h *harness) error { return h.st.Close() }

// abortDial is ABORT of a pending dial (its context is cancelled).
func abortDial(h *harness) error {
	h.dialCancel()
	_, err := h.dialResult()
	if !errors.Is(err, context.Canceled) {
		h.t.Fatalf("dial error %v, want context.Canceled", err)
	}
	return nil
}

func writeFails(h *harness) {
	h.t.Helper()
	if n, err := h.conn.WriteAvailable([]byte("late")); err == nil || n != 0 {
		h.t.Fatalf("write after close: %d, %v; want an error", n, err)
	}
	h.expectNothing()
}

func listenerClosed(h *harness) {
	h.t.Helper()
	if got := h.listenerState(); got != tcpfsm.StateClosed {
		h.t.Fatalf("listener state %v, want CLOSED", got)
	}
}

var callCases = []callCase{
	// CLOSED (§3.10.1-§3.10.5 "CLOSED STATE (i.e., TCB does not exist)").
	{state: "ESTABLISHED", name: "3.10.2 CLOSED: SEND after a reset is an error", call: func(h *harness) error {
		h.send(fRST, 0, 0, nil)
		_, err := h.conn.WriteAvailable([]byte("x"))
		return err
	}, err: syscall.ECONNRESET, want: noReply, next: stClosed, check: readErr(syscall.ECONNRESET)},
	{state: "ESTABLISHED", name: "3.10.4 CLOSED: CLOSE after a reset sends nothing", call: func(h *harness) error {
		h.send(fRST, 0, 0, nil)
		return h.conn.Close()
	}, want: noReply, next: stClosed},

	// LISTEN.
	{state: "LISTEN", name: "3.10.1 LISTEN: OPEN on the same port fails (connection already exists)", call: func(h *harness) error {
		_, err := h.st.Listen("tcp", ":80")
		return err
	}, err: errAny, want: noReply, next: stListen},
	{state: "LISTEN", name: "3.10.4 LISTEN: CLOSE deletes the TCB; a later SYN gets RST,ACK (3.10.7.1)", call: func(h *harness) error {
		if err := h.ln.Close(); err != nil {
			return err
		}
		h.expectNothing()
		h.send(fSYN, 0, 0, nil)
		h.expect(pkt{flags: fRST | fACK, absSeq: true, ack: 1})
		return nil
	}, want: noReply, next: stClosed, check: listenerClosed},
	{state: "LISTEN", name: "3.10.5 LISTEN: ABORT (stack close) sends nothing", call: abortStack,
		want: noReply, next: stClosed, check: listenerClosed},

	// SYN-SENT.
	{state: "SYN-SENT", name: "3.10.5 SYN-SENT: ABORT sends nothing, CLOSED", call: abortDial,
		want: noReply, next: stClosed},
	{state: "SYN-SENT", name: "3.10.5 SYN-SENT: ABORT, then the peer's SYN,ACK gets <SEQ=SEG.ACK><CTL=RST> (3.10.7.1)", call: func(h *harness) error {
		abortDial(h)
		h.expectNothing()
		h.send(fSYN|fACK, 0, 0, nil)
		return nil
	}, want: []pkt{{flags: fRST}}, next: stClosed},

	// SYN-RECEIVED.
	{state: "SYN-RECEIVED", name: "3.10.5 SYN-RECEIVED: ABORT sends <SEQ=SND.NXT><CTL=RST>", call: abortStack,
		want: []pkt{{flags: fRST}}, next: stClosed},
	{state: "SYN-RECEIVED(active)", name: "3.10.5 SYN-RECEIVED: ABORT of an active OPEN sends <SEQ=SND.NXT><CTL=RST>", call: abortDial,
		want: []pkt{{flags: fRST}}, next: stClosed},

	// ESTABLISHED.
	{state: "ESTABLISHED", name: "3.10.2 ESTABLISHED: SEND segmentizes and sends at once", call: writeN(100),
		want: []pkt{{flags: fACK | fPSH, data: 100}}, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.2 ESTABLISHED: SEND larger than the MSS is split into MSS-sized segments", call: writeN(2000),
		want: []pkt{{flags: fACK | fPSH, data: 1460}, {flags: fACK | fPSH, seq: 1460, data: 540}}, next: stEstab},
	{state: "ESTABLISHED", name: "3.10.4 ESTABLISHED: CLOSE sends FIN after the queued data, FIN-WAIT-1", call: func(h *harness) error {
		writeN(10)(h)
		return h.conn.CloseWrite()
	}, want: []pkt{{flags: fACK | fPSH, data: 10}, {flags: fFIN | fACK, seq: 10}}, next: stFinWait1},
	{state: "ESTABLISHED", name: "3.10.4 ESTABLISHED: Close (net.Conn) sends FIN; later SEND fails", call: closeConn,
		want: []pkt{{flags: fFIN | fACK}}, next: stFinWait1, check: writeFails},
	{state: "ESTABLISHED", name: "3.10.5 ESTABLISHED: ABORT sends <SEQ=SND.NXT><CTL=RST>", call: abortStack,
		want: []pkt{{flags: fRST}}, next: stClosed},
	{state: "ESTABLISHED", name: "3.10.5, RFC 2525 2.17: Close with unread data is an ABORT: <SEQ=SND.NXT><CTL=RST>", call: func(h *harness) error {
		h.send(fACK|fPSH, 0, 0, testPayload(10))
		return h.conn.Close()
	}, want: []pkt{{flags: fRST}}, next: stClosed},
	{state: "ESTABLISHED", name: "3.10.3 ESTABLISHED: RECEIVE with nothing there returns nothing", call: func(h *harness) error {
		n, err := h.conn.ReadAvailable(make([]byte, 10))
		if n != 0 {
			h.t.Fatalf("read %d bytes", n)
		}
		return err
	}, want: noReply, next: stEstab},

	// FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK, TIME-WAIT: SEND is an error.
	{state: "FIN-WAIT-1", name: "3.10.2 FIN-WAIT-1: SEND is an error (connection closing)", call: writeN(5),
		err: net.ErrClosed, want: noReply, next: stFinWait1},
	{state: "FIN-WAIT-1", name: "3.10.4 FIN-WAIT-1: a second CLOSE sends nothing", call: closeWrite,
		want: noReply, next: stFinWait1},
	{state: "FIN-WAIT-1", name: "3.10.5 FIN-WAIT-1: ABORT sends <SEQ=SND.NXT><CTL=RST>", call: abortStack,
		want: []pkt{{flags: fRST}}, next: stClosed},
	{state: "FIN-WAIT-2", name: "3.10.2 FIN-WAIT-2: SEND is an error (connection closing)", call: writeN(5),
		err: net.ErrClosed, want: noReply, next: stFinWait2},
	{state: "FIN-WAIT-2", name: "3.10.4 FIN-WAIT-2: a second CLOSE sends nothing", call: closeConn,
		want: noReply, next: stFinWait2},
	{state: "FIN-WAIT-2", name: "3.10.5 FIN-WAIT-2: ABORT sends <SEQ=SND.NXT><CTL=RST>", call: abortStack,
		want: []pkt{{flags: fRST}}, next: stClosed},
	{state: "CLOSING", name: "3.10.2 CLOSING: SEND is an error (connection closing)", call: writeN(5),
		err: net.ErrClosed, want: noReply, next: stClosing},
	{state: "CLOSING", name: "3.10.4 CLOSING: a second CLOSE sends nothing", call: closeWrite,
		want: noReply, next: stClosing},
	{state: "CLOSING", name: "3.10.5 CLOSING: ABORT sends nothing, CLOSED", call: abortStack,
		want: noReply, next: stClosed},
	{state: "LAST-ACK", name: "3.10.2 LAST-ACK: SEND is an error (connection closing)", call: writeN(5),
		err: net.ErrClosed, want: noReply, next: stLastAck},
	{state: "LAST-ACK", name: "3.10.5 LAST-ACK: ABORT sends nothing, CLOSED", call: abortStack,
		want: noReply, next: stClosed},
	{state: "TIME-WAIT", name: "3.10.2 TIME-WAIT: SEND is an error (connection closing)", call: writeN(5),
		err: net.ErrClosed, want: noReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.4 TIME-WAIT: a second CLOSE sends nothing", call: closeConn,
		want: noReply, next: stTimeWait},
	{state: "TIME-WAIT", name: "3.10.5 TIME-WAIT: ABORT sends nothing, CLOSED", call: abortStack,
		want: noReply, next: stClosed},

	// CLOSE-WAIT.
	{state: "CLOSE-WAIT", name: "3.10.2 CLOSE-WAIT: SEND still sends", call: writeN(20),
		want: []pkt{{flags: fACK | fPSH, data: 20}}, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.10.3 CLOSE-WAIT: RECEIVE returns end of stream", call: func(h *harness) error {
		if _, err := h.conn.ReadAvailable(make([]byte, 10)); err != io.EOF {
			h.t.Fatalf("read: %v, want EOF", err)
		}
		return nil
	}, want: noReply, next: stCloseWait},
	{state: "CLOSE-WAIT", name: "3.10.4 CLOSE-WAIT: CLOSE sends FIN, LAST-ACK", call: closeConn,
		want: []pkt{{flags: fFIN | fACK}}, next: stLastAck, check: writeFails},
	{state: "CLOSE-WAIT", name: "3.10.5 CLOSE-WAIT: ABORT sends <SEQ=SND.NXT><CTL=RST>", call: abortStack,
		want: []pkt{{flags: fRST}}, next: stClosed},
}

func TestConformanceUserCalls(t *testing.T) {
	for _, tc := range callCases {
		t.Run(tc.state+"/"+tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			stateSetups[tc.state](h)
			h.expectNothing()
			snd, rcv := h.sndNxt, h.rcvNxt
			err := tc.call(h)
			if (tc.err == nil) != (err == nil) || tc.err != nil && tc.err != errAny && !errors.Is(err, tc.err) {
				t.Fatalf("call error %v, want %v", err, tc.err)
			}
			h.expectRel(snd, rcv, tc.want...)
			h.expectState(tc.next)
			if tc.check != nil {
				tc.check(h)
			}
		})
	}
}
