package runtime_test

// A black-box harness for per-state conformance tests: one Stack on a
// virtual clock behind a fake link that records every packet the stack sends
// and lets the test inject hand-crafted segments as "the peer". The state of
// each connection is read from the stack's transition trace (Options.Trace),
// so connections the API does not expose (listener children in
// SYN-RECEIVED, the CLOSED responder) can be checked too.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// ---- fake link ---------------------------------------------------------------

// fakeLink implements link.Link: Send records a parsed copy of each packet;
// the test delivers packets with inject.
type fakeLink struct {
	mu     sync.Mutex
	recv   func([]byte)
	sent   []wire.Segment
	notify chan struct{}
	mtu    int
}

func newFakeLink(mtu int) *fakeLink {
	return &fakeLink{mtu: mtu, notify: make(chan struct{}, 1)}
}

func (l *fakeLink) Send(pkt []byte) error {
	var seg wire.Segment
	if err := wire.Parse(pkt, &seg); err != nil {
		panic(fmt.Sprintf("stack sent a malformed packet: %v", err))
	}
	seg.Payload = append([]byte(nil), seg.Payload...)
	l.mu.Lock()
	l.sent = append(l.sent, seg)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
	return nil
}

func (l *fakeLink) SetReceiver(recv func([]byte)) { l.recv = recv }
func (l *fakeLink) MTU() int                      { return l.mtu }
func (l *fakeLink) Close() error                  { return nil }

// drain returns and forgets every packet sent so far.
func (l *fakeLink) drain() []wire.Segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent
	l.sent = nil
	return s
}

func (l *fakeLink) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent)
}

// ---- transition trace -------------------------------------------------------

type transition struct {
	local, remote string
	from, event   string
	to            tcpfsm.State
}

type traceLog struct {
	mu  sync.Mutex
	all []transition
}

type traceHandler struct{ log *traceLog }

var stateByName = func() map[string]tcpfsm.State {
	m := map[string]tcpfsm.State{}
	for _, s := range tcpfsm.States {
		m[s.String()] = s
	}
	return m
}()

func (h traceHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h traceHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h traceHandler) WithGroup(string) slog.Handler            { return h }
func (h traceHandler) Handle(_ context.Context, r slog.Record) error {
	var tr transition
	r.Attrs(func(a slog.Attr) bool {
		v := a.Value.String()
		switch a.Key {
		case "local":
			tr.local = v
		case "remote":
			tr.remote = v
		case "from":
			tr.from = v
		case "event":
			tr.event = v
		case "to":
			tr.to = stateByName[v]
		}
		return true
	})
	h.log.mu.Lock()
	h.log.all = append(h.log.all, tr)
	h.log.mu.Unlock()
	return nil
}

// ---- harness ------------------------------------------------------------------

var (
	stackAddr = netip.MustParseAddr("10.9.0.1")
	peerAddr  = netip.MustParseAddr("10.9.0.2")
)

const (
	listenPort = 80
	peerPort   = 40000
	peerWnd    = 8192 // the peer's (unscaled) window: MAX.SND.WND
	rcvBuf     = 8192 // the stack's receive buffer: RCV.WND (no scaling)
	testMSL    = 5 * time.Second
	testMTU    = 1500
)

// harness is one stack plus "the peer" the test plays. Sequence numbers:
// iss/irs are the stack's and the peer's initial sequence numbers; sndNxt is
// the stack's SND.NXT and rcvNxt the stack's RCV.NXT as the peer knows them.
type harness struct {
	t     *testing.T
	clk   *clock.Virtual
	lnk   *fakeLink
	st    *fsmrt.Stack
	opts  fsmrt.Options
	trace *traceLog

	ln   net.Listener
	conn *fsmrt.Conn

	localPort, remotePort uint16
	iss, irs              seqnum.Value
	sndNxt, rcvNxt        seqnum.Value

	dialDone   chan dialResult
	dialCancel context.CancelFunc
}

type dialResult struct {
	c   net.Conn
	err error
}

