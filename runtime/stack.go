// Package runtime is a user-space TCP stack driven by the FSM that fsmgen
// generates from spec/tcp793.yaml (package generated/tcpfsm). The generated
// machine decides every state change and control action; this package does
// the data path: the segment codec, sequence space, buffers, retransmission,
// congestion control and timers. Links (in-memory, raw IPv4, TUN) move the
// packets.
//
// Programs use it like package net:
//
//	st, _ := runtime.NewStack(lnk, runtime.Options{Addr: netip.MustParseAddr("10.0.0.1")})
//	ln, _ := st.Listen("tcp", ":80")
//	c, _ := st.DialContext(ctx, "tcp", "10.0.0.2:80")
package runtime

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/link"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/timer"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// Options configure a Stack. Zero values select the defaults in brackets.
type Options struct {
	// Addr is the stack's IPv4 address (required).
	Addr netip.Addr
	// Clock drives every timer [real time]; a clock.Virtual runs the stack
	// on simulated time.
	Clock clock.Clock
	// MSL is the maximum segment lifetime; TIME-WAIT lasts 2*MSL [30s].
	MSL time.Duration
	// InitialRTO, MinRTO and MaxRTO bound the retransmission timeout
	// (RFC 6298 §2.1, §2.4) [1s, 200ms, 60s].
	InitialRTO, MinRTO, MaxRTO time.Duration
	// SynRetries and DataRetries bound retransmissions of a SYN and of data
	// before the connection is aborted (RFC 1122 §4.2.3.5 R2) [6, 15].
	SynRetries, DataRetries int
	// UserTimeout aborts a connection whose data stays unacknowledged this
	// long (RFC 9293 §3.8.3, RFC 5482) [off].
	UserTimeout time.Duration
	// FinTimeout bounds FIN-WAIT-2 for a connection the user has closed
	// with Close (not merely CloseWrite), like Linux's tcp_fin_timeout [60s].
	FinTimeout time.Duration
	// DelayedACK is the longest an ACK is delayed (RFC 1122 §4.2.3.2; at
	// least every second full segment is acknowledged at once) [40ms].
	DelayedACK time.Duration
	// Nagle enables the Nagle algorithm (RFC 9293 §3.7.4). Off by default,
	// matching Go's net package (TCP_NODELAY) [false].
	Nagle bool
	// SendBuffer and ReceiveBuffer are the per-connection buffer sizes
	// [256 KiB each]; the receive buffer bounds the advertised window.
	SendBuffer, ReceiveBuffer int
	// SynBacklog bounds half-open (SYN-RECEIVED) connections per listener,
	// AcceptBacklog established connections waiting for Accept [128, 128].
	SynBacklog, AcceptBacklog int
	// ChallengeACKLimit bounds RFC 5961 challenge ACKs per second per stack
	// (RFC 5961 §7) [1000].
	ChallengeACKLimit int
	// Trace, when set, logs every state transition (4-tuple, from, event, to)
	// at debug level.
	Trace *slog.Logger
	// Entropy seeds the ISN key (RFC 6528) and the ephemeral port start
	// [crypto/rand]; simulations pass a seeded source to be reproducible.
	Entropy io.Reader
	// Observer, when set, is told of every transition of every connection
	// (e.g. to measure transition coverage). It runs with the connection's
	// lock held and must not call back into the stack.
	Observer tcpfsm.Observer
}

func (o *Options) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Clock == nil {
		o.Clock = clock.NewReal()
	}
	if o.Entropy == nil {
		o.Entropy = rand.Reader
	}
	def(&o.MSL, 30*time.Second)
	def(&o.InitialRTO, time.Second)
	def(&o.MinRTO, 200*time.Millisecond)
	def(&o.MaxRTO, 60*time.Second)
	def(&o.DelayedACK, 40*time.Millisecond)
	def(&o.FinTimeout, 60*time.Second)
	defInt(&o.SynRetries, 6)
	defInt(&o.DataRetries, 15)
	defInt(&o.SendBuffer, 256<<10)
	defInt(&o.ReceiveBuffer, 256<<10)
	defInt(&o.SynBacklog, 128)
	defInt(&o.AcceptBacklog, 128)
	defInt(&o.ChallengeACKLimit, 1000)
}

// Stats counts a stack's traffic. Read it with Stack.Stats.
type Stats struct {
	SegmentsIn, SegmentsOut uint64
	Retransmits             uint64
	ChallengeACKs           uint64
	ResetsSent              uint64
	// ArmedTimers is how many timers are armed (0 once every connection
	// has closed: no timer leaks).
	ArmedTimers int
	// Conns is how many connections are in the demux table.
	Conns int
	// Malformed counts packets the codec rejected, by wire.DropReason.
	Malformed [wire.NumDropReasons]uint64
	// Dropped counts well-formed segments dropped, by reason.
	Dropped map[string]uint64
}

