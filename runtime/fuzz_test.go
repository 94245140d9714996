package runtime_test

import (
	"net/netip"
	"testing"
	"time"

	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// captureLink is a link.Link whose receiver the test drives directly.
type captureLink struct {
	recv func([]byte)
	sent int
}

func (l *captureLink) Send(pkt []byte) error      { l.sent++; return nil }
func (l *captureLink) SetReceiver(f func([]byte)) { l.recv = f }
func (l *captureLink) MTU() int                   { return 1500 }
func (l *captureLink) Close() error               { return nil }

// FuzzArrival feeds arbitrary packets to a stack with a listener and a
// half-open connection: the arrival path must never panic, and the stack
// must keep accepting new connections afterwards.
func FuzzArrival(f *testing.F) {
	local, remote := [4]byte{10, 201, 2, 1}, [4]byte{10, 201, 2, 2}
	mk := func(flags wire.Flags, seq, ack uint32, payload string) []byte {
		s := wire.Segment{Src: remote, Dst: local, SrcPort: 4000, DstPort: 80, Seq: seqOf(seq), Ack: seqOf(ack), Flags: flags, Window: 65535, Payload: []byte(payload)}
		b := make([]byte, 1500)
		n, err := s.Encode(b)
		if err != nil {
			f.Fatal(err)
		}
		return b[:n]
	}
	f.Add(mk(wire.SYN, 100, 0, ""))
	f.Add(mk(wire.ACK, 101, 1, "hello"))
	f.Add(mk(wire.RST, 101, 0, ""))
	f.Add(mk(wire.FIN|wire.ACK, 101, 1, ""))
	f.Add(mk(wire.SYN|wire.ACK, 5, 7, "x"))
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		vc := clock.NewVirtual()
		l := &captureLink{}
		s, err := fsmrt.NewStack(l, fsmrt.Options{Addr: netip.AddrFrom4(local), Clock: vc})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Listen("tcp", ":80"); err != nil {
			t.Fatal(err)
		}
		l.recv(mk(wire.SYN, 100, 0, "")) // a half-open connection exists
		l.recv(pkt)
		// Also as a segment of that connection: patch addresses and fix checksums.
		var seg wire.Segment
		if wire.Parse(pkt, &seg) == nil {
			seg.Src, seg.Dst, seg.SrcPort, seg.DstPort = remote, local, 4000, 80
			b := make([]byte, 1500)
			if n, err := seg.Encode(b); err == nil {
				l.recv(b[:n])
			}
		}
		vc.Advance(time.Minute)
		fresh := wire.Segment{Src: [4]byte{10, 201, 2, 3}, Dst: local, SrcPort: 5000, DstPort: 80, Seq: 1, Flags: wire.SYN, Window: 65535}
		b := make([]byte, 100)
		n, _ := fresh.Encode(b)
		before := l.sent
		l.recv(b[:n])
		if l.sent == before {
			t.Fatal("a new SYN got no SYN,ACK after the fuzzed packet")
		}
	})
}

func seqOf(v uint32) seqnum.Value { return seqnum.Value(v) }