func newHarness(t *testing.T, tweak func(*fsmrt.Options)) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewVirtual(), lnk: newFakeLink(testMTU), trace: &traceLog{}}
	h.opts = fsmrt.Options{
		Addr:          stackAddr,
		Clock:         h.clk,
		MSL:           testMSL,
		InitialRTO:    time.Second,
		MinRTO:        200 * time.Millisecond,
		MaxRTO:        60 * time.Second,
		DelayedACK:    40 * time.Millisecond,
		SynRetries:    3,
		DataRetries:   4,
		SendBuffer:    16384,
		ReceiveBuffer: rcvBuf,
		Trace:         slog.New(traceHandler{h.trace}),
	}
	if tweak != nil {
		tweak(&h.opts)
	}
	st, err := fsmrt.NewStack(h.lnk, h.opts)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	h.localPort, h.remotePort = listenPort, peerPort
	h.irs = 0xfffff000 // the peer's ISS: close to wrapping on purpose
	h.rcvNxt = h.irs
	t.Cleanup(func() {
		if h.dialCancel != nil {
			h.dialCancel()
		}
		st.Close()
	})
	return h
}

// segment builds a segment from the peer to the stack.
func (h *harness) segment(flags wire.Flags, seq, ack seqnum.Value, testPayload []byte) *wire.Segment {
	seg := &wire.Segment{
		Src: peerAddr.As4(), Dst: stackAddr.As4(),
		SrcPort: h.remotePort, DstPort: h.localPort,
		Seq: seq, Flags: flags, Window: peerWnd, Payload: testPayload,
	}
	if flags&wire.ACK != 0 {
		seg.Ack = ack
	}
	return seg
}

// encode turns seg into a packet.
func (h *harness) encode(seg *wire.Segment) []byte {
	h.t.Helper()
	buf := make([]byte, seg.EncodedLen())
	n, err := seg.Encode(buf)
	if err != nil {
		h.t.Fatalf("encode %v: %v", seg, err)
	}
	return buf[:n]
}

// inject delivers seg to the stack (synchronously: replies are recorded when
// it returns).
func (h *harness) inject(seg *wire.Segment) { h.t.Helper(); h.injectRaw(h.encode(seg)) }

func (h *harness) injectRaw(pkt []byte) { h.lnk.recv(pkt) }

// send injects a segment with sequence numbers relative to the peer's view:
// SEG.SEQ = RCV.NXT+seq, SEG.ACK = SND.NXT+ack.
func (h *harness) send(flags wire.Flags, seq, ack int, testPayload []byte) {
	h.t.Helper()
	h.inject(h.segment(flags, relSeq(h.rcvNxt, seq), relSeq(h.sndNxt, ack), testPayload))
}

func relSeq(v seqnum.Value, d int) seqnum.Value { return seqnum.Value(uint32(v) + uint32(int32(d))) }

// pkt is an expected segment from the stack. seq and ack are relative to the
// stack's SND.NXT and RCV.NXT (as the harness knew them before the step);
// absSeq makes seq absolute (for <SEQ=0><CTL=RST,ACK>).
type pkt struct {
	flags  wire.Flags
	seq    int
	ack    int
	absSeq bool
	anySeq bool // the stack's ISS, unknown before its SYN
	data   int  // payload length
}

func (p pkt) String() string {
	s := fmt.Sprintf("[%v] seq=SND.NXT%+d ack=RCV.NXT%+d", p.flags, p.seq, p.ack)
	if p.absSeq {
		s = fmt.Sprintf("[%v] seq=%d ack=RCV.NXT%+d", p.flags, p.seq, p.ack)
	}
	if p.data > 0 {
		s += fmt.Sprintf(" len=%d", p.data)
	}
	return s
}

// expect checks that exactly want was sent since the last check, with the
// relative numbers resolved against sndNxt/rcvNxt, and returns what was sent.
func (h *harness) expect(want ...pkt) []wire.Segment {
	h.t.Helper()
	return h.expectRel(h.sndNxt, h.rcvNxt, want...)
}