// Drop reasons for well-formed segments.
const (
	dropNotForUs = iota
	dropSynBacklog
	dropAcceptQueue
	dropUnacceptableRST
	dropNoACK
	dropOther
	numDrops
)

var dropNames = [numDrops]string{"not-for-us", "syn-backlog-full", "accept-queue-full", "rst-outside-window", "no-ack", "other"}

// fourTuple identifies a connection.
type fourTuple struct {
	localPort, remotePort uint16
	remote                [4]byte
}

// Stack is a TCP stack bound to one link and one IPv4 address.
type Stack struct {
	opts   Options
	link   link.Link
	addr   [4]byte
	timers *timer.Service
	mss    int // MSS we announce: link MTU minus headers

	mu        sync.RWMutex
	conns     map[fourTuple]*conn
	listeners map[uint16]*listener
	nextPort  uint16
	closed    bool

	// closedTCB answers segments that match no connection (RFC 9293
	// §3.10.7.1) through a machine held in CLOSED.
	closedMu  sync.Mutex
	closedTCB *conn

	isnKey [16]byte

	challengeMu     sync.Mutex
	challengeWindow time.Duration
	challengeCount  int

	stats struct {
		in, out, retransmits, challenges, resets atomic.Uint64
		malformed                                [wire.NumDropReasons]atomic.Uint64
		dropped                                  [numDrops]atomic.Uint64
	}

	rxSeg wire.Segment // the receive path's reusable segment (link calls are serialized)

	// batched is set when the link reports the end of each receive batch
	// (link.BatchReceiver). Connections owing an every-second-segment ACK
	// then wait in ackQueue, owned by the receive path, until flushAcks at
	// the batch end: one ACK per connection per batch, as Linux sends one
	// per GRO packet, instead of one per two segments.
	batched  bool
	ackQueue []*conn

	// Connection buffers, taken while they hold bytes (see bufPool), and
	// link-MTU scratch buffers for encoding outgoing segments.
	sndPool, rcvPool, outPool *bufPool

	// gso is the link's segmentation offload, nil if it has none; gsoPool
	// holds gso.GSOMaxSize() scratch buffers for segments longer than one
	// MSS (see conn.output).
	gso     link.Segmenter
	gsoPool *bufPool

	// gather is the link's gathering send (link.Gatherer), nil if it has
	// none; then data segments leave from the send buffer without being
	// copied behind their headers first (see sendGather).
	gather     link.Gatherer
	gatherBufs sync.Pool // of *gatherBuf

	// ports reserves the ports the stack uses in the host's TCP when the
	// link shares its address with the host (link.PortReserver); nil
	// otherwise.
	ports link.PortReserver
}

// NewStack returns a stack sending and receiving through l as opts.Addr.
func NewStack(l link.Link, opts Options) (*Stack, error) {
	if !opts.Addr.Is4() {
		return nil, errors.New("runtime: Options.Addr must be an IPv4 address")
	}
	opts.setDefaults()
	s := &Stack{
		opts:      opts,
		link:      l,
		addr:      opts.Addr.As4(),
		timers:    timer.NewService(opts.Clock),
		sndPool:   newBufPool(opts.SendBuffer),
		rcvPool:   newBufPool(opts.ReceiveBuffer),
		outPool:   newBufPool(l.MTU()),
		mss:       l.MTU() - 40,
		conns:     make(map[fourTuple]*conn),
		listeners: make(map[uint16]*listener),
	}
	var p [2]byte
	if _, err := io.ReadFull(opts.Entropy, s.isnKey[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(opts.Entropy, p[:]); err != nil {
		return nil, err
	}
	s.nextPort = 32768 + binary.BigEndian.Uint16(p[:])%28232
	if g, ok := l.(link.Segmenter); ok && g.GSOMaxSize() > l.MTU() {
		s.gso, s.gsoPool = g, newBufPool(g.GSOMaxSize())
	}
	if g, ok := l.(link.Gatherer); ok {
		s.gather = g
		s.gatherBufs.New = func() any { return new(gatherBuf) }
	}
	s.closedTCB = newConn(s, fourTuple{})
	if r, ok := l.(link.PortReserver); ok {
		s.ports = r
	}
	if b, ok := l.(link.BatchReceiver); ok {
		s.batched = true
		b.SetBatchEnd(s.flushAcks)
	}
	l.SetReceiver(s.receive)
	return s, nil
}

// Addr returns the stack's IPv4 address.
func (s *Stack) Addr() netip.Addr { return netip.AddrFrom4(s.addr) }

// Stats returns a snapshot of the stack's counters.
func (s *Stack) Stats() Stats {
	st := Stats{
		SegmentsIn:    s.stats.in.Load(),
		SegmentsOut:   s.stats.out.Load(),
		Retransmits:   s.stats.retransmits.Load(),
		ChallengeACKs: s.stats.challenges.Load(),
		ResetsSent:    s.stats.resets.Load(),
		Dropped:       make(map[string]uint64),
	}
	st.ArmedTimers = s.timers.Stats().Armed
	s.mu.RLock()
	st.Conns = len(s.conns)
	s.mu.RUnlock()
	for i := range st.Malformed {
		st.Malformed[i] = s.stats.malformed[i].Load()
	}
	for i, n := range dropNames {
		if v := s.stats.dropped[i].Load(); v > 0 {
			st.Dropped[n] = v
		}
	}
	return st
}

// MalformedTotal is the number of packets the codec rejected.
func (st Stats) MalformedTotal() uint64 {
	var n uint64
	for _, v := range st.Malformed {
		n += v
	}
	return n
}

// Close aborts every connection and listener and stops the stack's timers.
// It does not close the link.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	lns := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		lns = append(lns, l)
	}
	s.mu.Unlock()
	for _, l := range lns {
		l.abort()
	}
	for _, c := range conns {
		c.mu.Lock()
		c.fire(tcpfsm.EventAbort)
		c.mu.Unlock()
	}
	s.timers.Close()
	return nil
}

