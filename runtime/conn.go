package runtime

import (
	"errors"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/timer"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// conn is a TCB (RFC 9293 §3.3.1) plus the generated machine that drives it.
// Its methods named after spec actions and guards implement tcpfsm.Handler;
// they run with mu held, from input, the timer callbacks or the user API.
type conn struct {
	s  *Stack
	id fourTuple
	mu sync.Mutex
	m  tcpfsm.Machine

	passive  bool      // reached SYN-RECEIVED from LISTEN (Figure 5 note 1)
	listener *listener // owner while not yet accepted
	seg      *wire.Segment

	// Send sequence space (RFC 9293 §3.3.1).
	iss, sndUna, sndNxt seqnum.Value
	sndWnd              uint32 // peer's window, scaled
	maxSndWnd           uint32 // largest window seen (RFC 5961 §5.2 MAX.SND.WND)
	sndWl1, sndWl2      seqnum.Value
	sndShift            uint8 // peer's window scale
	sndMSS              int   // peer's MSS
	finQueued, finSent  bool
	finSeq              seqnum.Value
	sndBuf              sendBuffer
	writeSrc            []byte // user bytes the current SEND event queues

	// Receive sequence space.
	irs, rcvNxt    seqnum.Value
	rcvShift       uint8 // our window scale, used once the peer also scales
	wscaleOK       bool
	rcvBuf         recvBuffer
	rcvAdvertRight seqnum.Value // right edge last advertised (never shrink it)
	finRcvd        bool
	peerFinSeq     seqnum.Value
	peerFinHeld    bool // FIN arrived out of order; process when the gap fills
	unackedSegs    int  // full segments received since our last ACK
	ackNow         bool
	ackQueued      bool // in Stack.ackQueue: ACK at the end of the receive batch

	releasePort func() // gives back a dialed connection's port reservation (under Stack.mu)

	// Retransmission (RFC 6298) and congestion control (RFC 5681, 6582).
	srtt, rttvar, rto time.Duration
	rttSeq            seqnum.Value
	rttStart          time.Duration
	rttTiming         bool
	retries           int
	cwnd, ssthresh    int
	dupAcks           int
	rexmitAllow       int // duplicate ACKs the segments in flight may still cause after a retransmission
	inRecovery        bool
	recover           seqnum.Value

	tRetransmit, tUser, tTimeWait, tFinWait2, tDelack, tPersist timer.Timer
	orphaned                                                    bool // the user called Close: nobody reads any more
	persistBackoff                                              int

	err         error // terminal error for the user API
	established bool
	closedDone  bool          // reached CLOSED
	readWake    chan struct{} // made by the first blocked Read (see waitChan)
	writeWake   chan struct{} // made by the first blocked Write
	stateWake   chan struct{} // set only while DialContext waits
}

func newConn(s *Stack, id fourTuple) *conn {
	c := &conn{s: s, id: id, rto: s.opts.InitialRTO, sndMSS: 536}
	c.m.Init(c)
	if s.opts.Trace != nil || s.opts.Observer != nil || coverageOn.Load() {
		c.m.SetObserver(c.observe)
	}
	t := s.timers
	t.Init(&c.tRetransmit, func() { c.timerFired(&c.tRetransmit, tcpfsm.EventRtoTimeout) })
	t.Init(&c.tUser, func() { c.timerFired(&c.tUser, tcpfsm.EventUserTimeout) })
	t.Init(&c.tTimeWait, func() { c.timerFired(&c.tTimeWait, tcpfsm.EventTimeWaitTimeout) })
	t.Init(&c.tFinWait2, func() { c.timerFired(&c.tFinWait2, tcpfsm.EventFinWait2Timeout) })
	t.Init(&c.tDelack, c.delackFired)
	t.Init(&c.tPersist, c.persistFired)
	return c
}

func (c *conn) trace(from tcpfsm.State, e tcpfsm.Event, to tcpfsm.State, _ tcpfsm.TransitionID) {
	c.s.opts.Trace.Debug("tcp transition",
		"local", netip.AddrPortFrom(netip.AddrFrom4(c.s.addr), c.id.localPort),
		"remote", netip.AddrPortFrom(netip.AddrFrom4(c.id.remote), c.id.remotePort),
		"from", from.String(), "event", e.String(), "to", to.String())
}

// fire delivers e to the machine. Rejections are the caller's to report.
func (c *conn) fire(e tcpfsm.Event) error { return c.m.Fire(e) }

// timerFired turns a spec timer's expiry into its event, unless the timer
// was re-armed or stopped after it fired (the callback ran outside our lock).
func (c *conn) timerFired(t *timer.Timer, e tcpfsm.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.Expired() {
		return
	}
	c.fire(e)
}

// waitChan returns *ch, making it first if nil; c.mu must be held. A
// connection nobody has waited on holds no channels (IdleConns went from
// 2652 to 2204 heap bytes per connection, both ends), and a nil channel
// needs no wake: nobody waits on it.
func waitChan(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{}, 1)
	}
	return *ch
}