func (h *harness) expectRel(sndNxt, rcvNxt seqnum.Value, want ...pkt) []wire.Segment {
	h.t.Helper()
	got := h.lnk.drain()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := &got[i], want[i]
		seq := relSeq(sndNxt, w.seq)
		if w.absSeq {
			seq = seqnum.Value(uint32(w.seq))
		}
		if w.anySeq {
			seq = g.Seq
		}
		ok = g.Flags&^wire.PSH == w.flags&^wire.PSH && g.Seq == seq && len(g.Payload) == w.data &&
			(w.flags&wire.ACK == 0 || g.Ack == relSeq(rcvNxt, w.ack)) &&
			g.Src == stackAddr.As4() && g.Dst == peerAddr.As4() && g.SrcPort == h.localPort && g.DstPort == h.remotePort
	}
	if !ok {
		var b strings.Builder
		fmt.Fprintf(&b, "sent segments differ (SND.NXT=%d RCV.NXT=%d)\n want:", uint32(sndNxt), uint32(rcvNxt))
		if len(want) == 0 {
			b.WriteString(" nothing")
		}
		for _, w := range want {
			b.WriteString("\n   " + w.String())
		}
		b.WriteString("\n got:")
		if len(got) == 0 {
			b.WriteString(" nothing")
		}
		for i := range got {
			g := &got[i]
			fmt.Fprintf(&b, "\n   [%v] seq=SND.NXT%+d ack=RCV.NXT%+d len=%d win=%d",
				g.Flags, int32(g.Seq-sndNxt), int32(g.Ack-rcvNxt), len(g.Payload), g.Window)
		}
		h.t.Fatal(b.String())
	}
	return got
}

// expectNothing checks that the stack sent nothing.
func (h *harness) expectNothing() { h.t.Helper(); h.expect() }

// stateOf is the last state the trace shows for a 4-tuple, if any.
func (h *harness) stateOf(local, remote netip.AddrPort) (tcpfsm.State, string, bool) {
	l, r := local.String(), remote.String()
	h.trace.mu.Lock()
	defer h.trace.mu.Unlock()
	for i := len(h.trace.all) - 1; i >= 0; i-- {
		tr := h.trace.all[i]
		if tr.local == l && tr.remote == r {
			return tr.to, tr.event, true
		}
	}
	return tcpfsm.StateClosed, "", false
}

// state is the current state of the harness connection (CLOSED if the trace
// has nothing for its 4-tuple).
func (h *harness) state() tcpfsm.State {
	s, _, _ := h.stateOf(netip.AddrPortFrom(stackAddr, h.localPort), netip.AddrPortFrom(peerAddr, h.remotePort))
	return s
}

// transitions formats the trace, for failure messages.
func (h *harness) transitions() string {
	h.trace.mu.Lock()
	defer h.trace.mu.Unlock()
	var b strings.Builder
	for _, tr := range h.trace.all {
		fmt.Fprintf(&b, "\n   %s<-%s %s --%s--> %v", tr.local, tr.remote, tr.from, tr.event, tr.to)
	}
	return b.String()
}

// listenerState is the state of the listening TCB on listenPort.
func (h *harness) listenerState() tcpfsm.State {
	s, _, _ := h.stateOf(netip.AddrPortFrom(stackAddr, listenPort), netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	return s
}

// expectState checks the harness connection's state. LISTEN means the
// listener is listening and the 4-tuple has no connection of its own (or
// its embryonic connection returned to LISTEN, Figure 5 note 1).
func (h *harness) expectState(want tcpfsm.State) {
	h.t.Helper()
	if want == tcpfsm.StateListen {
		if got := h.listenerState(); got != tcpfsm.StateListen {
			h.t.Fatalf("listener state = %v, want LISTEN", got)
		}
		s, _, ok := h.stateOf(netip.AddrPortFrom(stackAddr, h.localPort), netip.AddrPortFrom(peerAddr, h.remotePort))
		if ok && s != tcpfsm.StateListen {
			h.t.Fatalf("connection state = %v, want none or LISTEN", s)
		}
		return
	}
	if got := h.state(); got != want {
		h.t.Fatalf("state = %v, want %v; transitions:%s", got, want, h.transitions())
	}
	if h.conn != nil {
		if got := h.conn.State(); got != want {
			h.t.Fatalf("Conn.State() = %v, want %v", got, want)
		}
	}
}

// advance moves virtual time forward.
func (h *harness) advance(d time.Duration) { h.clk.Advance(d) }

// ---- driving a connection into each state --------------------------------------

var synOpts = wire.Options{HasMSS: true, MSS: 1460}

// listen opens the passive endpoint (CLOSED → LISTEN, §3.10.1).
func (h *harness) listen() {
	h.t.Helper()
	ln, err := h.st.Listen("tcp", fmt.Sprintf(":%d", listenPort))
	if err != nil {
		h.t.Fatal(err)
	}
	h.ln = ln
}

// toSynReceived: LISTEN, peer SYN → SYN-RECEIVED; learns the ISS from the SYN,ACK.
func (h *harness) toSynReceived() {
	h.t.Helper()
	h.listen()
	syn := h.segment(wire.SYN, h.irs, 0, nil)
	syn.Options = synOpts
	h.inject(syn)
	got := h.lnk.drain()
	if len(got) != 1 || got[0].Flags != wire.SYN|wire.ACK || got[0].Ack != h.irs.Add(1) {
		h.t.Fatalf("want SYN,ACK ack=IRS+1, got %v", got)
	}
	h.iss = got[0].Seq
	h.sndNxt, h.rcvNxt = h.iss.Add(1), h.irs.Add(1)
	h.expectState(tcpfsm.StateSynReceived)
}

// toEstablished: the passive three-way handshake, then Accept.
func (h *harness) toEstablished() {
	h.t.Helper()
	h.toSynReceived()
	h.send(wire.ACK, 0, 0, nil)
	h.expectNothing()
	h.expectState(tcpfsm.StateEstablished)
	h.accept()
}

func (h *harness) accept() {
	h.t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := h.ln.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			h.t.Fatal(r.err)
		}
		h.conn = r.c.(*fsmrt.Conn)
	case <-time.After(5 * time.Second):
		h.t.Fatal("Accept did not return")
	}
}

