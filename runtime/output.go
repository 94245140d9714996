package runtime

import (
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// header returns a segment with the connection's addresses and current
// ACK/window. (It lives on the caller's stack: a TCB keeps no copy.)
func (c *conn) header(seq seqnum.Value, flags wire.Flags) wire.Segment {
	out := wire.Segment{
		Src: c.s.addr, Dst: c.id.remote, SrcPort: c.id.localPort, DstPort: c.id.remotePort,
		Seq: seq, Flags: flags,
	}
	if flags&wire.ACK != 0 {
		out.Ack = c.rcvNxt
	}
	wnd := c.rcvBuf.window()
	shift := uint8(0)
	if c.wscaleOK && flags&wire.SYN == 0 {
		shift = c.rcvShift
	}
	w := wnd >> shift
	if w > 0xffff {
		w = 0xffff
	}
	out.Window = uint16(w)
	if flags&wire.ACK != 0 {
		right := c.rcvNxt.Add(seqnum.Size(w << shift))
		if c.rcvAdvertRight.LessThan(right) || c.rcvAdvertRight == 0 {
			c.rcvAdvertRight = right
		}
	}
	return out
}

// sendControl sends a SYN, SYN,ACK or RST. SYNs carry our MSS and window
// scale (RFC 9293 §3.7.1, RFC 7323 §2) and start RTT timing.
func (c *conn) sendControl(seq seqnum.Value, flags wire.Flags, syn bool) {
	out := c.header(seq, flags)
	if syn {
		out.Options.HasMSS, out.Options.MSS = true, uint16(c.s.mss)
		if flags&wire.ACK == 0 || c.wscaleOK { // offer, or answer an offer (RFC 7323 §2.2)
			out.Options.HasWScale, out.Options.WScale = true, windowShift(c.s.opts.ReceiveBuffer)
		}
		if c.retries == 0 {
			c.rttStart = c.s.opts.Clock.Now()
		}
		if c.s.opts.UserTimeout > 0 && !c.tUser.Armed() {
			c.s.timers.Reset(&c.tUser, c.s.opts.UserTimeout) // covers the handshake too (RFC 5482 §2)
		}
	}
	c.s.sendSeg(&out)
}

// sendAck sends an ACK now and cancels any delayed ACK.
func (c *conn) sendAck() {
	c.unackedSegs, c.ackNow = 0, false
	c.s.timers.Stop(&c.tDelack)
	out := c.header(c.sndNxt, wire.ACK)
	c.s.sendSeg(&out)
}

// inFlight is the sequence space sent but not acknowledged.
func (c *conn) inFlight() int { return int(c.sndUna.Size(c.sndNxt)) }

// output sends new data (and the FIN) as the peer's window and the
// congestion window allow (RFC 9293 §3.8.6.2.1, RFC 5681 §3.1), with Nagle
// when enabled (RFC 9293 §3.7.4).
func (c *conn) output() {
	st := c.m.State()
	if st == tcpfsm.StateSynSent || st == tcpfsm.StateSynReceived || st == tcpfsm.StateListen || st == tcpfsm.StateClosed {
		return
	}
	sentData := false
	for {
		off := c.inFlight()
		if c.finSent {
			break
		}
		unsent := c.sndBuf.n - off
		cwnd := c.cwnd
		if !c.inRecovery && c.dupAcks < 3 {
			cwnd += c.dupAcks * c.sndMSS // limited transmit (RFC 3042)
		}
		wnd := min(int(c.sndWnd), cwnd) - off
		if unsent == 0 {
			if c.finQueued && !c.finSent {
				c.sendData(c.sndNxt, 0, true)
				c.finSent, c.finSeq = true, c.sndNxt
				c.sndNxt = c.sndNxt.Add(1)
				sentData = true
			}
			break
		}
		if wnd <= 0 {
			if c.sndWnd == 0 && off == 0 && !c.tPersist.Armed() {
				c.s.timers.Reset(&c.tPersist, c.rto) // zero-window probing (RFC 9293 §3.8.6.1)
			}
			break
		}
		n := min(unsent, wnd, c.maxBurst())
		if n > c.sndMSS {
			// A segmentation-offload burst carries whole segments only; a
			// shorter tail goes through the checks below on the next turn,
			// as it would without offload.
			n -= n % c.sndMSS
		}
		if n < c.sndMSS && n < unsent {
			// Sender SWS avoidance: wait for a window worth a full segment
			// unless it is at least half the peer's largest (§3.8.6.2.1).
			if n < int(c.maxSndWnd)/2 {
				break
			}
		}
		if c.s.opts.Nagle && n < c.sndMSS && off > 0 {
			break
		}
		fin := c.finQueued && n == unsent
		c.sendData(c.sndNxt, n, fin)
		c.sndNxt = c.sndNxt.Add(seqnum.Size(n))
		if fin {
			c.finSent, c.finSeq = true, c.sndNxt
			c.sndNxt = c.sndNxt.Add(1)
		}
		sentData = true
	}
	if sentData {
		if !c.tRetransmit.Armed() {
			c.s.timers.Reset(&c.tRetransmit, c.rto)
		}
		if c.s.opts.UserTimeout > 0 && !c.tUser.Armed() {
			c.s.timers.Reset(&c.tUser, c.s.opts.UserTimeout)
		}
	}
}

// maxBurst is the most new data output sends at once: one segment, or with
// the link's segmentation offload as many whole segments as fit in its
// largest packet (data segments carry no TCP options).
func (c *conn) maxBurst() int {
	if c.s.gso == nil {
		return c.sndMSS
	}
	return max(c.sndMSS, (c.s.gsoPool.size-wire.IPv4HeaderLen-wire.TCPHeaderLen)/c.sndMSS*c.sndMSS)
}

// sendData sends n bytes from sequence number seq (which must be in the send
// buffer), with FIN if fin, piggybacking our ACK. More than one MSS goes out
// as one packet through the link's segmentation offload (see maxBurst).
func (c *conn) sendData(seq seqnum.Value, n int, fin bool) {
	flags := wire.ACK
	if n > 0 {
		flags |= wire.PSH
	}
	if fin {
		flags |= wire.FIN
	}
	out := c.header(seq, flags)
	off := int(c.sndUna.Size(seq))
	if !c.rttTiming && n > 0 && seq == c.sndNxt {
		c.rttTiming, c.rttSeq, c.rttStart = true, seq.Add(seqnum.Size(n)), c.s.opts.Clock.Now()
	}
	c.unackedSegs, c.ackNow = 0, false
	c.s.timers.Stop(&c.tDelack)
	if c.s.gather != nil {
		// The link copies the payload straight from the send ring.
		a, b := c.sndBuf.slices(off, n)
		c.s.sendGather(&out, a, b, c.sndMSS)
		return
	}
	hdr := wire.HeaderLen(&out.Options)
	pool := c.s.outPool
	if n > c.sndMSS {
		pool = c.s.gsoPool
	}
	buf := pool.get()
	got := c.sndBuf.peek((*buf)[hdr:hdr+n], off)
	out.Payload = (*buf)[hdr : hdr+got]
	c.s.send(*buf, &out, c.sndMSS)
	pool.put(buf)
}

// ProcessAck handles an acceptable ACK (RFC 9293 §3.10.7.4 fifth): advance
// SND.UNA, free acknowledged data, sample the RTT (Karn's rule, RFC 6298
// §3), grow or cut the congestion window (RFC 5681 §3, NewReno RFC 6582),
// update the send window, and send more.
func (c *conn) ProcessAck() error {
	seg := c.seg
	ack := seg.Ack
	if c.sndUna == c.iss && c.iss.LessThan(ack) { // the ACK of our SYN,ACK
		c.sndUna = c.iss.Add(1)
		c.ackedSyn()
	}
	// Window update (RFC 9293 §3.10.7.4: WL1/WL2 guard against old segments).
	wnd := uint32(seg.Window) << c.sndShift
	sameWnd := wnd == c.sndWnd // a window update is not a duplicate ACK (RFC 5681 §2)
	if c.sndWl1.LessThan(seg.Seq) || (c.sndWl1 == seg.Seq && c.sndWl2.LessThanEq(ack)) {
		if wnd > 0 && c.sndWnd == 0 {
			c.s.timers.Stop(&c.tPersist)
			c.persistBackoff = 0
		}
		c.sndWnd, c.sndWl1, c.sndWl2 = wnd, seg.Seq, ack
		c.maxSndWnd = max(c.maxSndWnd, wnd)
	}
	if c.sndUna.LessThan(ack) && ack.LessThanEq(c.sndNxt) {
		acked := int(c.sndUna.Size(ack))
		dataAcked := acked
		if c.finSent && c.finSeq.LessThan(ack) {
			dataAcked-- // the FIN is not in the buffer
		}
		c.sndBuf.discard(dataAcked)
		c.sndUna = ack
		c.retries = 0
		if c.rttTiming && c.rttSeq.LessThanEq(ack) {
			c.rttTiming = false
			c.rttSample(c.s.opts.Clock.Now() - c.rttStart)
		}
		c.congestionOnAck(acked, ack)
		if c.sndUna == c.sndNxt {
			c.s.timers.Stop(&c.tRetransmit)
			c.s.timers.Stop(&c.tUser)
		} else {
			c.s.timers.Reset(&c.tRetransmit, c.rto) // RFC 6298 §5.3
			if c.s.opts.UserTimeout > 0 {
				c.s.timers.Reset(&c.tUser, c.s.opts.UserTimeout)
			}
		}
		wake(c.writeWake)
	} else if ack == c.sndUna && sameWnd && len(seg.Payload) == 0 && seg.Flags&(wire.SYN|wire.FIN) == 0 && c.sndUna != c.sndNxt {
		c.duplicateAck()
	}
	c.output()
	return nil
}

// congestionOnAck grows cwnd (slow start / congestion avoidance, RFC 5681
// §3.1) or handles a partial/full ACK during NewReno recovery (RFC 6582 §3.2).
func (c *conn) congestionOnAck(acked int, ack seqnum.Value) {
	if c.inRecovery {
		if c.recover.LessThan(ack) || c.recover == ack { // full ACK
			c.inRecovery = false
			c.cwnd = min(c.ssthresh, max(c.inFlight(), c.sndMSS)+c.sndMSS) // RFC 6582 §3.2 step 3 (1): at least 2 SMSS, so the ACK is not delayed
		} else { // partial ACK: retransmit the next hole, deflate
			c.retransmitFront()
			c.cwnd = max(c.cwnd-acked+c.sndMSS, c.sndMSS)
		}
		c.dupAcks = 0
		return
	}
	c.dupAcks = 0
	if c.cwnd < c.ssthresh {
		c.cwnd += min(acked, c.sndMSS)
	} else {
		c.cwnd += max(1, c.sndMSS*c.sndMSS/c.cwnd)
	}
	c.cwnd = min(c.cwnd, 1<<30)
}

// duplicateAck counts duplicates; the third triggers fast retransmit and
// NewReno fast recovery (RFC 5681 §3.2, RFC 6582 §3.2).
func (c *conn) duplicateAck() {
	c.dupAcks++
	switch {
	case c.inRecovery:
		c.cwnd += c.sndMSS // inflate
		if c.rexmitAllow--; c.rexmitAllow < 0 {
			// More duplicate ACKs than the segments in flight at the
			// retransmission could cause: segments sent after it arrived
			// and it did not. Resend it now rather than after an RTO.
			c.retransmitFront()
		}
	case c.dupAcks == 3 && c.recover.LessThan(c.sndUna.Add(1)):
		c.ssthresh = max(c.inFlight()/2, 2*c.sndMSS)
		c.recover = c.sndNxt
		c.inRecovery = true
		c.retransmitFront()
		c.cwnd = c.ssthresh + 3*c.sndMSS
	}
}

// retransmitFront resends the segment at SND.UNA.
func (c *conn) retransmitFront() {
	c.s.stats.retransmits.Add(1)
	c.rttTiming = false // Karn's rule (RFC 6298 §3)
	// Duplicate ACKs the segments now in flight may still cause, plus
	// dupthresh for reordering; see duplicateAck.
	c.rexmitAllow = c.inFlight()/c.sndMSS + 3
	st := c.m.State()
	switch {
	case st == tcpfsm.StateSynSent:
		c.sendControl(c.iss, wire.SYN, true)
		return
	case st == tcpfsm.StateSynReceived:
		c.sendControl(c.iss, wire.SYN|wire.ACK, true)
		return
	}
	data := c.sndBuf.n
	if c.finSent && c.finSeq == c.sndUna {
		c.sendData(c.sndUna, 0, true)
		return
	}
	n := min(data, c.sndMSS, c.inFlight()) // never beyond SND.NXT
	if n == 0 {
		return
	}
	fin := c.finSent && c.sndUna.Add(seqnum.Size(n)) == c.finSeq
	c.sendData(c.sndUna, n, fin)
}

// Retransmit handles a retransmission timeout (RFC 9293 §3.10.8, RFC 6298
// §5.4-5.6): resend the front, back off the timer (the spec restarts it),
// and collapse the congestion window (RFC 5681 §3.1).
func (c *conn) Retransmit() error {
	c.retries++
	c.rto = min(2*c.rto, c.s.opts.MaxRTO)
	if c.m.State() != tcpfsm.StateSynSent && c.m.State() != tcpfsm.StateSynReceived {
		c.ssthresh = max(c.inFlight()/2, 2*c.sndMSS)
		c.cwnd = c.sndMSS
		// The rest of the window is presumed lost too: recover it as
		// NewReno does, each partial ACK resending the next hole at once,
		// rather than waiting out another (doubled) RTO per hole.
		c.inRecovery = true
		c.recover = c.sndNxt
		c.dupAcks = 0
	}
	c.retransmitFront()
	return nil
}

// rttSample updates SRTT, RTTVAR and RTO (RFC 6298 §2).
func (c *conn) rttSample(r time.Duration) {
	if r <= 0 {
		r = time.Microsecond
	}
	if c.srtt == 0 {
		c.srtt, c.rttvar = r, r/2
	} else {
		d := c.srtt - r
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srtt = (7*c.srtt + r) / 8
	}
	c.rto = min(max(c.srtt+max(time.Millisecond, 4*c.rttvar), c.s.opts.MinRTO), c.s.opts.MaxRTO)
}

// AcceptData takes segment text (RFC 9293 §3.10.7.4 seventh): in-order
// bytes advance RCV.NXT, later ones are held; ACK every second full segment
// at once, otherwise within the delayed-ACK time, and at once for
// out-of-order data (RFC 5681 §4.2).
func (c *conn) AcceptData() error {
	seg := c.seg
	p := seg.Payload
	seq := seg.Seq
	if seg.Flags&wire.SYN != 0 {
		seq = seq.Add(1)
	}
	// Trim to [RCV.NXT, RCV.NXT+window).
	if seq.LessThan(c.rcvNxt) {
		skip := int(seq.Size(c.rcvNxt))
		if skip >= len(p) {
			c.sendAck()
			return nil
		}
		p, seq = p[skip:], c.rcvNxt
	}
	off := int(c.rcvNxt.Size(seq))
	room := c.rcvWnd() - off
	if room <= 0 {
		c.sendAck()
		return nil
	}
	if len(p) > room {
		p = p[:room]
	}
	n := c.rcvBuf.place(p, off, c.rcvNxt)
	if n == 0 {
		c.sendAck() // out of order: duplicate ACK at once (RFC 5681 §4.2)
		return nil
	}
	c.rcvNxt = c.rcvNxt.Add(seqnum.Size(n))
	wake(c.readWake)
	c.unackedSegs++
	switch {
	case off > 0 || len(c.rcvBuf.ranges) > 0 || n > len(p):
		c.ackNow = true // filled (part of) a hole: ACK at once (RFC 5681 §4.2)
	case c.unackedSegs >= 2:
		// Every second full-sized segment (RFC 9293 §3.8.6.3); on a link
		// that delivers in batches, once at the end of the batch (see
		// Stack.flushAcks).
		if c.s.batched {
			c.deferAck()
		} else {
			c.ackNow = true
		}
	case !c.tDelack.Armed():
		c.s.timers.Reset(&c.tDelack, c.s.opts.DelayedACK)
	}
	return nil
}

// deferAck queues the connection for an ACK at the end of the link's
// current receive batch (its lock is held, as in all of input).
func (c *conn) deferAck() {
	if !c.ackQueued {
		c.ackQueued = true
		c.s.ackQueue = append(c.s.ackQueue, c)
	}
	if !c.tDelack.Armed() { // in case a batch never ends (a packet injected outside one)
		c.s.timers.Reset(&c.tDelack, c.s.opts.DelayedACK)
	}
}

func (c *conn) delackFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tDelack.Expired() && !c.closedDone {
		c.sendAck()
	}
}

// persistFired sends a zero-window probe: one byte beyond the window
// (RFC 9293 §3.8.6.1), with exponential backoff.
func (c *conn) persistFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tPersist.Expired() || c.closedDone || c.sndWnd > 0 {
		return
	}
	if c.sndBuf.n > c.inFlight() {
		c.sendData(c.sndNxt, 1, false)
		c.sndNxt = c.sndNxt.Add(1)
		if !c.tRetransmit.Armed() {
			c.s.timers.Reset(&c.tRetransmit, c.rto)
		}
		return
	}
	c.persistBackoff++
	c.s.timers.Reset(&c.tPersist, min(c.rto<<min(c.persistBackoff, 10), c.s.opts.MaxRTO))
}
