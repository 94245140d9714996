//go:build linux

package tests

// Interop tests: the user-space stack (runtime) against the Linux kernel's
// TCP over real links (a raw IPv4 socket on a veth, a TUN device), in
// throwaway network namespaces built by tests/netnstest. They need root;
// without it they skip (or fail with FSMTCP_REQUIRE_ROOT_TESTS=1).
//
//	go test ./tests/ -run Interop -count=1 -v
//
// Conventions: the stack lives in namespace A (raw link on the veth
// address, or a TUN device in A), the kernel peer in B (or in A for TUN).
// Kernel sockets are created inside NS.Do so they belong to the right
// namespace. Every test is bounded by a context deadline applied to all
// connections, and everything is closed by t.Cleanup (stack, then link,
// then the namespaces).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/link"
	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
	"github.com/fsmgen/fsmgen/runtime/wire"
	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// Ports the stack uses in namespace A. The kernel there never uses them on
// its own (no kernel listener, below ip_local_port_range).
const (
	iopEchoPort    = 7  // echo: copies back as it reads
	iopReversePort = 9  // reads to EOF, then sends it all back (half-close)
	iopClosedPort  = 13 // no listener: SYNs are refused
	iopHTTPPort    = 80
)

// iopOpts are the stack options of the interop tests: a short MSL so
// TIME-WAIT ends quickly, a MinRTO suited to a veth.
func iopOpts(addr netip.Addr) fsmrt.Options {
	return fsmrt.Options{Addr: addr, MSL: 100 * time.Millisecond, MinRTO: 50 * time.Millisecond}
}

// iopLink wraps a link so a test can hand packets straight to the stack's
// receiver (for packets the kernel would never deliver, e.g. a bad IPv4
// header checksum). Real and injected packets are serialized, as the
// link.Link contract requires of receiver calls.
type iopLink struct {
	link.Link
	mu   sync.Mutex
	recv func([]byte)
	end  func() // batch end, called per packet when the wrapped link has no batches
}

func (l *iopLink) SetReceiver(recv func([]byte)) {
	l.mu.Lock()
	l.recv = recv
	l.mu.Unlock()
	l.Link.SetReceiver(func(pkt []byte) {
		l.mu.Lock()
		l.recv(pkt)
		if l.end != nil {
			l.end()
		}
		l.mu.Unlock()
	})
}

// GSOMaxSize passes the wrapped link's segmentation offload through (0: it
// has none), so the stack uses it as it would on the bare link.
func (l *iopLink) GSOMaxSize() int {
	if g, ok := l.Link.(link.Segmenter); ok {
		return g.GSOMaxSize()
	}
	return 0
}

// SendGSO passes to the wrapped link's SendGSO; the stack calls it only when
// GSOMaxSize is non-zero.
func (l *iopLink) SendGSO(pkt []byte, mss int) error {
	return l.Link.(link.Segmenter).SendGSO(pkt, mss)
}

// SendGather passes to the wrapped link's gathering send, or joins the
// parts for its Send or SendGSO (allocating: only tunlink lacks it here).
func (l *iopLink) SendGather(parts [][]byte, mss int) error {
	if g, ok := l.Link.(link.Gatherer); ok {
		return g.SendGather(parts, mss)
	}
	if mss > 0 {
		return l.SendGSO(slices.Concat(parts...), mss)
	}
	return l.Link.Send(slices.Concat(parts...))
}

// SetBatchEnd passes the end-of-batch callback to the wrapped link,
// serialized with Inject like the receiver; over a link without batches,
// after every packet.
func (l *iopLink) SetBatchEnd(end func()) {
	b, ok := l.Link.(link.BatchReceiver)
	if !ok { // every packet is a batch of its own
		l.mu.Lock()
		l.end = end
		l.mu.Unlock()
		return
	}
	b.SetBatchEnd(func() {
		l.mu.Lock()
		end()
		l.mu.Unlock()
	})
}

// ReservePort passes to the wrapped link's port reservation, if it has one.
func (l *iopLink) ReservePort(port uint16) (func(), error) {
	if r, ok := l.Link.(link.PortReserver); ok {
		return r.ReservePort(port)
	}
	return nil, nil
}

// Inject delivers pkt to the stack as if the link had received it.
func (l *iopLink) Inject(pkt []byte) {
	l.mu.Lock()
	l.recv(pkt)
	l.mu.Unlock()
}

// iopRawLink opens a raw link on the veth address in A, with the kernel's
// RSTs dropped there; cleanup closes it.
func iopRawLink(t testing.TB, tp *netnstest.Topology) *rawlink.Link {
	return iopRawLinkConfig(t, tp, rawlink.Config{})
}