// wake signals ch without blocking; a nil ch (nobody ever waited) is a no-op.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *conn) wakeAll() {
	wake(c.readWake)
	wake(c.writeWake)
	wake(c.stateWake)
}

// fail records the connection's terminal error for the user API.
func (c *conn) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	c.wakeAll()
}

// ---- tcpfsm.Handler: guards ----------------------------------------------

// Passive reports whether the connection came from a passive OPEN.
func (c *conn) Passive() bool { return c.passive }

// FinAcked reports whether our FIN has been acknowledged.
func (c *conn) FinAcked() bool { return c.finSent && c.sndUna == c.sndNxt }

// RetriesExhausted reports whether the retransmission budget is spent
// (RFC 1122 §4.2.3.5: R2).
func (c *conn) RetriesExhausted() bool {
	limit := c.s.opts.DataRetries
	if st := c.m.State(); st == tcpfsm.StateSynSent || st == tcpfsm.StateSynReceived {
		limit = c.s.opts.SynRetries
	}
	return c.retries >= limit
}

// ---- tcpfsm.Handler: durations and timers ---------------------------------

// Rto is the current retransmission timeout (RFC 6298).
func (c *conn) Rto() time.Duration { return c.rto }

// UserTimeout is the configured user timeout.
func (c *conn) UserTimeout() time.Duration { return c.s.opts.UserTimeout }

// TwoMsl is 2*MSL, the TIME-WAIT duration.
func (c *conn) TwoMsl() time.Duration { return 2 * c.s.opts.MSL }

// FinTimeout is how long an orphaned connection may stay in FIN-WAIT-2.
func (c *conn) FinTimeout() time.Duration { return c.s.opts.FinTimeout }

// ArmFinTimeout bounds FIN-WAIT-2 once the user has closed the connection;
// a half-closed one (CloseWrite) may wait for the peer as long as it likes.
func (c *conn) ArmFinTimeout() error {
	if c.orphaned {
		c.StartTimer(tcpfsm.TimerFinWait2, c.FinTimeout())
	}
	return nil
}

func (c *conn) timer(t tcpfsm.Timer) *timer.Timer {
	switch t {
	case tcpfsm.TimerRetransmit:
		return &c.tRetransmit
	case tcpfsm.TimerUserTimeout:
		return &c.tUser
	case tcpfsm.TimerFinWait2:
		return &c.tFinWait2
	}
	return &c.tTimeWait
}

// StartTimer arms a spec timer.
func (c *conn) StartTimer(t tcpfsm.Timer, d time.Duration) {
	if t == tcpfsm.TimerUserTimeout && d <= 0 {
		return // user timeout disabled
	}
	c.s.timers.Reset(c.timer(t), d)
}

// StopTimer disarms a spec timer.
func (c *conn) StopTimer(t tcpfsm.Timer) { c.s.timers.Stop(c.timer(t)) }

// ---- tcpfsm.Handler: actions ------------------------------------------------

// CreateTcb prepares the buffers (RFC 9293 §3.10.1).
func (c *conn) CreateTcb() error {
	c.sndBuf.init(c.s.sndPool)
	c.rcvBuf.init(c.s.rcvPool)
	return nil
}