// startDial starts an active OPEN (CLOSED → SYN-SENT) in a goroutine, waits
// for its SYN and learns the ISS and the ephemeral port.
func (h *harness) startDial() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.dialCancel = cancel
	h.dialDone = make(chan dialResult, 1)
	go func() {
		c, err := h.st.DialContext(ctx, "tcp", netip.AddrPortFrom(peerAddr, peerPort).String())
		h.dialDone <- dialResult{c, err}
	}()
	h.waitSent(1)
	got := h.lnk.drain()
	if len(got) != 1 || got[0].Flags != wire.SYN {
		h.t.Fatalf("want SYN, got %v", got)
	}
	h.iss = got[0].Seq
	h.localPort = got[0].SrcPort
	h.sndNxt = h.iss.Add(1)
	h.rcvNxt = h.irs
	// The dial goroutine records its OPEN transition after sending the SYN.
	for deadline := time.Now().Add(5 * time.Second); h.state() != tcpfsm.StateSynSent && time.Now().Before(deadline); {
		time.Sleep(50 * time.Microsecond)
	}
	h.expectState(tcpfsm.StateSynSent)
}

// waitSent waits (in real time) until n packets were sent.
func (h *harness) waitSent(n int) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for h.lnk.count() < n {
		select {
		case <-h.lnk.notify:
		case <-deadline:
			h.t.Fatalf("timed out waiting for %d packets", n)
		}
	}
}

// dialResult waits for the dial to return.
func (h *harness) dialResult() (net.Conn, error) {
	h.t.Helper()
	select {
	case r := <-h.dialDone:
		if r.c != nil {
			h.conn = r.c.(*fsmrt.Conn)
		}
		return r.c, r.err
	case <-time.After(5 * time.Second):
		h.t.Fatal("dial did not return")
	}
	return nil, nil
}

func (h *harness) dialPending() bool {
	select {
	case r := <-h.dialDone:
		h.dialDone <- r
		return false
	default:
		return true
	}
}

// toEstablishedActive: SYN-SENT, peer SYN,ACK → ESTABLISHED (§3.10.7.3 fourth).
func (h *harness) toEstablishedActive() {
	h.t.Helper()
	h.startDial()
	synAck := h.segment(wire.SYN|wire.ACK, h.irs, h.iss.Add(1), nil)
	synAck.Options = synOpts
	h.inject(synAck)
	h.rcvNxt = h.irs.Add(1)
	h.expect(pkt{flags: wire.ACK})
	if _, err := h.dialResult(); err != nil {
		h.t.Fatal(err)
	}
	h.expectState(tcpfsm.StateEstablished)
}