// receive is the link's receiver: parse, count, demultiplex, process.
func (s *Stack) receive(pkt []byte) {
	seg := &s.rxSeg
	if err := wire.Parse(pkt, seg); err != nil {
		s.stats.malformed[wire.ReasonOf(err)].Add(1)
		return
	}
	if seg.Dst != s.addr {
		s.stats.dropped[dropNotForUs].Add(1)
		return
	}
	s.stats.in.Add(1)
	key := fourTuple{localPort: seg.DstPort, remotePort: seg.SrcPort, remote: seg.Src}
	s.mu.RLock()
	c := s.conns[key]
	var l *listener
	if c == nil {
		l = s.listeners[seg.DstPort]
	}
	s.mu.RUnlock()
	switch {
	case c != nil:
		c.mu.Lock()
		c.input(seg)
		c.mu.Unlock()
	case l != nil:
		l.input(seg)
	default:
		s.closedInput(seg)
	}
}

// flushAcks sends the ACKs deferred during a receive batch (see batched).
// A connection that has since sent a segment (which carried the ACK) or
// closed owes nothing.
func (s *Stack) flushAcks() {
	for i, c := range s.ackQueue {
		c.mu.Lock()
		if c.ackQueued {
			c.ackQueued = false
			if c.unackedSegs > 0 && !c.closedDone {
				c.sendAck()
			}
		}
		c.mu.Unlock()
		s.ackQueue[i] = nil
	}
	s.ackQueue = s.ackQueue[:0]
}

// closedInput handles a segment for which no TCB exists (RFC 9293 §3.10.7.1)
// by firing its class on a machine held in CLOSED.
func (s *Stack) closedInput(seg *wire.Segment) {
	var ev tcpfsm.Event
	switch {
	case seg.Flags&wire.RST != 0:
		ev = tcpfsm.EventRcvRst
	case seg.Flags&(wire.SYN|wire.ACK) == wire.SYN|wire.ACK:
		ev = tcpfsm.EventRcvSynAck
	case seg.Flags&wire.SYN != 0:
		ev = tcpfsm.EventRcvSyn
	default:
		ev = tcpfsm.EventRcvAck
	}
	s.closedMu.Lock()
	c := s.closedTCB
	c.mu.Lock()
	c.m.Restore(tcpfsm.StateClosed)
	c.seg = seg
	c.id = fourTuple{localPort: seg.DstPort, remotePort: seg.SrcPort, remote: seg.Src}
	c.fire(ev)
	c.seg = nil
	c.mu.Unlock()
	s.closedMu.Unlock()
}

// isn returns an initial sequence number per RFC 6528: a 4-microsecond clock
// plus a keyed hash of the connection's 4-tuple.
func (s *Stack) isn(id fourTuple) seqnum.Value {
	var in [16 + 12]byte
	copy(in[:16], s.isnKey[:])
	copy(in[16:20], s.addr[:])
	copy(in[20:24], id.remote[:])
	binary.BigEndian.PutUint16(in[24:], id.localPort)
	binary.BigEndian.PutUint16(in[26:], id.remotePort)
	h := sha256.Sum256(in[:])
	m := uint32(s.opts.Clock.Now() / (4 * time.Microsecond))
	return seqnum.Value(m + binary.BigEndian.Uint32(h[:4]))
}

