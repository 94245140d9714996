package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// Conn is a TCP connection on a Stack. It implements net.Conn, and like
// *net.TCPConn it can half-close with CloseWrite.
type Conn struct {
	c *conn

	deadlineMu    sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
	deadlineWake  chan struct{} // made when a call blocks; closed and dropped when a deadline changes
}

// listener is a listening endpoint: a TCB held in LISTEN plus its queues.
type listener struct {
	s      *Stack
	port   uint16
	tcb    *conn // held in LISTEN: answers stray ACKs and RSTs through the spec
	mu     sync.Mutex
	half   int // connections in SYN-RECEIVED
	accept chan *conn
	done   chan struct{}
	closed bool

	releasePort func() // the port's reservation in the host (Stack.reservePort)
}

// Listen announces on a local port. network must be "tcp" or "tcp4";
// address is ":port" or "ADDR:port" with the stack's address.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	port, err := s.localPort(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	l := &listener{s: s, port: port, accept: make(chan *conn, s.opts.AcceptBacklog), done: make(chan struct{})}
	l.tcb = newConn(s, fourTuple{localPort: port})
	l.tcb.mu.Lock()
	err = l.tcb.fire(tcpfsm.EventOpenPassive)
	l.tcb.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	_, inUse := s.listeners[port]
	closed := s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return nil, net.ErrClosed
	case inUse:
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("port %d: address already in use", port)}
	}
	if l.releasePort, err = s.reservePort(port); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, inUse := s.listeners[port]; inUse || s.closed { // lost a race while reserving
		if l.releasePort != nil {
			l.releasePort()
		}
		if s.closed {
			return nil, net.ErrClosed
		}
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("port %d: address already in use", port)}
	}
	s.listeners[port] = l
	return &Listener{l: l}, nil
}

func (s *Stack) localPort(network, address string) (uint16, error) {
	if network != "tcp" && network != "tcp4" {
		return 0, net.UnknownNetworkError(network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return 0, err
	}
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil || (a != s.Addr() && !a.IsUnspecified()) {
			return 0, fmt.Errorf("address %s is not the stack's %s", host, s.Addr())
		}
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("invalid port %q", portStr)
	}
	return uint16(p), nil
}

// input handles a segment for the listening port with no connection yet
// (RFC 9293 §3.10.7.2): a SYN forks a child TCB from LISTEN; anything else
// goes to the listener's own machine.
func (l *listener) input(seg *wire.Segment) {
	if seg.Flags&(wire.SYN|wire.ACK|wire.RST) != wire.SYN {
		l.tcb.mu.Lock()
		l.tcb.seg = seg
		switch {
		case seg.Flags&wire.RST != 0:
			l.tcb.fire(tcpfsm.EventRcvRst)
		case seg.Flags&wire.SYN != 0:
			l.tcb.fire(tcpfsm.EventRcvSynAck)
		case seg.Flags&wire.ACK != 0:
			l.tcb.fire(tcpfsm.EventRcvBadAck) // any ACK in LISTEN is bad (§3.10.7.2)
		default:
			l.tcb.fire(tcpfsm.EventRcvData) // no SYN, ACK or RST: dropped (§3.10.7.2 fourth)
		}
		l.tcb.seg = nil
		l.tcb.mu.Unlock()
		return
	}
	l.mu.Lock()
	if l.closed || l.half >= l.s.opts.SynBacklog {
		l.mu.Unlock()
		l.s.stats.dropped[dropSynBacklog].Add(1)
		return
	}
	l.half++
	l.mu.Unlock()
	c := newConn(l.s, fourTuple{localPort: seg.DstPort, remotePort: seg.SrcPort, remote: seg.Src})
	c.listener, c.passive = l, true
	c.mu.Lock()
	defer c.mu.Unlock()
	c.CreateTcb()
	c.m.Restore(tcpfsm.StateListen) // the child starts as a copy of the listening TCB
	if err := l.s.register(c); err != nil {
		l.forget(c)
		return
	}
	c.seg = seg
	c.fire(tcpfsm.EventRcvSyn)
	c.seg = nil
}

// established moves c from the SYN backlog to the accept queue.
func (l *listener) established(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.listener = nil
	l.half--
	if l.closed {
		c.fire(tcpfsm.EventAbort) // queued: runs after the current transition
		return
	}
	select {
	case l.accept <- c:
	default:
		l.s.stats.dropped[dropAcceptQueue].Add(1)
		c.fire(tcpfsm.EventAbort)
	}
}

// forget drops a half-open child that never reached ESTABLISHED.
func (l *listener) forget(c *conn) {
	l.mu.Lock()
	if c.listener == l {
		c.listener = nil
		l.half--
	}
	l.mu.Unlock()
}

