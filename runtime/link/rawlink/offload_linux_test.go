//go:build linux

package rawlink_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
	"github.com/fsmgen/fsmgen/tests/netnstest"
)

func openConfig(t testing.TB, ns *netnstest.NS, cfg rawlink.Config) *rawlink.Link {
	t.Helper()
	var l *rawlink.Link
	if err := ns.Do(func() (err error) { l, err = rawlink.Open(cfg); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestOffload checks the packet-socket transmit path: to a resolved
// neighbor, Send goes out as a frame and SendGSO as one frame the kernel
// segments into valid MSS-sized packets (seen by an observer in B); to an
// unresolved one both fall back to the IP_HDRINCL socket, SendGSO cutting in
// software; with NoOffload there is no GSO at all.
func TestOffload(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{}) // static neighbors: A knows B's MAC
	la := openConfig(t, tp.A, rawlink.Config{LocalAddr: tp.AddrA})
	obs := openConfig(t, tp.B, rawlink.Config{LocalAddr: tp.AddrB, NoOffload: true})
	cb := netnstest.NewCapture(1024)
	obs.SetReceiver(cb.Receive)
	if la.GSOMaxSize() != rawlink.GSOMaxSize {
		t.Fatalf("GSOMaxSize = %d, want %d", la.GSOMaxSize(), rawlink.GSOMaxSize)
	}

	const mss = 1460
	src := netip.AddrPortFrom(tp.AddrA, 41000)
	dst := netip.AddrPortFrom(tp.AddrB, 9) // no listener: B's kernel RSTs, which does not matter here
	payload := make([]byte, 65535-40)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	big := netnstest.BuildTCP(netnstest.Segment{Src: src, Dst: dst, Seq: 5000, Ack: 1, Flags: netnstest.FlagACK | netnstest.FlagPSH, Payload: payload})

	// One small packet: a frame, delivered intact.
	small := netnstest.BuildTCP(netnstest.Segment{Src: src, Dst: dst, Seq: 1, Flags: netnstest.FlagSYN})
	if err := la.Send(small); err != nil {
		t.Fatal(err)
	}
	if _, pkt, ok := cb.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Src == src && s.Seq == 1 }); !ok {
		t.Fatal("observer did not see the frame")
	} else if !netnstest.ChecksumsOK(pkt) {
		t.Fatal("frame arrived with bad checksums")
	}
	if st := la.Stats(); st.TxFrames != 1 || st.TxPackets != 1 || st.TxGSO != 0 {
		t.Fatalf("after Send: %+v, want 1 frame", st)
	}

	// One 64 KiB packet: one GSO frame, 45 valid segments in B.
	if err := la.SendGSO(big, mss); err != nil {
		t.Fatal(err)
	}
	var got []byte
	segs := 0
	want := uint32(5000)
	for len(got) < len(payload) {
		s, pkt, ok := cb.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Src == src && s.Flags&netnstest.FlagACK != 0 })
		if !ok {
			t.Fatalf("observer saw %d segments, %d of %d bytes", segs, len(got), len(payload))
		}
		if !netnstest.ChecksumsOK(pkt) || len(s.Payload) > mss || s.Seq != want {
			t.Fatalf("segment %d: checksums ok %v, %d bytes, seq %d (want %d)", segs, netnstest.ChecksumsOK(pkt), len(s.Payload), s.Seq, want)
		}
		last := len(got)+len(s.Payload) == len(payload)
		if (s.Flags&netnstest.FlagPSH != 0) != last {
			t.Fatalf("segment %d: PSH %v, want only on the last", segs, s.Flags&netnstest.FlagPSH != 0)
		}
		got = append(got, s.Payload...)
		want += uint32(len(s.Payload))
		segs++
	}
	if !bytes.Equal(got, payload) || segs != (len(payload)+mss-1)/mss {
		t.Fatalf("%d segments, payload equal %v", segs, bytes.Equal(got, payload))
	}
	if st := la.Stats(); st.TxFrames != 2 || st.TxGSO != 1 {
		t.Fatalf("after SendGSO: %+v, want 2 frames, 1 GSO", st)
	}

	// An unresolved neighbor: the IP_HDRINCL socket, software segments.
	a4 := tp.AddrB.As4()
	a4[3] = 99
	nowhere := netip.AddrPortFrom(netip.AddrFrom4(a4), 9)
	big = netnstest.BuildTCP(netnstest.Segment{Src: src, Dst: nowhere, Seq: 5000, Flags: netnstest.FlagACK, Payload: payload})
	before := la.Stats()
	if err := la.SendGSO(big, mss); err != nil {
		t.Fatal(err)
	}
	after := la.Stats()
	if after.TxFrames != before.TxFrames || after.TxPackets-before.TxPackets != uint64(segs) {
		t.Fatalf("fallback: frames %d -> %d, packets %d -> %d; want no frame and %d packets",
			before.TxFrames, after.TxFrames, before.TxPackets, after.TxPackets, segs)
	}

	// NoOffload: no GSO; SendGSO takes only what fits the MTU.
	plain := openConfig(t, tp.A, rawlink.Config{LocalAddr: tp.AddrA, NoOffload: true})
	if plain.GSOMaxSize() != 0 {
		t.Fatalf("NoOffload: GSOMaxSize = %d, want 0", plain.GSOMaxSize())
	}
	if err := plain.SendGSO(big, mss); err != rawlink.ErrTooBig {
		t.Fatalf("NoOffload SendGSO of %d bytes: %v, want ErrTooBig", len(big), err)
	}
	if err := plain.Send(small); err != nil || plain.Stats().TxFrames != 0 {
		t.Fatalf("NoOffload Send: %v, %+v", err, plain.Stats())
	}
}

