package runtime_test

import (
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// TestConformanceFinWait2Timeout: a connection the user fully closed leaves
// FIN-WAIT-2 after Options.FinTimeout (Linux tcp_fin_timeout; RFC 9293 has
// none, and fsmgen verify finds the deadlock without it), silently; a merely
// half-closed one waits for the peer's FIN indefinitely.
func TestConformanceFinWait2Timeout(t *testing.T) {
	fin := func(o *fsmrt.Options) { o.FinTimeout = 3 * time.Second }
	// closeToFinWait2 calls Close in ESTABLISHED and acknowledges the FIN.
	closeToFinWait2 := func(h *harness) {
		h.toEstablished()
		if err := h.conn.Close(); err != nil {
			t.Fatal(err)
		}
		h.expect(pkt{flags: wire.FIN | wire.ACK})
		h.sndNxt = h.sndNxt.Add(1)
		h.send(wire.ACK, 0, 0, nil)
		h.expectState(tcpfsm.StateFinWait2)
	}

	t.Run("Close then FIN-WAIT-2: CLOSED after FinTimeout, no RST", func(t *testing.T) {
		h := newHarness(t, fin)
		closeToFinWait2(h)
		h.advance(3*time.Second - time.Millisecond)
		h.expectState(tcpfsm.StateFinWait2)
		h.advance(time.Millisecond)
		h.expectClosedBy(tcpfsm.StateFinWait2, tcpfsm.EventFinWait2Timeout)
		nothingLeft(h)
	})

	t.Run("CloseWrite then FIN-WAIT-2: waits for the peer; Close then bounds it", func(t *testing.T) {
		h := newHarness(t, fin)
		h.toFinWait2() // via CloseWrite
		h.advance(time.Hour)
		h.expectState(tcpfsm.StateFinWait2)
		if err := h.conn.Close(); err != nil {
			t.Fatal(err)
		}
		h.advance(3 * time.Second)
		h.expectClosedBy(tcpfsm.StateFinWait2, tcpfsm.EventFinWait2Timeout)
		nothingLeft(h)
	})

	t.Run("Close, FIN-WAIT-2, peer FIN: TIME-WAIT stops the FIN-WAIT-2 timer", func(t *testing.T) {
		h := newHarness(t, fin)
		closeToFinWait2(h)
		h.send(wire.FIN|wire.ACK, 0, 0, nil)
		h.expectState(tcpfsm.StateTimeWait)
		h.advance(5 * time.Second) // past FinTimeout, within 2*MSL: still TIME-WAIT
		h.expectState(tcpfsm.StateTimeWait)
	})
}