// iopRawLinkConfig is iopRawLink with cfg's options (LocalAddr and MTU are
// set here).
func iopRawLinkConfig(t testing.TB, tp *netnstest.Topology, cfg rawlink.Config) *rawlink.Link {
	t.Helper()
	if err := tp.A.DropKernelRSTs(); err != nil {
		t.Fatal(err)
	}
	cfg.LocalAddr, cfg.MTU = tp.AddrA, tp.MTU
	var raw *rawlink.Link
	if err := tp.A.Do(func() (err error) {
		raw, err = rawlink.Open(cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// iopNewStack starts a stack on l; cleanup closes it (before the link,
// whose cleanup was registered earlier).
func iopNewStack(t testing.TB, l link.Link, opts fsmrt.Options) *fsmrt.Stack {
	t.Helper()
	st, err := fsmrt.NewStack(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// iopRawStack starts a stack on a raw link in A, behind an iopLink for
// injecting packets.
func iopRawStack(t testing.TB, tp *netnstest.Topology, opts fsmrt.Options) (*fsmrt.Stack, *iopLink, *rawlink.Link) {
	t.Helper()
	raw := iopRawLink(t, tp)
	l := &iopLink{Link: raw}
	return iopNewStack(t, l, opts), l, raw
}

// iopCtx is the test's time bound; it is applied to every connection.
func iopCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func iopDeadline(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

// iopDial connects with the kernel's TCP from namespace ns.
func iopDial(ctx context.Context, ns *netnstest.NS, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	return c, err
}

// iopData returns n reproducible random bytes.
func iopData(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

type iopCloseWriter interface{ CloseWrite() error }

// iopServe runs an accept loop on ln until it is closed, handling each
// connection in its own goroutine with the context's deadline set.
func iopServe(ctx context.Context, ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(iopDeadline(ctx))
				handle(c)
			}()
		}
	}()
}

// iopEchoHandler copies back what it reads, then half-closes.
func iopEchoHandler(c net.Conn) {
	io.Copy(c, c)
	c.(iopCloseWriter).CloseWrite()
}

// iopReverseHandler reads to EOF, then sends everything back: its writes
// all happen in CLOSE-WAIT.
func iopReverseHandler(c net.Conn) {
	b, err := io.ReadAll(c)
	if err != nil {
		return
	}
	c.Write(b)
}

// iopEcho sends data on c while reading the echo, half-closes after the last
// byte, reads to EOF and checks the echo by hash. It closes c.
func iopEcho(ctx context.Context, c net.Conn, data []byte) error {
	defer c.Close()
	c.SetDeadline(iopDeadline(ctx))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(iopCloseWriter).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.Copy(h, c)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d of %d bytes: %w", n, len(data), rerr)
	}
	if want := sha256.Sum256(data); n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("echo differs: got %d bytes sha256 %x, sent %d bytes sha256 %x", n, h.Sum(nil), len(data), want)
	}
	return nil
}

// iopWaitIdle waits until the stack holds no connection and no armed timer
// (every connection went through CLOSED: nothing leaked).
func iopWaitIdle(t testing.TB, st *fsmrt.Stack, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := st.Stats()
		if s.Conns == 0 && s.ArmedTimers == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack not idle after %v: %d connections, %d armed timers", timeout, s.Conns, s.ArmedTimers)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func iopLogStats(t testing.TB, st *fsmrt.Stack) {
	t.Helper()
	s := st.Stats()
	t.Logf("stack: in %d out %d retransmits %d resets %d challenge-ACKs %d malformed %d dropped %v",
		s.SegmentsIn, s.SegmentsOut, s.Retransmits, s.ResetsSent, s.ChallengeACKs, s.MalformedTotal(), s.Dropped)
}

// iopEchoSuite is the echo workload shared by the raw and TUN tests: 1 MiB
// echoed, 32 concurrent connections, and a half-close where every byte comes
// back after the client's FIN.
func iopEchoSuite(t *testing.T, ctx context.Context, client *netnstest.NS, server netip.Addr) {
	echo := netip.AddrPortFrom(server, iopEchoPort).String()
	reverse := netip.AddrPortFrom(server, iopReversePort).String()
	t.Run("1MiB", func(t *testing.T) {
		c, err := iopDial(ctx, client, echo)
		if err != nil {
			t.Fatal(err)
		}
		if err := iopEcho(ctx, c, iopData(1, 1<<20)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("32conns", func(t *testing.T) {
		const n = 32
		errs := make(chan error, n)
		for i := range n {
			go func() {
				c, err := iopDial(ctx, client, echo)
				if err == nil {
					err = iopEcho(ctx, c, iopData(100+uint64(i), 64<<10+i*1000))
				}
				if err != nil {
					err = fmt.Errorf("conn %d: %w", i, err)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("halfclose", func(t *testing.T) {
		c, err := iopDial(ctx, client, reverse)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(iopDeadline(ctx))
		data := iopData(2, 1<<20)
		// Everything is written and the write side closed before the first
		// byte is read: the server answers only after our FIN.
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := c.(iopCloseWriter).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes back, sent %d: contents differ", len(got), len(data))
		}
	})
}

// TestInteropKernelClient: kernel clients in B against the stack's echo
// server in A over the raw link: 1 MiB echo, 32 concurrent connections,
// half-close, and ECONNREFUSED for a port without a listener; once with the
// link's packet-socket path and segmentation offload (the default), once
// with every packet through the IP_HDRINCL socket.
func TestInteropKernelClient(t *testing.T) {
	netnstest.RequireRoot(t)
	t.Run("offload", func(t *testing.T) { iopKernelClient(t, rawlink.Config{}) })
	t.Run("hdrincl", func(t *testing.T) { iopKernelClient(t, rawlink.Config{NoOffload: true}) })
}

func iopKernelClient(t *testing.T, cfg rawlink.Config) {
	ctx := iopCtx(t, 60*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	raw := iopRawLinkConfig(t, tp, cfg)
	st := iopNewStack(t, &iopLink{Link: raw}, iopOpts(tp.AddrA))
	for _, s := range []struct {
		port   int
		handle func(net.Conn)
	}{{iopEchoPort, iopEchoHandler}, {iopReversePort, iopReverseHandler}} {
		ln, err := st.Listen("tcp", ":"+strconv.Itoa(s.port))
		if err != nil {
			t.Fatal(err)
		}
		iopServe(ctx, ln, s.handle)
	}
	iopEchoSuite(t, ctx, tp.B, tp.AddrA)
	t.Run("refused", func(t *testing.T) {
		for range 3 {
			c, err := iopDial(ctx, tp.B, netip.AddrPortFrom(tp.AddrA, iopClosedPort).String())
			if err == nil {
				c.Close()
				t.Fatal("dial to a port without listener succeeded")
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial to a port without listener: %v, want ECONNREFUSED", err)
			}
		}
	})
	iopLogStats(t, st)
	ls := raw.Stats()
	t.Logf("link: %+v", ls)
	if t.Failed() {
		return
	}
	iopWaitIdle(t, st, 5*time.Second)
	if m := st.Stats().MalformedTotal(); m != 0 {
		t.Errorf("%d malformed packets from the kernel: %v", m, st.Stats().Malformed)
	}
	// The path under test must be the one that carried the traffic.
	if cfg.NoOffload && ls.TxFrames != 0 {
		t.Errorf("NoOffload link sent %d frames through the packet socket", ls.TxFrames)
	}
	if !cfg.NoOffload && (ls.TxGSO == 0 || ls.TxFrames < ls.TxPackets/2) {
		t.Errorf("offload link: %d of %d packets through the packet socket, %d segmented by the kernel; want most, and some",
			ls.TxFrames, ls.TxPackets, ls.TxGSO)
	}
}

// iopObserver records the transitions of a stack's connections (state
// changes in order, and every from/to pair seen); the stack calls it with a
// connection's lock held, so it only records.
type iopObserver struct {
	mu  sync.Mutex
	log []string
	saw map[[2]tcpfsm.State]bool
}

func (o *iopObserver) observe(from tcpfsm.State, e tcpfsm.Event, to tcpfsm.State, _ tcpfsm.TransitionID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.saw == nil {
		o.saw = map[[2]tcpfsm.State]bool{}
	}
	o.saw[[2]tcpfsm.State{from, to}] = true
	if from != to { // self-loops (data, ACKs) are too many to keep
		o.log = append(o.log, fmt.Sprintf("%v -%v-> %v", from, e, to))
	}
}

func (o *iopObserver) entered(s tcpfsm.State) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.saw {
		if k[1] == s && k[0] != s {
			return true
		}
	}
	return false
}

func (o *iopObserver) left(s tcpfsm.State) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.saw {
		if k[0] == s && k[1] != s {
			return true
		}
	}
	return false
}

func (o *iopObserver) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprint(o.log)
}

// TestInteropStackClient: the stack in A dials a kernel server in B over
// the raw link; 1 MiB goes each way at once, the stack closes first and
// passes through TIME-WAIT (2*MSL = 200 ms) to CLOSED, the kernel reads EOF
// and closes, and nobody sends a RST.
func TestInteropStackClient(t *testing.T) {
	netnstest.RequireRoot(t)
	ctx := iopCtx(t, 60*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	obs := &iopObserver{}
	opts := iopOpts(tp.AddrA)
	opts.Observer = obs.observe
	st, _, _ := iopRawStack(t, tp, opts)

	up, down := iopData(3, 1<<20), iopData(4, 1<<20)
	var ln net.Listener
	if err := tp.B.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(tp.AddrB, 8080).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kernelDone := make(chan error, 1)
	go func() {
		kernelDone <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(iopDeadline(ctx))
			werr := make(chan error, 1)
			go func() { _, err := c.Write(down); werr <- err }()
			got, err := io.ReadAll(c)
			if err != nil {
				return fmt.Errorf("kernel read after %d bytes: %w", len(got), err)
			}
			if err := <-werr; err != nil {
				return fmt.Errorf("kernel write: %w", err)
			}
			if !bytes.Equal(got, up) {
				return fmt.Errorf("kernel got %d bytes, want the %d sent, contents differ", len(got), len(up))
			}
			return c.Close()
		}()
	}()

	nc, err := st.DialContext(ctx, "tcp", netip.AddrPortFrom(tp.AddrB, 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*fsmrt.Conn)
	c.SetDeadline(iopDeadline(ctx))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(up)
		if err == nil {
			err = c.CloseWrite() // the stack's FIN goes first: active close
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("stack read after %d bytes: %v", len(got), err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("stack write: %v", err)
	}
	if !bytes.Equal(got, down) {
		t.Fatalf("stack got %d bytes, want the %d sent, contents differ", len(got), len(down))
	}
	if err := <-kernelDone; err != nil {
		t.Fatal(err)
	}
	// Both FINs are acknowledged: the stack is in TIME-WAIT (or already past
	// it) and reaches CLOSED after 2*MSL.
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for c.State() != tcpfsm.StateClosed {
		if ctx.Err() != nil {
			t.Fatalf("stack connection stuck in %v; transitions: %v", c.State(), obs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !obs.entered(tcpfsm.StateTimeWait) || !obs.left(tcpfsm.StateTimeWait) {
		t.Fatalf("connection did not pass through TIME-WAIT: %v", obs)
	}
	t.Logf("transitions: %v", obs)
	iopLogStats(t, st)
	if s := st.Stats(); s.ResetsSent != 0 {
		t.Errorf("stack sent %d RSTs on a clean close", s.ResetsSent)
	}
	// The kernel's end (passive close: CLOSE-WAIT, LAST-ACK) is gone too:
	// only its listener is left on the port.
	for {
		states, err := iopKernelSockets(tp.B, 8080)
		if err != nil {
			t.Fatal(err)
		}
		if len(states) == 1 && states[0] == iopTCPListen {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("kernel sockets on port 8080 in states %v, want only the listener (%s)", states, iopTCPListen)
		}
		time.Sleep(5 * time.Millisecond)
	}
	iopWaitIdle(t, st, 5*time.Second)
}

// iopTCPListen is TCP_LISTEN as /proc/net/tcp shows it.
const iopTCPListen = "0A"

// iopKernelSockets returns the states (hex, as in /proc/net/tcp: 01
// ESTABLISHED, 06 TIME_WAIT, 08 CLOSE_WAIT, 09 LAST_ACK, 0A LISTEN) of the
// kernel's IPv4 TCP sockets with local port port in namespace ns.
func iopKernelSockets(ns *netnstest.NS, port uint16) ([]string, error) {
	var states []string
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/tcp") // the thread's namespace
		if err != nil {
			return err
		}
		suffix := fmt.Sprintf(":%04X", port)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 3 && strings.HasSuffix(f[1], suffix) {
				states = append(states, f[3])
			}
		}
		return nil
	})
	return states, err
}

// TestInteropTUN runs the echo workload over a TUN device instead of the
// raw socket: the device fsmtun0 in A has 10.201.(N+128).1/24, the stack
// answers as .2 behind it, and the kernel clients run in A too.
func TestInteropTUN(t *testing.T) {
	netnstest.RequireRoot(t)
	ctx := iopCtx(t, 60*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	aux := tp.AuxPrefix()
	kernelAddr := aux.Addr().Next()
	stackAddr := kernelAddr.Next()
	tun, err := tp.A.AddTUN("fsmtun0", netip.PrefixFrom(kernelAddr, aux.Bits()))
	if err != nil {
		t.Fatal(err)
	}
	st := iopNewStack(t, tun, iopOpts(stackAddr))
	for _, s := range []struct {
		port   int
		handle func(net.Conn)
	}{{iopEchoPort, iopEchoHandler}, {iopReversePort, iopReverseHandler}} {
		ln, err := st.Listen("tcp", ":"+strconv.Itoa(s.port))
		if err != nil {
			t.Fatal(err)
		}
		iopServe(ctx, ln, s.handle)
	}
	iopEchoSuite(t, ctx, tp.A, stackAddr)
	t.Run("refused", func(t *testing.T) {
		_, err := iopDial(ctx, tp.A, netip.AddrPortFrom(stackAddr, iopClosedPort).String())
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial to a port without listener: %v, want ECONNREFUSED", err)
		}
	})
	iopLogStats(t, st)
	t.Logf("tun: %+v", tun.Stats())
	if t.Failed() {
		return
	}
	iopWaitIdle(t, st, 5*time.Second)
	if m := st.Stats().MalformedTotal(); m != 0 {
		t.Errorf("%d malformed packets from the kernel: %v", m, st.Stats().Malformed)
	}
}

// TestInteropLoss: 5% of the TCP packets entering each namespace are dropped
// at random (nftables input hook, so both the kernel and the raw socket miss
// them); a 1 MiB echo between the kernel in B and the stack in A, and a
// 1 MiB upload from the stack to a kernel sink, still arrive exactly.
func TestInteropLoss(t *testing.T) {
	netnstest.RequireRoot(t)
	ctx := iopCtx(t, 120*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	st, _, _ := iopRawStack(t, tp, iopOpts(tp.AddrA))
	ln, err := st.Listen("tcp", ":"+strconv.Itoa(iopEchoPort))
	if err != nil {
		t.Fatal(err)
	}
	iopServe(ctx, ln, iopEchoHandler)
	for _, ns := range []*netnstest.NS{tp.A, tp.B} {
		if err := ns.RandomLoss(5); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	c, err := iopDial(ctx, tp.B, netip.AddrPortFrom(tp.AddrA, iopEchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := iopEcho(ctx, c, iopData(5, 1<<20)); err != nil {
		t.Fatal(err)
	}
	t.Logf("1 MiB echo under 5%% loss each way: %v", time.Since(start))

	// The other direction of the connection setup: the stack dials.
	start = time.Now()
	var kln net.Listener
	if err := tp.B.Do(func() (err error) {
		kln, err = net.Listen("tcp4", netip.AddrPortFrom(tp.AddrB, 8081).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kln.Close()
	sum := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		c, err := kln.Accept()
		if err == nil {
			c.SetDeadline(iopDeadline(ctx))
			io.Copy(h, c)
			c.Close()
		}
		sum <- [32]byte(h.Sum(nil))
	}()
	up := iopData(6, 1<<20)
	sc, err := st.DialContext(ctx, "tcp", netip.AddrPortFrom(tp.AddrB, 8081).String())
	if err != nil {
		t.Fatal(err)
	}
	sc.SetDeadline(iopDeadline(ctx))
	if _, err := sc.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := sc.(iopCloseWriter).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, sc); err != nil { // to the kernel's FIN
		t.Fatal(err)
	}
	sc.Close()
	if got := <-sum; got != sha256.Sum256(up) {
		t.Fatal("kernel sink received different bytes")
	}
	t.Logf("1 MiB upload from the stack under 5%% loss each way: %v", time.Since(start))
	iopLogStats(t, st)
	for _, ns := range []*netnstest.NS{tp.A, tp.B} {
		_, lost, err := ns.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s dropped %d packets", ns.Name, lost)
		if lost == 0 {
			t.Errorf("%s: RandomLoss dropped nothing", ns.Name)
		}
	}
	if st.Stats().Retransmits == 0 {
		t.Error("no retransmission under 5% loss")
	}
	iopWaitIdle(t, st, 10*time.Second)
}

// iopSetChecksums recomputes the IPv4 header checksum and, if tcp, the TCP
// checksum over the IP payload (per the total length field).
func iopSetChecksums(p []byte, tcp bool) {
	ihl := int(p[0]&0x0f) * 4
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], ^wire.Checksum(p[:ihl], 0))
	if !tcp {
		return
	}
	total := int(binary.BigEndian.Uint16(p[2:4]))
	seg := p[ihl:total]
	seg[16], seg[17] = 0, 0
	ph := wire.PseudoHeaderChecksum([4]byte(p[12:16]), [4]byte(p[16:20]), wire.ProtocolTCP, uint16(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], ^wire.Checksum(seg, ph))
}

// iopWithTCPBytes returns a packet whose TCP header is followed by opts
// (counted in the data offset, which is doff words unless doff is -1) and
// payload, with lengths and checksums fixed up.
func iopWithTCPBytes(base []byte, opts []byte, doff int, payload []byte) []byte {
	p := append(append(append([]byte(nil), base[:40]...), opts...), payload...)
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	if doff < 0 {
		doff = (20 + len(opts)) / 4
	}
	p[20+12] = byte(doff << 4)
	iopSetChecksums(p, true)
	return p
}

// TestInteropMalformed throws 2,000 malformed and odd packets at the stack,
// then checks that it still serves a new connection and counted every
// malformed packet by reason.
//
// Packets the kernel delivers to the raw socket (its IP layer accepts them,
// and it does not check TCP before raw delivery) are sent for real from B
// with a raw IPPROTO_RAW socket: bad TCP checksums, truncated TCP headers,
// bad data offsets, bad options, fragmented packets (reassembled by A's
// kernel before delivery) and all 256 combinations of the flag byte with
// valid checksums. Packets A's kernel drops in ip_rcv (bad IHL, version,
// header checksum or total length) or never delivers unreassembled
// (fragments), and non-TCP packets, cannot reach the stack through the
// kernel; those are handed to the stack's link receiver directly.
func TestInteropMalformed(t *testing.T) {
	netnstest.RequireRoot(t)
	ctx := iopCtx(t, 60*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	st, inj, raw := iopRawStack(t, tp, iopOpts(tp.AddrA))
	ln, err := st.Listen("tcp", ":"+strconv.Itoa(iopEchoPort))
	if err != nil {
		t.Fatal(err)
	}
	iopServe(ctx, ln, iopEchoHandler)

	var fd int
	if err := tp.B.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	dst := &unix.SockaddrInet4{Addr: tp.AddrA.As4()}
	sentKernel := 0
	send := func(p []byte) {
		t.Helper()
		if err := unix.Sendto(fd, p, 0, dst); err != nil {
			t.Fatalf("sendto (%d bytes): %v", len(p), err)
		}
		sentKernel++
		if sentKernel%64 == 0 {
			time.Sleep(time.Millisecond) // stay well below netdev_max_backlog
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	seg := func(port uint16, flags uint8, payload []byte) []byte {
		return netnstest.BuildTCP(netnstest.Segment{
			Src: netip.AddrPortFrom(tp.AddrB, port), Dst: netip.AddrPortFrom(tp.AddrA, iopEchoPort),
			Seq: rng.Uint32(), Ack: rng.Uint32(), Flags: flags, Payload: payload,
		})
	}
	var want [wire.NumDropReasons]uint64
	before := st.Stats()

	// --- Through the kernel, from B. ---
	// Bad TCP checksum: SYNs, ACKs and data segments with one bit flipped.
	for i := range 300 {
		p := seg(uint16(20000+i), []uint8{netnstest.FlagSYN, netnstest.FlagACK, netnstest.FlagACK | netnstest.FlagPSH}[i%3], make([]byte, i%100))
		p[20+16+i%2] ^= 1 << (i % 8) // checksum field
		send(p)
		want[wire.BadTCPChecksum]++
	}
	// Truncated TCP header: 0-19 bytes of TCP after a valid IPv4 header.
	for i := range 200 {
		p := seg(uint16(21000+i), netnstest.FlagSYN, nil)
		p = p[:20+i%20]
		binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
		iopSetChecksums(p, false)
		send(p)
		want[wire.TooShort]++
	}
	// Bad data offset: below 5 words, or past the end of the segment.
	for i := range 200 {
		base := seg(uint16(22000+i), netnstest.FlagACK, nil)
		var p []byte
		if i%2 == 0 {
			p = iopWithTCPBytes(base, nil, i/2%5, make([]byte, i%30)) // 0..4
		} else {
			p = iopWithTCPBytes(base, nil, 6+i/2%10, make([]byte, i%4)) // 6..15 words > 20..23 bytes
		}
		send(p)
		want[wire.BadDataOffset]++
	}
	// Bad options (valid checksums): lengths 0 and 1, past the option area,
	// wrong lengths for MSS and window scale.
	badOpts := [][]byte{
		{2, 3, 0, 0},      // MSS, length 3
		{3, 4, 7, 0},      // window scale, length 4
		{8, 0, 0, 0},      // length 0
		{5, 1, 1, 1},      // length 1
		{1, 1, 1, 30},     // length past the area
		{2, 4, 5, 180, 3}, // MSS ok, then window scale with length 0 (padding)
		{30, 2, 8, 2},     // an unknown kind (skipped), then timestamps of length 2
	}
	for i := range 150 {
		o := badOpts[i%len(badOpts)]
		o = append(o[:len(o):len(o)], make([]byte, (4-len(o)%4)%4)...) // pad to words
		send(iopWithTCPBytes(seg(uint16(23000+i), netnstest.FlagSYN, nil), o, -1, nil))
		want[wire.BadOption]++
	}
	// Fragments: 50 segments with a bad TCP checksum cut in two fragments,
	// which A's kernel reassembles before raw delivery; then 50 lone first
	// fragments, which it keeps waiting for the rest and never delivers.
	for i := range 100 {
		p := seg(uint16(24000+i), netnstest.FlagACK|netnstest.FlagPSH, make([]byte, 64))
		p[20+16] ^= 0xff
		binary.BigEndian.PutUint16(p[4:6], uint16(0x4000+i)) // IP ID
		first := append([]byte(nil), p[:20+48]...)
		binary.BigEndian.PutUint16(first[2:4], uint16(len(first)))
		binary.BigEndian.PutUint16(first[6:8], 0x2000) // MF, offset 0
		iopSetChecksums(first, false)
		send(first)
		if i < 50 {
			second := append(append([]byte(nil), p[:20]...), p[20+48:]...)
			binary.BigEndian.PutUint16(second[2:4], uint16(len(second)))
			binary.BigEndian.PutUint16(second[6:8], 48/8) // offset 6 words
			iopSetChecksums(second, false)
			send(second)
			want[wire.BadTCPChecksum]++
		}
	}
	// Every value of the flag byte, valid checksums, to a listening and to a
	// closed port: well-formed, so not counted as malformed.
	for f := range 256 {
		for _, port := range []uint16{iopEchoPort, iopClosedPort} {
			p := netnstest.BuildTCP(netnstest.Segment{
				Src: netip.AddrPortFrom(tp.AddrB, uint16(30000+f)), Dst: netip.AddrPortFrom(tp.AddrA, port),
				Seq: rng.Uint32(), Ack: rng.Uint32(), Payload: make([]byte, f%3),
			})
			p[20+13] = byte(f)
			iopSetChecksums(p, true)
			send(p)
		}
	}

	// --- Straight into the link's receiver: what the kernel never delivers. ---
	injected := 0
	inject := func(p []byte, r wire.DropReason) {
		inj.Inject(p)
		injected++
		want[r]++
	}
	good := func(i int) []byte { return seg(uint16(25000+i), netnstest.FlagSYN, make([]byte, i%16)) }
	for i := range 40 { // shorter than an IPv4 header
		inject(good(i)[:i%20], wire.TooShort)
	}
	for i := range 60 { // IP version not 4
		p := good(i)
		p[0] = byte([]int{0, 1, 6, 15}[i%4]<<4) | 5
		inject(p, wire.BadVersion)
	}
	for i := range 80 { // IHL below 5
		p := good(i)
		p[0] = 0x40 | byte(i%5)
		inject(p, wire.BadIHL)
	}
	for i := range 80 { // total length past the packet, or below the header
		p := good(i)
		if i%2 == 0 {
			binary.BigEndian.PutUint16(p[2:4], uint16(len(p)+1+i))
		} else {
			binary.BigEndian.PutUint16(p[2:4], uint16(i%20))
		}
		iopSetChecksums(p, false)
		inject(p, wire.BadTotalLength)
	}
	for i := range 80 { // IPv4 header checksum
		p := good(i)
		p[10+i%2] ^= 1 << (i % 8)
		inject(p, wire.BadIPChecksum)
	}
	for i := range 48 { // not TCP (UDP, ICMP, ...)
		p := good(i)
		p[9] = []byte{1, 17, 47, 50}[i%4]
		iopSetChecksums(p, false)
		inject(p, wire.NotTCP)
	}
	for i := range 100 { // fragments: MF set, or a non-zero offset
		p := good(i)
		if i%2 == 0 {
			binary.BigEndian.PutUint16(p[6:8], 0x2000|uint16(i%8))
		} else {
			binary.BigEndian.PutUint16(p[6:8], uint16(1+i))
		}
		iopSetChecksums(p, false)
		inject(p, wire.Fragment)
	}
	if total := sentKernel + injected; total != 2000 {
		t.Fatalf("threw %d packets, want 2000", total)
	}

	// Kernel-path packets arrive asynchronously: wait for the counts.
	var wantTotal uint64
	for _, n := range want {
		wantTotal += n
	}
	deadline := time.Now().Add(5 * time.Second)
	var got [wire.NumDropReasons]uint64
	for {
		s := st.Stats()
		var gotTotal uint64
		for r := range got {
			got[r] = s.Malformed[r] - before.Malformed[r]
			gotTotal += got[r]
		}
		if gotTotal >= wantTotal || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // anything extra would show up now
	s := st.Stats()
	for r := range got {
		got[r] = s.Malformed[r] - before.Malformed[r]
	}
	for r := range wire.NumDropReasons {
		if r == wire.NoDrop {
			continue
		}
		t.Logf("%-15v got %4d want %4d", r, got[r], want[r])
		if got[r] != want[r] {
			t.Errorf("Malformed[%v] = %d, want %d", r, got[r], want[r])
		}
	}
	t.Logf("sent %d through the kernel, injected %d; raw link %+v", sentKernel, injected, raw.Stats())
	iopLogStats(t, st)
	if s.SegmentsIn-before.SegmentsIn < 512 {
		t.Errorf("only %d well-formed segments processed, want >= 512 (the flag sweep)", s.SegmentsIn-before.SegmentsIn)
	}

	// The stack still works.
	c, err := iopDial(ctx, tp.B, netip.AddrPortFrom(tp.AddrA, iopEchoPort).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := iopEcho(ctx, c, iopData(8, 256<<10)); err != nil {
		t.Fatal(err)
	}
	// Half-open connections from the SYNs of the flag sweep die (B's kernel
	// resets their SYN,ACKs), and everything else closes: no leak.
	iopWaitIdle(t, st, 10*time.Second)
}

// TestInteropHTTP: the kernel's net/http client in B fetches from an
// http.Server on the stack's listener in A, over the raw link: GETs of
// several sizes on kept-alive connections, concurrent fetches, and a POST
// echoed back; every body checked by hash.
func TestInteropHTTP(t *testing.T) {
	netnstest.RequireRoot(t)
	ctx := iopCtx(t, 60*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	st, _, _ := iopRawStack(t, tp, iopOpts(tp.AddrA))
	ln, err := st.Listen("tcp", ":"+strconv.Itoa(iopHTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 30 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet:
				n, err := strconv.Atoi(r.URL.Query().Get("n"))
				if err != nil || n < 0 || n > 8<<20 {
					http.Error(w, "bad n", http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(n))
				w.Write(iopData(uint64(n), n))
			case http.MethodPost:
				b, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.Write(b)
			}
		}),
	}
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return iopDial(ctx, tp.B, addr)
		},
		MaxIdleConnsPerHost: 4,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "http://" + netip.AddrPortFrom(tp.AddrA, iopHTTPPort).String()
	fetch := func(method string, n int, body []byte) error {
		req, err := http.NewRequestWithContext(ctx, method, base+"/?n="+strconv.Itoa(n), bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("%s n=%d: body after %d bytes: %w", method, n, len(got), err)
		}
		want := body
		if method == http.MethodGet {
			want = iopData(uint64(n), n)
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			return fmt.Errorf("%s n=%d: status %d, %d bytes (want %d), contents differ", method, n, resp.StatusCode, len(got), len(want))
		}
		return nil
	}
	sizes := []int{0, 1, 1459, 1460, 1461, 65536, 300000, 1 << 20}
	for _, n := range sizes { // sequential: one kept-alive connection
		if err := fetch(http.MethodGet, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			if i%4 == 3 {
				errs <- fetch(http.MethodPost, 0, iopData(uint64(1000+i), 200000+i))
			} else {
				errs <- fetch(http.MethodGet, sizes[i%len(sizes)], nil)
			}
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	iopLogStats(t, st)
}

// TestInteropPortReservation: over the raw link the stack claims its ports
// in A's kernel (link.PortReserver). Listening on a port a kernel socket
// holds fails with EADDRINUSE; while a dialed connection lives (TIME-WAIT
// included) its local port cannot be bound in A; afterwards it can.
func TestInteropPortReservation(t *testing.T) {
	netnstest.RequireRoot(t)
	ctx := iopCtx(t, 30*time.Second)
	tp := netnstest.New(t, netnstest.Options{})
	st, _, _ := iopRawStack(t, tp, iopOpts(tp.AddrA))
	kernelBind := func(port uint16) error {
		return tp.A.Do(func() error {
			ln, err := net.Listen("tcp4", netip.AddrPortFrom(tp.AddrA, port).String())
			if err == nil {
				ln.Close()
			}
			return err
		})
	}

	var held net.Listener
	if err := tp.A.Do(func() (err error) { held, err = net.Listen("tcp4", netip.AddrPortFrom(tp.AddrA, 0).String()); return }); err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	hp := held.Addr().(*net.TCPAddr).Port
	if ln, err := st.Listen("tcp", ":"+strconv.Itoa(hp)); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("stack Listen on a port A's kernel holds: %v, want EADDRINUSE", err)
	}

	sink, err := tp.B.StartSink(netip.AddrPortFrom(tp.AddrB, 0))
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.DialContext(ctx, "tcp", sink.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := uint16(c.LocalAddr().(*net.TCPAddr).Port)
	if err := kernelBind(local); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("kernel bind on the stack's port %d during the connection: %v, want EADDRINUSE", local, err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := sink.WaitReceived(5, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close() // the stack closes first: TIME-WAIT (2 MSL = 200 ms) keeps the port
	if err := kernelBind(local); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("kernel bind on port %d right after Close: %v, want EADDRINUSE (TIME-WAIT)", local, err)
	}
	iopWaitIdle(t, st, 5*time.Second)
	if err := kernelBind(local); err != nil {
		t.Fatalf("kernel bind on port %d after the connection ended: %v", local, err)
	}
}