// cutParts cuts pkt into its 40 bytes of headers and n-1 pieces of payload
// at odd offsets, as a ring buffer would hand them to SendGather.
func cutParts(pkt []byte, n int) [][]byte {
	parts := [][]byte{pkt[:40]}
	rest := pkt[40:]
	for i := n - 1; i > 1; i-- {
		k := len(rest)/i | 1
		parts, rest = append(parts, rest[:k]), rest[k:]
	}
	return append(parts, rest)
}

// TestSendGather: a packet in pieces leaves as the joined packet on every
// path: the packet socket (pieces as iovecs, or joined when there are more
// than it takes), its segmentation offload, and the IP_HDRINCL socket.
func TestSendGather(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	la := openConfig(t, tp.A, rawlink.Config{LocalAddr: tp.AddrA})
	plain := openConfig(t, tp.A, rawlink.Config{LocalAddr: tp.AddrA, NoOffload: true})
	obs := openConfig(t, tp.B, rawlink.Config{LocalAddr: tp.AddrB, NoOffload: true})
	cb := netnstest.NewCapture(1024)
	obs.SetReceiver(cb.Receive)
	src := netip.AddrPortFrom(tp.AddrA, 41001)
	dst := netip.AddrPortFrom(tp.AddrB, 9)
	payload := make([]byte, 1400)
	for i := range payload {
		payload[i] = byte(i*13 + 1)
	}
	for i, tc := range []struct {
		name   string
		l      *rawlink.Link
		pieces int
		frame  bool // sent through the packet socket
	}{
		{"packet socket, 3 pieces", la, 3, true},
		{"packet socket, 2 pieces", la, 2, true},
		{"packet socket, 6 pieces (joined)", la, 6, true},
		{"IP_HDRINCL, 3 pieces", plain, 3, false},
	} {
		seq := uint32(100 + i)
		pkt := netnstest.BuildTCP(netnstest.Segment{Src: src, Dst: dst, Seq: seq, Flags: netnstest.FlagACK, Payload: payload})
		before := tc.l.Stats()
		if err := tc.l.SendGather(cutParts(pkt, tc.pieces), 0); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, got, ok := cb.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Src == src && s.Seq == seq })
		if !ok {
			t.Fatalf("%s: observer did not see the packet", tc.name)
		}
		if !bytes.Equal(got, pkt) {
			t.Fatalf("%s: arrived differing from the pieces joined", tc.name)
		}
		if frames := tc.l.Stats().TxFrames - before.TxFrames; frames != uint64(b2i(tc.frame)) {
			t.Fatalf("%s: %d frames sent", tc.name, frames)
		}
	}

	// Segmentation offload from pieces: the kernel's segments carry the
	// payload in order.
	big := make([]byte, 20000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	pkt := netnstest.BuildTCP(netnstest.Segment{Src: src, Dst: dst, Seq: 9000, Flags: netnstest.FlagACK, Payload: big})
	if err := la.SendGather(cutParts(pkt, 3), 1000); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for len(got) < len(big) {
		s, seg, ok := cb.WaitTCP(3*time.Second, func(s netnstest.Segment) bool { return s.Src == src && s.Seq >= 9000 })
		if !ok || !netnstest.ChecksumsOK(seg) || s.Seq != 9000+uint32(len(got)) || len(s.Payload) > 1000 {
			t.Fatalf("GSO from pieces: after %d bytes, segment ok %v seq %d len %d", len(got), ok, s.Seq, len(s.Payload))
		}
		got = append(got, s.Payload...)
	}
	if !bytes.Equal(got, big) || la.Stats().TxGSO != 1 {
		t.Fatalf("GSO from pieces: payload equal %v, %+v", bytes.Equal(got, big), la.Stats())
	}
	if err := la.SendGather(nil, 0); err != rawlink.ErrBadPacket {
		t.Fatalf("no parts: %v, want ErrBadPacket", err)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReservePort: a reserved port is closed to the host's own programs, a
// port the host uses cannot be reserved, and the host's TCP stays silent
// (no RST) for segments to a reserved port while it resets others; release
// and Close give ports back.
func TestReservePort(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	la := openConfig(t, tp.A, rawlink.Config{LocalAddr: tp.AddrA})
	obs := openConfig(t, tp.B, rawlink.Config{LocalAddr: tp.AddrB, NoOffload: true})
	cb := netnstest.NewCapture(256)
	obs.SetReceiver(cb.Receive)
	kernelListen := func(port uint16) (net.Listener, error) {
		var ln net.Listener
		err := tp.A.Do(func() (err error) {
			ln, err = net.Listen("tcp4", netip.AddrPortFrom(tp.AddrA, port).String())
			return err
		})
		return ln, err
	}

	const reserved, open = 45000, 45001
	release, err := la.ReservePort(reserved)
	if err != nil {
		t.Fatal(err)
	}
	if ln, err := kernelListen(reserved); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("kernel listen on a reserved port: %v, want EADDRINUSE", err)
	}
	held, err := kernelListen(46000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := la.ReservePort(46000); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("reserving a port the kernel listens on: %v, want EADDRINUSE", err)
	}
	held.Close()

	// A's kernel (no RST rule here) resets a segment to an unreserved
	// port, and says nothing for one to the reserved port.
	rstFrom := func(port uint16) bool {
		from := netip.AddrPortFrom(tp.AddrB, 50000)
		to := netip.AddrPortFrom(tp.AddrA, port)
		if err := obs.Send(netnstest.BuildTCP(netnstest.Segment{Src: from, Dst: to, Seq: 1, Ack: 1, Flags: netnstest.FlagACK})); err != nil {
			t.Fatal(err)
		}
		_, _, ok := cb.WaitTCP(500*time.Millisecond, func(s netnstest.Segment) bool {
			return s.Src == to && s.Flags&netnstest.FlagRST != 0
		})
		return ok
	}
	if !rstFrom(open) {
		t.Fatal("control: no RST from A's kernel for an unreserved port; the observer is blind")
	}
	if rstFrom(reserved) {
		t.Fatal("A's kernel sent an RST for a segment to a reserved port")
	}

	release()
	release() // harmless
	ln, err := kernelListen(reserved)
	if err != nil {
		t.Fatalf("kernel listen after release: %v", err)
	}
	ln.Close()

	// Close releases what is still reserved.
	if _, err := la.ReservePort(reserved); err != nil {
		t.Fatal(err)
	}
	la.Close()
	if ln, err = kernelListen(reserved); err != nil {
		t.Fatalf("kernel listen after Close: %v", err)
	}
	ln.Close()
	if _, err := la.ReservePort(reserved); err == nil {
		t.Fatal("ReservePort on a closed link succeeded")
	}
}
