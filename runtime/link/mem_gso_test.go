package link

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// tcpPacket encodes an ACK|PSH segment with n payload bytes (no options, so
// 40 bytes of headers).
func tcpPacket(t testing.TB, n int) ([]byte, wire.Segment) {
	t.Helper()
	s := wire.Segment{
		Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 0, 0, 2}, SrcPort: 40000, DstPort: 80,
		Seq: 1 << 31, Ack: 7, Flags: wire.ACK | wire.PSH, Window: 1000,
		Payload: make([]byte, n),
	}
	for i := range s.Payload {
		s.Payload[i] = byte(i*31 + i>>8)
	}
	buf, err := s.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return buf, s
}

// checkSegments checks that segs are MTU-sized, valid IPv4 TCP packets whose
// payloads, in order, make up want's.
func checkSegments(t *testing.T, segs [][]byte, want *wire.Segment, mtu int) {
	t.Helper()
	var payload []byte
	for i, p := range segs {
		if len(p) > mtu {
			t.Fatalf("segment %d: %d bytes > MTU %d", i, len(p), mtu)
		}
		var s wire.Segment
		if err := wire.Parse(p, &s); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if s.Seq != want.Seq.Add(seqnum.Size(len(payload))) {
			t.Fatalf("segment %d: seq %d after %d bytes", i, s.Seq, len(payload))
		}
		if last := i == len(segs)-1; s.Flags.Has(wire.PSH) != last {
			t.Fatalf("segment %d of %d: flags %v", i, len(segs), s.Flags)
		}
		payload = append(payload, s.Payload...)
	}
	if !bytes.Equal(payload, want.Payload) {
		t.Fatalf("reassembled %d bytes, differing from the %d sent", len(payload), len(want.Payload))
	}
}