// Close stops listening and aborts connections not yet accepted.
func (l *listener) Close() error { return l.shutdown(tcpfsm.EventClose) }

// abort is Close for Stack.Close: the listening TCB gets ABORT (§3.10.5).
func (l *listener) abort() error { return l.shutdown(tcpfsm.EventAbort) }

func (l *listener) shutdown(ev tcpfsm.Event) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	l.mu.Unlock()
	l.s.mu.Lock()
	if l.s.listeners[l.port] == l {
		delete(l.s.listeners, l.port)
	}
	l.s.mu.Unlock()
	if l.releasePort != nil {
		l.releasePort()
	}
	l.tcb.mu.Lock()
	l.tcb.fire(ev)
	l.tcb.mu.Unlock()
	for {
		select {
		case c := <-l.accept:
			c.mu.Lock()
			c.fire(tcpfsm.EventAbort)
			c.mu.Unlock()
		default:
			return nil
		}
	}
}

// Listener is a TCP listener on a Stack; it implements net.Listener.
type Listener struct{ l *listener }

// Accept waits for and returns the next established connection.
func (ln *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.l.accept:
		return newAPIConn(c), nil
	case <-ln.l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: ln.Addr(), Err: net.ErrClosed}
	}
}

// Close stops listening; connections not yet accepted are reset.
func (ln *Listener) Close() error { return ln.l.Close() }

// Addr returns the listening address.
func (ln *Listener) Addr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ln.l.s.Addr(), ln.l.port))
}

// Dial connects to address; see DialContext.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// dialPort picks an ephemeral port for a connection to remote and reserves
// it in the host if the link needs that, skipping ports the host uses.
func (s *Stack) dialPort(remote [4]byte, remotePort uint16) (port uint16, release func(), err error) {
	for range 64 {
		if port, err = s.ephemeralPort(remote, remotePort); err != nil {
			return 0, nil, err
		}
		release, err = s.reservePort(port)
		if !errors.Is(err, syscall.EADDRINUSE) {
			return port, release, err
		}
	}
	return 0, nil, fmt.Errorf("runtime: no ephemeral port free in the host: %w", err)
}

// DialContext connects to address ("IPv4:port") with an active OPEN and
// waits for ESTABLISHED, a reset (connection refused), a timeout after the
// SYN retries, or ctx.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Is4() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("address %q: want IPv4:port", address)}
	}
	remote := ap.Addr().As4()
	port, release, err := s.dialPort(remote, ap.Port())
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c := newConn(s, fourTuple{localPort: port, remotePort: ap.Port(), remote: remote})
	c.releasePort = release
	stateWake := make(chan struct{}, 1)
	c.stateWake = stateWake
	if err := s.register(c); err != nil {
		if release != nil {
			release()
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c.mu.Lock()
	err = c.fire(tcpfsm.EventOpenActive)
	c.mu.Unlock()
	if err != nil {
		s.unregister(c)
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	for {
		c.mu.Lock()
		est, cerr := c.established, c.err
		if est || cerr != nil {
			c.stateWake = nil // nobody waits for state changes any more
		}
		c.mu.Unlock()
		if est {
			return newAPIConn(c), nil
		}
		if cerr != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: cerr}
		}
		select {
		case <-stateWake:
		case <-ctx.Done():
			c.mu.Lock()
			c.fire(tcpfsm.EventAbort) // the user gives up: reset if synchronized (§3.10.5)
			c.mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: ctx.Err()}
		}
	}
}

func newAPIConn(c *conn) *Conn { return &Conn{c: c} }

// State returns the connection's current TCP state.
func (cn *Conn) State() tcpfsm.State {
	cn.c.mu.Lock()
	defer cn.c.mu.Unlock()
	return cn.c.m.State()
}

// ReadAvailable copies received bytes into b without blocking. It returns
// (0, nil) when nothing is ready yet, and io.EOF after the peer's FIN.
// Simulations on virtual time use it instead of Read.
func (cn *Conn) ReadAvailable(b []byte) (int, error) {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readLocked(b)
}

func (c *conn) readLocked(b []byte) (int, error) {
	if c.rcvBuf.ready > 0 {
		n := c.rcvBuf.read(b)
		c.fire(tcpfsm.EventReceive) // may send a window update
		return n, nil
	}
	if c.finRcvd {
		return 0, io.EOF
	}
	if c.err != nil {
		return 0, c.err
	}
	return 0, nil
}

// WriteAvailable queues as much of b as the send buffer takes without
// blocking and returns how much.
func (cn *Conn) WriteAvailable(b []byte) (int, error) {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(b)
}