// DeleteTcb releases the connection: on entering CLOSED the demux entry goes
// and every waiter wakes (RFC 9293 §3.10.7.4: "delete the TCB").
func (c *conn) DeleteTcb() error {
	if c == c.s.closedTCB {
		return nil
	}
	c.closedDone = true
	c.s.timers.Stop(&c.tDelack)
	c.s.timers.Stop(&c.tPersist)
	c.s.unregister(c)
	if c.listener != nil {
		c.listener.forget(c)
	}
	if c.err == nil && !c.finRcvd {
		c.err = errClosed
	}
	c.wakeAll()
	return nil
}

// SignalEstablished wakes the dialer or queues the connection for Accept.
func (c *conn) SignalEstablished() error {
	c.established = true
	c.retries = 0
	if c.listener != nil {
		c.listener.established(c)
	}
	c.output() // data queued before the handshake completed
	c.wakeAll()
	return nil
}

// SndSyn selects an ISS and sends <SEQ=ISS><CTL=SYN> (RFC 9293 §3.10.1).
func (c *conn) SndSyn() error {
	c.iss = c.s.isn(c.id)
	c.sndUna, c.sndNxt, c.recover = c.iss, c.iss.Add(1), c.iss // recover = ISS (RFC 6582 §3.2 step 1)
	c.sendControl(c.iss, wire.SYN, true)
	return nil
}

// QueueData copies the pending user bytes into the send buffer and sends
// what the windows allow (RFC 9293 §3.10.2).
func (c *conn) QueueData() error {
	n := c.sndBuf.write(c.writeSrc)
	c.writeSrc = c.writeSrc[n:]
	if c.m.State() == tcpfsm.StateEstablished || c.m.State() == tcpfsm.StateCloseWait {
		c.output()
	}
	return nil
}

// UpdateWindow sends a window update once the reader has freed enough space
// (receiver-side SWS avoidance, RFC 9293 §3.8.6.2.2). (Holding updates back
// while the peer still has ample window, as Linux's tcp_cleanup_rbuf does,
// measured no faster over the raw link and halved lossy bulk throughput.)
func (c *conn) UpdateWindow() error {
	right := c.rcvNxt.Add(seqnum.Size(c.rcvBuf.window()))
	grown := int(c.rcvAdvertRight.Size(right))
	if c.rcvAdvertRight.LessThan(right) && (grown >= 2*c.s.mss || grown >= c.s.opts.ReceiveBuffer/2) {
		c.sendAck()
	}
	return nil
}

// SignalClosing fails pending calls with "connection closing".
func (c *conn) SignalClosing() error { c.fail(errClosed); return nil }

// QueueFin queues a FIN after the buffered data (RFC 9293 §3.10.4).
func (c *conn) QueueFin() error {
	c.finQueued = true
	c.output()
	return nil
}

// SignalReset fails pending calls with "connection reset".
func (c *conn) SignalReset() error { c.fail(syscall.ECONNRESET); return nil }

// SndRst sends <SEQ=SND.NXT><CTL=RST> (RFC 9293 §3.10.5).
func (c *conn) SndRst() error {
	c.sendControl(c.sndNxt, wire.RST, false)
	return nil
}

// SndResetReply answers the current segment with a reset (RFC 9293
// §3.10.7.1): <SEQ=SEG.ACK><CTL=RST> if it carries an ACK, else
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (c *conn) SndResetReply() error {
	seg := c.seg
	out := wire.Segment{Src: c.s.addr, Dst: seg.Src, SrcPort: seg.DstPort, DstPort: seg.SrcPort}
	if seg.Flags&wire.ACK != 0 {
		out.Seq, out.Flags = seg.Ack, wire.RST
	} else {
		out.Ack, out.Flags = seg.End(), wire.RST|wire.ACK
	}
	c.s.sendSeg(&out)
	return nil
}