func TestSendGSOFastPath(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{MTU: 1500, GSOMaxSize: 65535})
	defer a.Close()
	if a.GSOMaxSize() != 65535 || b.GSOMaxSize() != 65535 {
		t.Fatalf("GSOMaxSize %d, %d", a.GSOMaxSize(), b.GSOMaxSize())
	}
	var mu sync.Mutex
	var segs [][]byte
	b.SetReceiver(func(p []byte) {
		mu.Lock()
		segs = append(segs, bytes.Clone(p))
		mu.Unlock()
	})
	pkt, seg := tcpPacket(t, 0xffff-40) // a maximal, 64 KiB packet
	if err := a.SendGSO(pkt, 1460); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return a.Stats().Delivered == 45 })
	mu.Lock()
	defer mu.Unlock()
	if len(segs) != 45 {
		t.Fatalf("%d segments, want 45", len(segs))
	}
	checkSegments(t, segs, &seg, 1500)
	if st := a.Stats(); st != (Stats{Sent: 45, Delivered: 45, GSO: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

// TestSendGSOImpairedPerSegment shows that impairments see segments, not
// the large packet: with 50% loss some of the 45 arrive.
func TestSendGSOImpairedPerSegment(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{MTU: 1500, GSOMaxSize: 65535, Seed: 1, AtoB: Impairments{Loss: 0.5}})
	got := collect(b, v)
	pkt, _ := tcpPacket(t, 0xffff-40)
	if err := a.SendGSO(pkt, 1460); err != nil {
		t.Fatal(err)
	}
	v.Advance(0)
	st := a.Stats()
	if st.Sent != 45 || st.Lost == 0 || st.Lost == 45 || st.Delivered+st.Lost != 45 || len(*got) != int(st.Delivered) {
		t.Fatalf("stats %+v, %d delivered", st, len(*got))
	}
}

func TestSendGSOLimits(t *testing.T) {
	v := clock.NewVirtual()
	for _, tc := range []struct{ cfg, want int }{{0, 0}, {1000, 0}, {1500, 0}, {1501, 1501}, {9000, 9000}, {1 << 20, 65535}} {
		if a, _ := Pair(v, PairConfig{MTU: 1500, GSOMaxSize: tc.cfg}); a.GSOMaxSize() != tc.want {
			t.Errorf("GSOMaxSize %d: got %d, want %d", tc.cfg, a.GSOMaxSize(), tc.want)
		}
	}

	// GSO disabled: SendGSO takes up to MTU, still cutting it by mss.
	a, b := Pair(v, PairConfig{})
	got := collect(b, v)
	big, _ := tcpPacket(t, DefaultMTU-40+1)
	if err := a.SendGSO(big, 1460); !errors.Is(err, ErrTooBig) {
		t.Fatalf("SendGSO over MTU without GSO: %v", err)
	}
	pkt, seg := tcpPacket(t, DefaultMTU-40)
	if err := a.SendGSO(pkt, 500); err != nil {
		t.Fatal(err)
	}
	v.Advance(0)
	if len(*got) != 3 {
		t.Fatalf("%d segments, want 3", len(*got))
	}
	var segs [][]byte
	for _, d := range *got {
		segs = append(segs, d.buf)
	}
	checkSegments(t, segs, &seg, DefaultMTU)

	// GSO enabled: the limit is GSOMaxSize, and segments must fit the MTU.
	a, _ = Pair(v, PairConfig{MTU: 1500, GSOMaxSize: 9000})
	big, _ = tcpPacket(t, 9000-40+1)
	if err := a.SendGSO(big, 1460); !errors.Is(err, ErrTooBig) {
		t.Fatalf("SendGSO over GSOMaxSize: %v", err)
	}
	pkt, _ = tcpPacket(t, 9000-40)
	if err := a.SendGSO(pkt, 1461); !errors.Is(err, ErrTooBig) {
		t.Fatalf("SendGSO with segments over MTU: %v", err)
	}
	if err := a.SendGSO(pkt[:100], 1460); err == nil {
		t.Fatal("SendGSO accepted a truncated packet")
	}
	if err := a.SendGSO(pkt, 0); !errors.Is(err, wire.ErrBadMSS) {
		t.Fatalf("SendGSO with mss 0: %v", err)
	}
	if st := a.Stats(); st.Sent != 0 {
		t.Fatalf("rejected packets were sent: %+v", st)
	}
	a.Close()
	if err := a.SendGSO(pkt, 1460); err != ErrClosed {
		t.Fatalf("SendGSO after Close: %v", err)
	}
}

// TestSendGSOConcurrent has several goroutines share the scratch pool.
func TestSendGSOConcurrent(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{GSOMaxSize: 65535})
	var n atomic.Int64
	b.SetReceiver(func(p []byte) {
		var s wire.Segment
		if err := wire.Parse(p, &s); err != nil {
			panic(err)
		}
		n.Add(1)
	})
	pkt, _ := tcpPacket(t, 20000)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if err := a.SendGSO(pkt, 1000); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	v.Advance(0)
	if n.Load() != 8*20*20 {
		t.Fatalf("%d segments delivered", n.Load())
	}
}

func TestSendGSOZeroAllocs(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{GSOMaxSize: 65535})
	defer a.Close()
	var n atomic.Int64
	b.SetReceiver(func([]byte) { n.Add(1) })
	pkt, _ := tcpPacket(t, 0xffff-40)
	sent := int64(0)
	send := func() {
		if err := a.SendGSO(pkt, 1460); err != nil {
			t.Fatal(err)
		}
		sent += 45
		for sent-n.Load()-int64(a.Stats().QueueDropped) > 90 {
			runtime.Gosched()
		}
	}
	for range 1000 {
		send()
	}
	if allocs := testing.AllocsPerRun(1000, send); allocs != 0 {
		t.Fatalf("%v allocs per SendGSO", allocs)
	}
}

func BenchmarkSendGSO(b *testing.B) {
	a, bb := Pair(clock.NewReal(), PairConfig{GSOMaxSize: 65535})
	defer a.Close()
	var n atomic.Int64
	bb.SetReceiver(func([]byte) { n.Add(1) })
	pkt, _ := tcpPacket(b, 0xffff-40)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	sent := int64(0)
	for b.Loop() {
		for sent-n.Load() >= 256 {
			runtime.Gosched()
		}
		if err := a.SendGSO(pkt, 1460); err != nil {
			b.Fatal(err)
		}
		sent += 45
	}
	for n.Load() < sent {
		runtime.Gosched()
	}
}
