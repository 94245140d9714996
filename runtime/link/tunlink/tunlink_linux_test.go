//go:build linux

package tunlink_test

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

	"github.com/fsmgen/fsmgen/runtime/link"
	"github.com/fsmgen/fsmgen/runtime/link/tunlink"
	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// setup creates a topology and a TUN "fsmtun0" in A owning the aux subnet
// 10.201.M.0/24: the kernel has 10.201.M.1, the stack answers as 10.201.M.2.
func setup(t *testing.T) (tp *netnstest.Topology, l *tunlink.Link, kernel, stack netip.Addr) {
	t.Helper()
	tp = netnstest.New(t, netnstest.Options{})
	kernel = tp.AuxPrefix().Addr().Next()
	stack = kernel.Next()
	l, err := tp.A.AddTUN("fsmtun0", netip.PrefixFrom(kernel, 24))
	if err != nil {
		t.Fatal(err)
	}
	return tp, l, kernel, stack
}

// TestDialThroughTUN: a kernel socket in A dials 10.201.M.2; the TUN
// receiver sees the SYN, answers with a SYN-ACK through Send, and the dial
// completes (the kernel's ACK comes back through the TUN).
func TestDialThroughTUN(t *testing.T) {
	tp, l, _, stack := setup(t)
	capt := netnstest.NewCapture(64)
	l.SetReceiver(capt.Receive)
	dst := netip.AddrPortFrom(stack, 8080)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		var c net.Conn
		err := tp.A.Do(func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp4", dst.String())
			return err
		})
		res <- result{c, err}
	}()

	syn, pkt, ok := capt.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Dst == dst })
	if !ok {
		t.Fatal("no SYN seen on the TUN")
	}
	if syn.Flags != netnstest.FlagSYN || !netnstest.ChecksumsOK(pkt) {
		t.Fatalf("got flags %#x checksums ok=%v, want a valid SYN", syn.Flags, netnstest.ChecksumsOK(pkt))
	}
	const isn = 77_000
	synack := netnstest.BuildTCP(netnstest.Segment{
		Src: dst, Dst: syn.Src, Seq: isn, Ack: syn.Seq + 1, Flags: netnstest.FlagSYN | netnstest.FlagACK,
	})
	if err := l.Send(synack); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("dial: %v", r.err)
	}
	defer r.c.Close()
	ack, _, ok := capt.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Dst == dst && s.Flags&netnstest.FlagACK != 0 })
	if !ok || ack.Ack != isn+1 || ack.Seq != syn.Seq+1 {
		t.Fatalf("no/bad ACK of our SYN-ACK: %+v", ack)
	}
	st := l.Stats()
	t.Logf("dial %v -> %v completed through the TUN; stats %+v", syn.Src, dst, st)
	if st.TxPackets != 1 || st.RxPackets < 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestZeroAllocs sends SYNs from the stack address to a closed port of the
// kernel through the TUN; every RST comes back through the TUN. Neither
// direction may allocate.
func TestZeroAllocs(t *testing.T) {
	_, l, kernel, stack := setup(t)
	var got atomic.Int64
	l.SetReceiver(func(pkt []byte) {
		if pkt[9] == 6 && pkt[33]&netnstest.FlagRST != 0 {
			got.Add(1)
		}
	})
	pkt := netnstest.BuildTCP(netnstest.Segment{
		Src: netip.AddrPortFrom(stack, 40000), Dst: netip.AddrPortFrom(kernel, 9), Seq: 1, Flags: netnstest.FlagSYN,
	})
	wait := func(n int64) {
		deadline := time.Now().Add(5 * time.Second)
		for got.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("received %d of %d RSTs", got.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for range 100 {
		if err := l.Send(pkt); err != nil {
			t.Fatal(err)
		}
	}
	wait(100)
	const rounds, burst = 50, 100
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for i := range rounds {
		for range burst {
			if err := l.Send(pkt); err != nil {
				t.Fatal(err)
			}
		}
		wait(100 + int64(i+1)*burst)
	}
	runtime.ReadMemStats(&ms1)
	allocs := ms1.Mallocs - ms0.Mallocs
	t.Logf("%d SYNs sent, %d RSTs received, %d allocations in the process", rounds*burst, got.Load()-100, allocs)
	if allocs > rounds*burst/100 {
		t.Errorf("%d allocations for %d packets", allocs, rounds*burst)
	}
}

func readers() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "tunlink.(*Link).readLoop")
}

// TestClose checks that Close unblocks and ends the reader goroutine,
// removes the device and makes Send fail with link.ErrClosed.
func TestClose(t *testing.T) {
	base := readers()
	tp, l, kernel, stack := setup(t)
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
	if _, err := tp.A.Netlink().LinkByName("fsmtun0"); err == nil {
		t.Fatal("TUN device still exists after Close")
	}
	pkt := netnstest.BuildTCP(netnstest.Segment{Src: netip.AddrPortFrom(stack, 1), Dst: netip.AddrPortFrom(kernel, 1)})
	if err := l.Send(pkt); !errors.Is(err, link.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestOpenConfig checks MTU setting, kernel-chosen names and bad configs.
func TestOpenConfig(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	err := tp.A.Do(func() error {
		l, err := tunlink.Open(tunlink.Config{Name: "fsm%d", MTU: 1280})
		if err != nil {
			return err
		}
		defer l.Close()
		if !strings.HasPrefix(l.Name(), "fsm") || l.Name() == "fsm%d" || l.MTU() != 1280 {
			t.Errorf("name %q MTU %d", l.Name(), l.MTU())
		}
		dev, err := tp.A.Netlink().LinkByName(l.Name())
		if err != nil {
			return err
		}
		if dev.Attrs().MTU != 1280 {
			t.Errorf("device MTU %d", dev.Attrs().MTU)
		}
		big := make([]byte, 1281)
		big[0] = 0x45
		if err := l.Send(big); !errors.Is(err, tunlink.ErrTooBig) {
			t.Errorf("oversize Send: %v", err)
		}
		if err := l.Send([]byte{0x60}); !errors.Is(err, tunlink.ErrBadPacket) {
			t.Errorf("non-IPv4 Send: %v", err)
		}
		for _, cfg := range []tunlink.Config{{Name: "a-name-far-too-long"}, {Name: "x", MTU: 20}} {
			if l, err := tunlink.Open(cfg); err == nil {
				l.Close()
				t.Errorf("Open(%+v) succeeded", cfg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