// InitFromSyn records the peer's SYN: IRS, RCV.NXT, its MSS and window
// scale (RFC 9293 §3.10.7.2 third, §3.10.7.3 fourth; RFC 7323 §2.2).
func (c *conn) InitFromSyn() error {
	seg := c.seg
	c.irs = seg.Seq
	c.rcvNxt = seg.Seq.Add(1)
	if seg.Options.HasMSS && seg.Options.MSS > 0 {
		c.sndMSS = min(int(seg.Options.MSS), c.s.mss)
	} else {
		c.sndMSS = min(536, c.s.mss) // RFC 9293 §3.7.1 default
	}
	if seg.Options.HasWScale {
		c.wscaleOK = true
		c.sndShift = seg.Options.WScale
		c.rcvShift = windowShift(c.s.opts.ReceiveBuffer)
	}
	c.sndWnd = uint32(seg.Window) // never scaled in a SYN (RFC 7323 §2.2)
	c.maxSndWnd = c.sndWnd
	c.sndWl1 = seg.Seq
	c.cwnd = initialWindow(c.sndMSS)
	c.ssthresh = 1 << 30
	if seg.Flags&wire.ACK != 0 { // SYN,ACK in SYN-SENT: our SYN is acknowledged
		c.sndUna = seg.Ack
		c.sndWl2 = seg.Ack
		c.ackedSyn()
	}
	return nil
}

// ackedSyn takes an RTT sample for the SYN and stops its timer.
func (c *conn) ackedSyn() {
	if c.retries == 0 {
		c.rttSample(c.s.opts.Clock.Now() - c.rttStart)
	} else if c.s.opts.InitialRTO < 3*time.Second {
		c.rto = min(3*time.Second, c.s.opts.MaxRTO) // the SYN timed out: RFC 6298 §5.7
	}
	c.retries = 0
	c.rttTiming = false
	c.s.timers.Stop(&c.tRetransmit)
	c.s.timers.Stop(&c.tUser) // re-armed when data is sent
}

// SndSynAck sends <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>, choosing the ISS
// first when coming from LISTEN (RFC 9293 §3.10.7.2, §3.10.7.3).
func (c *conn) SndSynAck() error {
	if c.m.State() == tcpfsm.StateListen {
		c.iss = c.s.isn(c.id)
		c.sndUna, c.sndNxt, c.recover = c.iss, c.iss.Add(1), c.iss // recover = ISS (RFC 6582 §3.2 step 1)
	}
	c.sendControl(c.iss, wire.SYN|wire.ACK, true)
	return nil
}

// SndAck sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> now.
func (c *conn) SndAck() error { c.sendAck(); return nil }

// SignalRefused fails the dial with "connection refused".
func (c *conn) SignalRefused() error { c.fail(syscall.ECONNREFUSED); return nil }

// ReturnToListen drops an embryonic connection whose handshake was reset:
// the listener it came from keeps listening (RFC 9293 Figure 5 note 1).
func (c *conn) ReturnToListen() error {
	c.s.timers.Stop(&c.tRetransmit)
	c.closedDone = true
	c.s.unregister(c)
	if c.listener != nil {
		c.listener.forget(c)
	}
	return nil
}

// SndChallengeAck sends a rate-limited challenge ACK (RFC 5961 §3.2, §4.2).
func (c *conn) SndChallengeAck() error {
	if c.s.allowChallengeACK() {
		c.s.stats.challenges.Add(1)
		c.sendAck()
	}
	return nil
}

// SignalClosed is the end of a passive close: nothing is waiting.
func (c *conn) SignalClosed() error { return nil }

// SignalTimeout fails pending calls with a timeout (RFC 9293 §3.8.3).
func (c *conn) SignalTimeout() error { c.fail(syscall.ETIMEDOUT); return nil }

// AcceptFin advances RCV.NXT over the FIN, acknowledges it at once and
// signals end of stream (RFC 9293 §3.10.7.4 eighth).
func (c *conn) AcceptFin() error {
	c.finRcvd = true
	c.peerFinHeld = false
	c.rcvNxt = c.rcvNxt.Add(1)
	c.sendAck()
	wake(c.readWake)
	return nil
}

var errClosed = errors.New("use of closed network connection")

// windowShift is the window scale that lets a buffer of size bytes be
// advertised (RFC 7323 §2.3).
func windowShift(size int) uint8 {
	var s uint8
	for size>>s > 0xffff && s < wire.MaxWScale {
		s++
	}
	return s
}

// initialWindow is IW per RFC 6928 (min(10*MSS, max(2*MSS, 14600))).
func initialWindow(mss int) int { return min(10*mss, max(2*mss, 14600)) }
