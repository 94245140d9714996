//go:build linux

package rawlink_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fsmgen/fsmgen/runtime/link"
	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
	"github.com/fsmgen/fsmgen/tests/netnstest"
)

func open(t testing.TB, ns *netnstest.NS, addr netip.Addr) *rawlink.Link {
	t.Helper()
	var l *rawlink.Link
	if err := ns.Do(func() (err error) { l, err = rawlink.Open(rawlink.Config{LocalAddr: addr}); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func listen(t testing.TB, ns *netnstest.NS, addr netip.Addr) (net.Listener, netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp4", netip.AddrPortFrom(addr, 0).String()); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestSYNThroughKernel sends a hand-built SYN from a raw link in A to a kernel
// listener in B and receives the SYN-ACK. Without the RST rule A's kernel
// answers that SYN-ACK with its own RST (seen by an observer raw link in B);
// with DropKernelRSTs it does not, while a RST the link sends does get out.
func TestSYNThroughKernel(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	_, srv := listen(t, tp.B, tp.AddrB)
	// Through the IP_HDRINCL socket, whose packets pass the output hook:
	// the packet socket's would bypass the rule under test.
	la := openConfig(t, tp.A, rawlink.Config{LocalAddr: tp.AddrA, NoOffload: true})
	ca := netnstest.NewCapture(256)
	la.SetReceiver(ca.Receive)
	obs := open(t, tp.B, tp.AddrB) // observer: every TCP packet B receives
	cb := netnstest.NewCapture(256)
	obs.SetReceiver(cb.Receive)

	const isn = 1_000_000
	handshake := func(port uint16) netnstest.Segment {
		t.Helper()
		me := netip.AddrPortFrom(tp.AddrA, port)
		if err := la.Send(netnstest.BuildTCP(netnstest.Segment{Src: me, Dst: srv, Seq: isn, Flags: netnstest.FlagSYN})); err != nil {
			t.Fatal(err)
		}
		sa, pkt, ok := ca.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Dst == me && s.Src == srv })
		if !ok {
			t.Fatalf("port %d: no answer to our SYN", port)
		}
		if sa.Flags != netnstest.FlagSYN|netnstest.FlagACK || sa.Ack != isn+1 {
			t.Fatalf("port %d: got flags %#x ack %d, want SYN-ACK ack %d", port, sa.Flags, sa.Ack, isn+1)
		}
		if !netnstest.ChecksumsOK(pkt) {
			t.Fatalf("port %d: SYN-ACK with bad checksum: %x", port, pkt)
		}
		if _, _, ok := cb.WaitTCP(time.Second, func(s netnstest.Segment) bool {
			return s.Src == me && s.Flags == netnstest.FlagSYN
		}); !ok {
			t.Fatalf("port %d: observer did not see our SYN", port)
		}
		return sa
	}
	rstFrom := func(port uint16, wait time.Duration) bool {
		_, _, ok := cb.WaitTCP(wait, func(s netnstest.Segment) bool {
			return s.Src == netip.AddrPortFrom(tp.AddrA, port) && s.Flags&netnstest.FlagRST != 0
		})
		return ok
	}

	// Control: without the rule, A's kernel resets the connection it does not know.
	handshake(40001)
	if !rstFrom(40001, 3*time.Second) {
		t.Fatal("control: A's kernel RST not observed in B; the observer is blind")
	}

	// With the rule, the kernel's RST is dropped...
	if err := tp.A.DropKernelRSTs(); err != nil {
		t.Fatal(err)
	}
	sa := handshake(40000)
	if rstFrom(40000, 500*time.Millisecond) {
		t.Fatal("A's kernel RST got out despite DropKernelRSTs")
	}
	dropped, _, err := tp.A.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	if dropped < 1 {
		t.Fatalf("nft counter: %d kernel RSTs dropped, want >= 1", dropped)
	}
	// ...and ours (marked) is not.
	rst := netnstest.BuildTCP(netnstest.Segment{
		Src: netip.AddrPortFrom(tp.AddrA, 40000), Dst: srv, Seq: sa.Ack, Flags: netnstest.FlagRST,
	})
	if err := la.Send(rst); err != nil {
		t.Fatal(err)
	}
	if !rstFrom(40000, 3*time.Second) {
		t.Fatal("our marked RST was not observed in B")
	}
	dropped2, _, _ := tp.A.Dropped()
	t.Logf("kernel RSTs dropped by the rule: %d (before our RST) %d (after)", dropped, dropped2)
	if st := la.Stats(); st.TxPackets != 3 || st.TxErrors != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestFilter checks that only IPv4 TCP packets to LocalAddr are delivered,
// though the kernel hands raw sockets every TCP packet it delivers locally.
func TestFilter(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	other := tp.AddrA.Next().Next() // 10.201.N.3, a second address of A
	dev, err := tp.A.Netlink().LinkByName(tp.VethA)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.A.Netlink().AddrAdd(dev, mustAddr(netip.PrefixFrom(other, 24))); err != nil {
		t.Fatal(err)
	}
	la := open(t, tp.A, tp.AddrA)
	ca := netnstest.NewCapture(64)
	la.SetReceiver(ca.Receive)
	lb := open(t, tp.B, tp.AddrB)
	from := netip.AddrPortFrom(tp.AddrB, 50000)
	for _, dst := range []netip.Addr{other, tp.AddrA} {
		if err := lb.Send(netnstest.BuildTCP(netnstest.Segment{Src: from, Dst: netip.AddrPortFrom(dst, 7), Seq: 1, Flags: netnstest.FlagSYN})); err != nil {
			t.Fatal(err)
		}
	}
	p, ok := ca.Next(3 * time.Second)
	if !ok {
		t.Fatal("nothing received")
	}
	if s, _ := netnstest.ParseTCP(p); s.Dst.Addr() != tp.AddrA {
		t.Fatalf("delivered a packet to %v", s.Dst)
	}
	if p, ok := ca.Next(300 * time.Millisecond); ok {
		s, _ := netnstest.ParseTCP(p)
		t.Fatalf("delivered an extra packet %+v", s)
	}
	// Bad sends.
	if err := lb.Send([]byte{0x60, 0, 0, 0}); !errors.Is(err, rawlink.ErrBadPacket) {
		t.Fatalf("IPv6 send: %v", err)
	}
	if err := lb.Send(make([]byte, 1501)); !errors.Is(err, rawlink.ErrBadPacket) && !errors.Is(err, rawlink.ErrTooBig) {
		t.Fatalf("oversize send: %v", err)
	}
	big := netnstest.BuildTCP(netnstest.Segment{Src: from, Dst: netip.AddrPortFrom(tp.AddrA, 7), Payload: make([]byte, 1500)})
	if err := lb.Send(big); !errors.Is(err, rawlink.ErrTooBig) {
		t.Fatalf("oversize send: %v", err)
	}
}

// TestWirePackets checks what a raw socket sees of a kernel bulk transfer
// A→B: with the default topology (veth offloads off) every packet is at
// most MTU-sized with valid checksums. With offloads on it only logs what
// it sees (partial checksums, GSO-sized packets), the pitfall the default
// avoids.
func TestWirePackets(t *testing.T) {
	for _, keep := range []bool{false, true} {
		tp := netnstest.New(t, netnstest.Options{KeepOffloads: keep})
		obs := open(t, tp.B, tp.AddrB)
		var n, bad, big, maxLen atomic.Int64
		obs.SetReceiver(func(pkt []byte) {
			n.Add(1)
			if !netnstest.ChecksumsOK(pkt) {
				bad.Add(1)
			}
			if len(pkt) > tp.MTU {
				big.Add(1)
			}
			if int64(len(pkt)) > maxLen.Load() {
				maxLen.Store(int64(len(pkt)))
			}
		})
		sink, err := tp.B.StartSink(netip.AddrPortFrom(tp.AddrB, 0))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var c net.Conn
		err = tp.A.Do(func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp4", sink.Addr().String())
			return err
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		const total = 4 << 20
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(make([]byte, total)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := sink.WaitReceived(total, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		t.Logf("offloads kept=%v: observer saw %d packets, %d with bad checksums, %d larger than MTU (max %d bytes), stats %+v",
			keep, n.Load(), bad.Load(), big.Load(), maxLen.Load(), obs.Stats())
		// The observer may miss packets when its receive buffer overflows
		// (the kernel's TCP still gets them); it must see most of them.
		if !keep && (bad.Load() != 0 || big.Load() != 0 || n.Load() < total/1500/2) {
			t.Fatal("with offloads off, raw packets must be wire-like")
		}
	}
}

// TestOverflowCounted blocks the receiver while a burst overflows the
// receive buffer and checks that Stats.RxOverflow accounts for every loss.
func TestOverflowCounted(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	la := open(t, tp.A, tp.AddrA)
	var lb *rawlink.Link
	if err := tp.B.Do(func() (err error) {
		lb, err = rawlink.Open(rawlink.Config{LocalAddr: tp.AddrB, RecvBuffer: 64 << 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	gate := make(chan struct{})
	lb.SetReceiver(func(pkt []byte) { <-gate })
	pkt := netnstest.BuildTCP(netnstest.Segment{
		Src: netip.AddrPortFrom(tp.AddrA, 40000), Dst: netip.AddrPortFrom(tp.AddrB, 40000),
		Flags: netnstest.FlagRST, Payload: make([]byte, 1400),
	})
	const burst = 300
	for range burst {
		if err := la.Send(pkt); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	// The drop count rides on packets queued after the drops.
	deadline := time.Now().Add(5 * time.Second)
	sent := int64(burst)
	for {
		st := lb.Stats()
		if int64(st.RxPackets+st.RxOverflow) == sent {
			t.Logf("burst of %d: %d delivered, %d overflowed", burst, st.RxPackets, st.RxOverflow)
			if st.RxOverflow == 0 {
				t.Fatal("expected overflow with a 64 KiB receive buffer")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %d, stats %+v", sent, st)
		}
		time.Sleep(10 * time.Millisecond)
		if st2 := lb.Stats(); st2 == st {
			// Quiet: send one more packet to carry the drop count.
			if err := la.Send(pkt); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
}

// TestZeroAllocs checks that steady-state Send and receive do not allocate.
func TestZeroAllocs(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	if err := tp.B.DropKernelRSTs(); err != nil {
		t.Fatal(err)
	}
	la := open(t, tp.A, tp.AddrA)
	lb := open(t, tp.B, tp.AddrB)
	var got atomic.Int64
	lb.SetReceiver(func(pkt []byte) { got.Add(1) })
	pkt := netnstest.BuildTCP(netnstest.Segment{
		Src: netip.AddrPortFrom(tp.AddrA, 40000), Dst: netip.AddrPortFrom(tp.AddrB, 40000),
		Seq: 1, Ack: 1, Flags: netnstest.FlagACK, Payload: make([]byte, 1000),
	})
	wait := func(n int64) {
		deadline := time.Now().Add(5 * time.Second)
		for got.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("received %d of %d", got.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	send := func(k int) {
		for range k {
			if err := la.Send(pkt); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(100)
	wait(100)
	if a := testing.AllocsPerRun(1000, func() { send(1) }); a != 0 {
		t.Errorf("Send: %v allocs per packet", a)
	}
	wait(1100)
	if la.Stats().TxFrames == 0 {
		t.Fatal("Send did not take the packet socket")
	}
	// SendGSO: one 64 KiB frame the kernel cuts into 45 segments.
	big := netnstest.BuildTCP(netnstest.Segment{
		Src: netip.AddrPortFrom(tp.AddrA, 40000), Dst: netip.AddrPortFrom(tp.AddrB, 40000),
		Seq: 1, Ack: 1, Flags: netnstest.FlagACK, Payload: make([]byte, 65535-40),
	})
	if a := testing.AllocsPerRun(20, func() {
		if err := la.SendGSO(big, 1460); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("SendGSO: %v allocs per 64 KiB", a)
	}
	// SendGather: the same, in three pieces.
	parts := [][]byte{big[:40], big[40:30001], big[30001:]}
	if a := testing.AllocsPerRun(20, func() {
		if err := la.SendGather(parts, 1460); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("SendGather: %v allocs per 64 KiB", a)
	}
	wait(1100 + 2*21*45)
	got.Store(1100)
	const rounds, burst = 50, 100
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for i := range rounds {
		send(burst)
		wait(1100 + int64(i+1)*burst)
	}
	runtime.ReadMemStats(&ms1)
	allocs := ms1.Mallocs - ms0.Mallocs
	t.Logf("%d packets sent and received, %d allocations in the process", rounds*burst, allocs)
	if allocs > rounds*burst/100 {
		t.Errorf("%d allocations for %d packets", allocs, rounds*burst)
	}
}

func readers() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "rawlink.(*Link).readLoop")
}

// TestClose checks that Close unblocks and ends the reader goroutine, and
// that Send fails with link.ErrClosed afterwards.
func TestClose(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	base, g0 := readers(), runtime.NumGoroutine()
	l := open(t, tp.A, tp.AddrA)
	// The reader may not have been scheduled yet.
	for deadline := time.Now().Add(2 * time.Second); readers() != base+1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := readers(); n != base+1 {
		t.Fatalf("reader goroutines: %d, want %d", n, base+1)
	}
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked")
	}
	// Close waited for the reader, which may still be unwinding.
	for deadline := time.Now().Add(2 * time.Second); readers() != base && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := readers(); n != base {
		t.Fatalf("reader goroutines after Close: %d, want %d", n, base)
	}
	if g := runtime.NumGoroutine(); g > g0 {
		t.Errorf("goroutines: %d before Open, %d after Close", g0, g)
	}
	pkt := netnstest.BuildTCP(netnstest.Segment{Src: netip.AddrPortFrom(tp.AddrA, 1), Dst: netip.AddrPortFrom(tp.AddrB, 1)})
	if err := l.Send(pkt); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	for _, cfg := range []rawlink.Config{
		{},
		{LocalAddr: netip.MustParseAddr("::1")},
		{LocalAddr: tp.AddrA, MTU: 10},
		{LocalAddr: netip.MustParseAddr("10.201.255.77")}, // not an address of A
	} {
		err := tp.A.Do(func() error {
			l, err := rawlink.Open(cfg)
			if err == nil {
				l.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func mustAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

// BenchmarkSendRecv measures raw link to raw link over the veth: MTU-sized
// packets sent by a link in A, received by a link in B (at most 1024 in
// flight, so nothing overflows the 4 MiB receive buffer). The packets are
// RSTs for no connection, which B's kernel drops silently, so the number is
// the link's own cost plus the kernel's delivery path.
func BenchmarkSendRecv(b *testing.B) {
	tp := netnstest.New(b, netnstest.Options{})
	la := open(b, tp.A, tp.AddrA)
	lb := open(b, tp.B, tp.AddrB)
	var got atomic.Int64
	lb.SetReceiver(func(pkt []byte) { got.Add(1) })
	pkt := netnstest.BuildTCP(netnstest.Segment{
		Src: netip.AddrPortFrom(tp.AddrA, 40000), Dst: netip.AddrPortFrom(tp.AddrB, 40000),
		Seq: 1, Flags: netnstest.FlagRST, Payload: make([]byte, 1460),
	})
	deadline := time.Now().Add(time.Minute)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for spins := 1; int64(i)-got.Load() > 1024; spins++ {
			if spins%4096 == 0 && time.Now().After(deadline) {
				b.Fatalf("stalled: %d sent, %d received", i, got.Load())
			}
			runtime.Gosched()
		}
		if err := la.Send(pkt); err != nil {
			b.Fatal(err)
		}
	}
	for got.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d sent, %d received", b.N, got.Load())
		}
		runtime.Gosched()
	}
}