// allowChallengeACK applies the per-stack challenge-ACK budget (RFC 5961 §7).
func (s *Stack) allowChallengeACK() bool {
	s.challengeMu.Lock()
	defer s.challengeMu.Unlock()
	now := s.opts.Clock.Now()
	if now-s.challengeWindow >= time.Second {
		s.challengeWindow, s.challengeCount = now, 0
	}
	if s.challengeCount >= s.opts.ChallengeACKLimit {
		return false
	}
	s.challengeCount++
	return true
}

// register adds c to the demux table; it fails if the 4-tuple is in use.
func (s *Stack) register(c *conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if _, ok := s.conns[c.id]; ok {
		return fmt.Errorf("runtime: connection %v already exists", c.id)
	}
	s.conns[c.id] = c
	return nil
}

func (s *Stack) unregister(c *conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	release := c.releasePort
	c.releasePort = nil
	s.mu.Unlock()
	if release != nil {
		release()
	}
}

// reservePort claims port in the host's TCP if the link needs that (see
// link.PortReserver); release is nil when nothing was reserved.
func (s *Stack) reservePort(port uint16) (release func(), err error) {
	if s.ports == nil {
		return nil, nil
	}
	return s.ports.ReservePort(port)
}

// ephemeralPort picks a free local port for a connection to remote
// (RFC 6056 §3.3.1-style: sequential from a random start).
func (s *Stack) ephemeralPort(remote [4]byte, remotePort uint16) (uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 28232; i++ {
		p := s.nextPort
		s.nextPort++
		if s.nextPort < 32768 || s.nextPort >= 60999 {
			s.nextPort = 32768
		}
		if _, ok := s.listeners[p]; ok {
			continue
		}
		if _, ok := s.conns[fourTuple{localPort: p, remotePort: remotePort, remote: remote}]; !ok {
			return p, nil
		}
	}
	return 0, errors.New("runtime: no free ephemeral port")
}

// sendSeg encodes and transmits seg through a scratch buffer from outPool.
func (s *Stack) sendSeg(seg *wire.Segment) {
	b := s.outPool.get()
	s.send(*b, seg, 0)
	s.outPool.put(b)
}

// gatherBuf is the scratch of one sendGather: the headers, and the parts
// list handed to the link (pooled: an interface call's arguments escape).
type gatherBuf struct {
	hdr   [wire.IPv4HeaderLen + wire.MaxTCPHeaderLen]byte
	parts [3][]byte
}

// sendGather transmits seg with the payload a then b (seg.Payload is
// ignored) through the link's gathering send, which copies them once, into
// its queue or the kernel. A payload longer than mss > 0 goes to the link's
// segmentation offload, as in send.
func (s *Stack) sendGather(seg *wire.Segment, a, b []byte, mss int) {
	g := s.gatherBufs.Get().(*gatherBuf)
	n, err := seg.EncodeHeader(g.hdr[:], a, b)
	if err != nil {
		s.gatherBufs.Put(g)
		return
	}
	segs, size := 1, len(a)+len(b)
	if mss > 0 && size > mss {
		segs = (size + mss - 1) / mss
	} else {
		mss = 0
	}
	g.parts = [3][]byte{g.hdr[:n], a, b}
	parts := g.parts[:3]
	if len(b) == 0 {
		parts = parts[:2]
	}
	if s.gather.SendGather(parts, mss) == nil {
		s.stats.out.Add(uint64(segs))
	}
	g.parts = [3][]byte{} // hold no reference to the send buffer
	s.gatherBufs.Put(g)
}

// send encodes and transmits seg from buf, which may already hold the
// payload in place (see conn.sendData). A payload longer than mss > 0 goes
// to the link's segmentation offload, which cuts it into mss-byte
// segments; SegmentsOut counts the segments the peer will see.
func (s *Stack) send(buf []byte, seg *wire.Segment, mss int) {
	n, err := seg.Encode(buf)
	if err != nil {
		return
	}
	if seg.Flags&wire.RST != 0 {
		s.stats.resets.Add(1)
	}
	if mss > 0 && len(seg.Payload) > mss {
		if s.gso.SendGSO(buf[:n], mss) == nil {
			s.stats.out.Add(uint64((len(seg.Payload) + mss - 1) / mss))
		}
		return
	}
	if s.link.Send(buf[:n]) == nil {
		s.stats.out.Add(1)
	}
}