func (c *conn) writeLocked(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.writeSrc = b
	err := c.fire(tcpfsm.EventSend)
	n := len(b) - len(c.writeSrc)
	c.writeSrc = nil
	if err != nil {
		var rej *tcpfsm.RejectedError
		if errors.As(err, &rej) {
			return n, fmt.Errorf("%s: %w", rej.Reason, net.ErrClosed)
		}
		return n, err
	}
	return n, nil
}

// Read reads data, blocking until some arrives, the peer closes (io.EOF),
// the connection fails, or the read deadline passes.
func (cn *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c := cn.c
	for {
		c.mu.Lock()
		n, err := c.readLocked(b)
		if n > 0 || err != nil {
			c.mu.Unlock()
			return n, cn.opErr("read", err)
		}
		// Made under the lock, so a wake after Unlock is kept for us.
		ch := waitChan(&c.readWake)
		c.mu.Unlock()
		if err := cn.wait(ch, true); err != nil {
			return 0, cn.opErr("read", err)
		}
	}
}

// Write writes b, blocking while the send buffer is full.
func (cn *Conn) Write(b []byte) (int, error) {
	c := cn.c
	total := 0
	for {
		c.mu.Lock()
		n, err := c.writeLocked(b[total:])
		total += n
		if err != nil || total == len(b) {
			c.mu.Unlock()
			return total, cn.opErr("write", err)
		}
		ch := waitChan(&c.writeWake) // under the lock, as in Read
		c.mu.Unlock()
		if err := cn.wait(ch, false); err != nil {
			return total, cn.opErr("write", err)
		}
	}
}

// wait blocks until ch is signalled or the read (or write) deadline passes.
func (cn *Conn) wait(ch chan struct{}, read bool) error {
	cn.deadlineMu.Lock()
	if cn.deadlineWake == nil {
		cn.deadlineWake = make(chan struct{})
	}
	dl, changed := cn.writeDeadline, cn.deadlineWake
	if read {
		dl = cn.readDeadline
	}
	cn.deadlineMu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
		return nil
	case <-changed:
		return nil
	case <-timeout:
		return os.ErrDeadlineExceeded
	}
}

func (cn *Conn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: cn.LocalAddr(), Addr: cn.RemoteAddr(), Err: err}
}

// CloseWrite sends FIN after the queued data (half-close): the peer reads
// EOF while this side can still read (RFC 9293 §3.10.4).
func (cn *Conn) CloseWrite() error {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fire(tcpfsm.EventClose); err != nil {
		return cn.opErr("close", err)
	}
	return nil
}

// Close closes the connection: FIN after queued data, as CLOSE does
// (RFC 9293 §3.10.4); if received data is left unread, the connection is
// reset instead, as Linux does (RFC 2525 §2.17). Close does not wait.
func (cn *Conn) Close() error {
	c := cn.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	c.orphaned = true
	if c.rcvBuf.ready > 0 {
		err = c.fire(tcpfsm.EventAbort)
	} else {
		err = c.fire(tcpfsm.EventClose)
	}
	if c.m.State() == tcpfsm.StateFinWait2 {
		c.ArmFinTimeout() // already there after CloseWrite: now bounded
	}
	if c.err == nil {
		c.err = errClosed
	}
	c.wakeAll()
	if err != nil && !errors.Is(err, tcpfsm.ErrRejected) {
		return err
	}
	return nil
}

// LocalAddr returns the local address.
func (cn *Conn) LocalAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(cn.c.s.Addr(), cn.c.id.localPort))
}

// RemoteAddr returns the peer's address.
func (cn *Conn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(cn.c.id.remote), cn.c.id.remotePort))
}

// SetDeadline sets both deadlines.
func (cn *Conn) SetDeadline(t time.Time) error {
	cn.setDeadline(&cn.readDeadline, t)
	cn.setDeadline(&cn.writeDeadline, t)
	return nil
}

// SetReadDeadline sets the deadline for Read; zero means none.
func (cn *Conn) SetReadDeadline(t time.Time) error { cn.setDeadline(&cn.readDeadline, t); return nil }

// SetWriteDeadline sets the deadline for Write; zero means none.
func (cn *Conn) SetWriteDeadline(t time.Time) error { cn.setDeadline(&cn.writeDeadline, t); return nil }

func (cn *Conn) setDeadline(field *time.Time, t time.Time) {
	cn.deadlineMu.Lock()
	*field = t
	if cn.deadlineWake != nil {
		close(cn.deadlineWake) // wake blocked calls so they re-read the deadline
		cn.deadlineWake = nil  // the next call to block makes a new one
	}
	cn.deadlineMu.Unlock()
}
