package link

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fsmgen/fsmgen/runtime/clock"
)

// cut splits pkt into headers (40 bytes) and two payload pieces at an odd
// offset, the shape a stack's ring buffer hands SendGather.
func cut(pkt []byte) [][]byte {
	mid := 40 + (len(pkt)-40)/3 | 1
	return [][]byte{pkt[:40], pkt[40:mid], pkt[mid:]}
}

// TestSendGatherJoins: on both the fast and the simulated path the receiver
// gets the parts joined, byte for byte, and limits match Send's.
func TestSendGatherJoins(t *testing.T) {
	for _, c := range []clock.Clock{clock.NewReal(), clock.NewVirtual()} {
		a, b := Pair(c, PairConfig{MTU: 1500})
		var mu sync.Mutex
		var got [][]byte
		b.SetReceiver(func(p []byte) {
			mu.Lock()
			got = append(got, bytes.Clone(p))
			mu.Unlock()
		})
		pkt, _ := tcpPacket(t, 1460)
		if err := a.SendGather(cut(pkt), 0); err != nil {
			t.Fatal(err)
		}
		if err := a.SendGather([][]byte{pkt, {1}}, 0); !errors.Is(err, ErrTooBig) {
			t.Fatalf("1501 bytes: %v, want ErrTooBig", err)
		}
		if v, ok := c.(*clock.Virtual); ok {
			v.Advance(0)
		}
		waitFor(t, func() bool { return a.Stats().Delivered == 1 })
		mu.Lock()
		if len(got) != 1 || !bytes.Equal(got[0], pkt) {
			t.Fatalf("%T: received %d packets, first differing from the parts joined", c, len(got))
		}
		mu.Unlock()
		if st := a.Stats(); st.Sent != 1 {
			t.Fatalf("stats %+v", st)
		}
		a.Close()
		if err := a.SendGather(cut(pkt), 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	}
}

// TestSendGatherGSO: with mss > 0 the joined packet is segmented as SendGSO
// would.
func TestSendGatherGSO(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{MTU: 1500, GSOMaxSize: 65535})
	got := collect(b, v)
	pkt, seg := tcpPacket(t, 0xffff-40)
	if err := a.SendGather(cut(pkt), 1460); err != nil {
		t.Fatal(err)
	}
	v.Advance(0)
	var segs [][]byte
	for _, d := range *got {
		segs = append(segs, d.buf)
	}
	checkSegments(t, segs, &seg, 1500)
	if st := a.Stats(); st.Sent != 45 || st.GSO != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := a.SendGather([][]byte{pkt, {1}}, 1460); !errors.Is(err, ErrTooBig) {
		t.Fatalf("65536 bytes: %v, want ErrTooBig", err)
	}
}

func TestSendGatherZeroAllocs(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{MTU: 65535})
	defer a.Close()
	var n atomic.Int64
	b.SetReceiver(func([]byte) { n.Add(1) })
	pkt, _ := tcpPacket(t, 0xffff-40)
	parts := cut(pkt)
	sent := int64(0)
	send := func() {
		if err := a.SendGather(parts, 0); err != nil {
			t.Fatal(err)
		}
		sent++
		for sent-n.Load()-int64(a.Stats().QueueDropped) > 4 {
			runtime.Gosched()
		}
	}
	for range 100 {
		send()
	}
	if allocs := testing.AllocsPerRun(1000, send); allocs != 0 {
		t.Fatalf("%v allocs per SendGather", allocs)
	}
}
