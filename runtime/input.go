package runtime

import (
	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// input processes one arriving segment for an existing connection (RFC 9293
// §3.10.7.3 SYN-SENT and §3.10.7.4 other states), classifying it into the
// spec's RCV_* events in the RFC's order. Only the machine changes state.
func (c *conn) input(seg *wire.Segment) {
	if c.closedDone {
		c.s.closedInput(seg)
		return
	}
	c.seg = seg
	defer func() { c.seg = nil }()
	switch c.m.State() {
	case tcpfsm.StateSynSent:
		c.inputSynSent(seg)
	case tcpfsm.StateListen, tcpfsm.StateClosed:
		c.s.stats.dropped[dropOther].Add(1)
	default:
		c.inputSynchronized(seg)
	}
	if c.ackNow && !c.closedDone {
		c.sendAck()
	}
}

// inputSynSent follows RFC 9293 §3.10.7.3.
func (c *conn) inputSynSent(seg *wire.Segment) {
	hasACK := seg.Flags&wire.ACK != 0
	ackOK := false
	if hasACK {
		// First: SEG.ACK =< ISS or SEG.ACK > SND.NXT is unacceptable.
		if seg.Ack.LessThanEq(c.iss) || c.sndNxt.LessThan(seg.Ack) {
			if seg.Flags&wire.RST == 0 {
				c.fire(tcpfsm.EventRcvBadAck)
			}
			return
		}
		ackOK = c.sndUna.LessThanEq(seg.Ack) // SND.UNA =< SEG.ACK =< SND.NXT
	}
	// Second: RST.
	if seg.Flags&wire.RST != 0 {
		if ackOK {
			c.fire(tcpfsm.EventRcvRst)
		}
		return
	}
	// Fourth: SYN.
	if seg.Flags&wire.SYN != 0 {
		if ackOK {
			c.fire(tcpfsm.EventRcvSynAck)
			c.textAndFin(seg) // "continue processing at the sixth step"
		} else if !hasACK {
			c.fire(tcpfsm.EventRcvSyn)
		}
		return
	}
	// Fifth: neither SYN nor RST.
	if ackOK {
		c.fire(tcpfsm.EventRcvAck)
	}
}

// rcvWnd is RCV.WND, the window we advertise: the free buffer, but at most
// 65535 scaled by our shift (RFC 7323 §2.3), so never more than the peer
// was told (RFC 9293 §3.10.7.4 first, RFC 5961 §3.2).
func (c *conn) rcvWnd() int {
	shift := uint8(0)
	if c.wscaleOK {
		shift = c.rcvShift
	}
	return min(c.rcvBuf.window(), 0xffff<<shift)
}

// acceptable is the RFC 9293 §3.10.7.4 first check (the four cases).
func (c *conn) acceptable(seg *wire.Segment) bool {
	wnd := seqnum.Size(c.rcvWnd())
	segLen := seg.Len()
	seq := seg.Seq
	switch {
	case segLen == 0 && wnd == 0:
		return seq == c.rcvNxt
	case segLen == 0:
		return seq.InWindow(c.rcvNxt, wnd)
	case wnd == 0:
		return false
	}
	last := seq.Add(segLen - 1)
	return seq.InWindow(c.rcvNxt, wnd) || last.InWindow(c.rcvNxt, wnd)
}

// inputSynchronized follows RFC 9293 §3.10.7.4 with the RFC 5961 checks.
func (c *conn) inputSynchronized(seg *wire.Segment) {
	// §3.5 Figure 7 line 6 (see Appendix A.2): in a simultaneous open the
	// peer's SYN,ACK repeats its SYN just below RCV.NXT; its ACK of our SYN
	// completes the handshake (Linux does the same) instead of costing an RTO.
	if c.m.State() == tcpfsm.StateSynReceived && !c.passive &&
		seg.Flags&(wire.SYN|wire.ACK|wire.RST) == wire.SYN|wire.ACK &&
		seg.Seq.Add(1) == c.rcvNxt && seg.Ack == c.sndNxt {
		c.fire(tcpfsm.EventRcvAckOfSyn)
		if !c.closedDone {
			c.textAndFin(seg)
		}
		return
	}
	// First: sequence number. A zero window still takes ACKs, RSTs and
	// the FIN/ACK flags of an in-sequence empty segment.
	if !c.acceptable(seg) {
		// A retransmission of the peer's FIN lies just below RCV.NXT; the
		// spec re-ACKs it (and TIME-WAIT restarts 2MSL, §3.10.7.4 eighth).
		if c.finRcvd && seg.Flags&(wire.FIN|wire.RST|wire.SYN) == wire.FIN && seg.End() == c.rcvNxt {
			c.fire(tcpfsm.EventRcvFin)
			return
		}
		if seg.Flags&wire.RST != 0 {
			c.s.stats.dropped[dropUnacceptableRST].Add(1) // RFC 5961 §3.2 (1)
			return
		}
		// A zero window with an in-order data segment: still process its ACK.
		if !(c.rcvBuf.window() == 0 && seg.Seq == c.rcvNxt && seg.Flags&wire.ACK != 0) {
			c.fire(tcpfsm.EventRcvUnacceptable)
			return
		}
	}
	// Second: RST (RFC 5961 §3.2).
	if seg.Flags&wire.RST != 0 {
		if seg.Seq == c.rcvNxt {
			c.fire(tcpfsm.EventRcvRst)
		} else {
			c.fire(tcpfsm.EventRcvRstInWindow)
		}
		return
	}
	// Fourth: SYN (RFC 5961 §4).
	if seg.Flags&wire.SYN != 0 {
		c.fire(tcpfsm.EventRcvSyn)
		return
	}
	// Fifth: ACK.
	if seg.Flags&wire.ACK == 0 {
		c.s.stats.dropped[dropNoACK].Add(1)
		return
	}
	st := c.m.State()
	if st == tcpfsm.StateSynReceived {
		if c.sndUna.LessThan(seg.Ack) && seg.Ack.LessThanEq(c.sndNxt) {
			c.fire(tcpfsm.EventRcvAckOfSyn)
		} else {
			c.fire(tcpfsm.EventRcvBadAck)
			return
		}
	} else {
		if c.sndNxt.LessThan(seg.Ack) {
			c.fire(tcpfsm.EventRcvBadAck) // acks something not yet sent
			return
		}
		// RFC 5961 §5.2: ACKs older than SND.UNA - MAX.SND.WND are unacceptable.
		if seg.Ack.LessThan(c.sndUna.Sub(seqnum.Size(max(c.maxSndWnd, 1)))) {
			c.fire(tcpfsm.EventRcvUnacceptable)
			return
		}
		ofFin := c.finSent && c.finSeq.LessThan(seg.Ack) && c.sndUna.LessThanEq(c.finSeq)
		// Figure 5 note 2: a FIN that also acknowledges our FIN goes
		// FIN-WAIT-1 → TIME-WAIT directly; process its ACK as plain ACK and
		// let RCV_FIN's fin_acked guard decide.
		if ofFin && !(st == tcpfsm.StateFinWait1 && c.finWillBeProcessed(seg)) {
			c.fire(tcpfsm.EventRcvAckOfFin)
		} else {
			c.fire(tcpfsm.EventRcvAck)
		}
	}
	if c.closedDone {
		return
	}
	c.textAndFin(seg)
}

// finWillBeProcessed reports whether seg carries a FIN that lands exactly at
// RCV.NXT once its text is taken.
func (c *conn) finWillBeProcessed(seg *wire.Segment) bool {
	return seg.Flags&wire.FIN != 0 && seg.Seq.Add(seqnum.Size(len(seg.Payload))) == c.rcvNxt
}

// textAndFin runs the seventh (text) and eighth (FIN) steps.
func (c *conn) textAndFin(seg *wire.Segment) {
	if len(seg.Payload) > 0 {
		c.fire(tcpfsm.EventRcvData)
		if c.closedDone {
			return
		}
	}
	if seg.Flags&wire.FIN != 0 && !c.finRcvd {
		finSeq := seg.Seq.Add(seqnum.Size(len(seg.Payload)))
		if seg.Flags&wire.SYN != 0 {
			finSeq = finSeq.Add(1)
		}
		if finSeq == c.rcvNxt {
			c.fire(tcpfsm.EventRcvFin)
		} else if c.rcvNxt.LessThan(finSeq) {
			c.peerFinHeld, c.peerFinSeq = true, finSeq // out of order: wait for the gap
			if len(seg.Payload) == 0 {
				c.ackNow = true // duplicate ACK at once, as for out-of-order text (RFC 5681 §4.2)
			}
		}
	} else if seg.Flags&wire.FIN != 0 && c.finRcvd {
		c.fire(tcpfsm.EventRcvFin) // a retransmitted FIN (CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT)
	}
	if c.peerFinHeld && c.peerFinSeq == c.rcvNxt && !c.finRcvd {
		c.fire(tcpfsm.EventRcvFin)
	}
}