// toSynReceivedActive: simultaneous open, SYN-SENT + SYN → SYN-RECEIVED.
func (h *harness) toSynReceivedActive() {
	h.t.Helper()
	h.startDial()
	syn := h.segment(wire.SYN, h.irs, 0, nil)
	syn.Options = synOpts
	h.inject(syn)
	h.rcvNxt = h.irs.Add(1)
	h.expect(pkt{flags: wire.SYN | wire.ACK, seq: -1})
	h.expectState(tcpfsm.StateSynReceived)
}

// closeWrite is the CLOSE call (§3.10.4); it expects the FIN it sends.
func (h *harness) closeWrite() {
	h.t.Helper()
	if err := h.conn.CloseWrite(); err != nil {
		h.t.Fatal(err)
	}
	h.expect(pkt{flags: wire.FIN | wire.ACK})
	h.sndNxt = h.sndNxt.Add(1)
}

func (h *harness) toFinWait1() {
	h.t.Helper()
	h.toEstablished()
	h.closeWrite()
	h.expectState(tcpfsm.StateFinWait1)
}

func (h *harness) toFinWait2() {
	h.t.Helper()
	h.toFinWait1()
	h.send(wire.ACK, 0, 0, nil)
	h.expectNothing()
	h.expectState(tcpfsm.StateFinWait2)
}

func (h *harness) toCloseWait() {
	h.t.Helper()
	h.toEstablished()
	h.send(wire.FIN|wire.ACK, 0, 0, nil)
	h.expect(pkt{flags: wire.ACK, ack: 1})
	h.rcvNxt = h.rcvNxt.Add(1)
	h.expectState(tcpfsm.StateCloseWait)
}

func (h *harness) toClosing() {
	h.t.Helper()
	h.toFinWait1()
	h.send(wire.FIN|wire.ACK, 0, -1, nil) // does not acknowledge our FIN
	h.expect(pkt{flags: wire.ACK, ack: 1})
	h.rcvNxt = h.rcvNxt.Add(1)
	h.expectState(tcpfsm.StateClosing)
}

func (h *harness) toLastAck() {
	h.t.Helper()
	h.toCloseWait()
	h.closeWrite()
	h.expectState(tcpfsm.StateLastAck)
}

func (h *harness) toTimeWait() {
	h.t.Helper()
	h.toFinWait2()
	h.send(wire.FIN|wire.ACK, 0, 0, nil)
	h.expect(pkt{flags: wire.ACK, ack: 1})
	h.rcvNxt = h.rcvNxt.Add(1)
	h.expectState(tcpfsm.StateTimeWait)
}

// toClosed leaves the harness with no TCB for its 4-tuple (§3.10.7.1).
func (h *harness) toClosed() {
	h.sndNxt = 0x40000000
	h.rcvNxt = h.irs
}

// stateSetups names every starting state of the per-state tables.
var stateSetups = map[string]func(*harness){
	"CLOSED":               (*harness).toClosed,
	"LISTEN":               (*harness).listen,
	"SYN-SENT":             (*harness).startDial,
	"SYN-RECEIVED":         (*harness).toSynReceived,
	"SYN-RECEIVED(active)": (*harness).toSynReceivedActive,
	"ESTABLISHED":          (*harness).toEstablished,
	"ESTABLISHED(active)":  (*harness).toEstablishedActive,
	"FIN-WAIT-1":           (*harness).toFinWait1,
	"FIN-WAIT-2":           (*harness).toFinWait2,
	"CLOSE-WAIT":           (*harness).toCloseWait,
	"CLOSING":              (*harness).toClosing,
	"LAST-ACK":             (*harness).toLastAck,
	"TIME-WAIT":            (*harness).toTimeWait,
}

// testPayload returns n recognizable bytes.
func testPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// readAll drains what the connection has ready without blocking.
func (h *harness) readAll() ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := h.conn.ReadAvailable(buf)
		out = append(out, buf[:n]...)
		if err != nil || n == 0 {
			return out, err
		}
	}
}

// badChecksum returns seg encoded with its TCP checksum corrupted.
func (h *harness) badChecksum(seg *wire.Segment) []byte {
	p := h.encode(seg)
	p[wire.IPv4HeaderLen+16] ^= 0x5a
	return p
}

var errAny = errors.New("any error")
