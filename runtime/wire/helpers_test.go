package wire

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"pgregory.net/rapid"
)

// naiveChecksum is RFC 1071's reference algorithm: big-endian 16-bit words,
// one at a time, folding the carry after every addition.
func naiveChecksum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		s += w
		for s > 0xffff {
			s = s>>16 + s&0xffff
		}
	}
	return uint16(s)
}

// naivePseudo sums the IPv4 pseudo-header by building its 12 bytes.
func naivePseudo(src, dst [4]byte, proto uint8, length uint16) uint16 {
	var ph [12]byte
	copy(ph[0:4], src[:])
	copy(ph[4:8], dst[:])
	ph[9] = proto
	binary.BigEndian.PutUint16(ph[10:12], length)
	return naiveChecksum(ph[:], 0)
}

// fixIPChecksum recomputes the IPv4 header checksum of pkt in place.
func fixIPChecksum(pkt []byte) {
	ihl := int(pkt[0]&0x0f) * 4
	pkt[10], pkt[11] = 0, 0
	binary.BigEndian.PutUint16(pkt[10:12], ^naiveChecksum(pkt[:ihl], 0))
}

// fixTCPChecksum recomputes the TCP checksum of pkt in place, using the
// IPv4 header's IHL and total length to find the segment.
func fixTCPChecksum(pkt []byte) {
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	tcp := pkt[ihl:total]
	tcp[16], tcp[17] = 0, 0
	var src, dst [4]byte
	copy(src[:], pkt[12:16])
	copy(dst[:], pkt[16:20])
	sum := naiveChecksum(tcp, naivePseudo(src, dst, pkt[9], uint16(len(tcp))))
	binary.BigEndian.PutUint16(tcp[16:18], ^sum)
}

// rawPacket builds a valid IPv4+TCP packet by hand, independently of Encode,
// with the given option bytes (zero-padded to a multiple of 4) and payload.
func rawPacket(opts, payload []byte) []byte {
	optLen := (len(opts) + 3) &^ 3
	total := 20 + 20 + optLen + len(payload)
	pkt := make([]byte, total)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:4], uint16(total))
	binary.BigEndian.PutUint16(pkt[6:8], 0x4000)
	pkt[8] = 64
	pkt[9] = 6
	copy(pkt[12:16], []byte{10, 0, 0, 1})
	copy(pkt[16:20], []byte{10, 0, 0, 2})
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[0:2], 40000)
	binary.BigEndian.PutUint16(tcp[2:4], 80)
	binary.BigEndian.PutUint32(tcp[4:8], 1000)
	binary.BigEndian.PutUint32(tcp[8:12], 2000)
	tcp[12] = byte((20+optLen)/4) << 4
	tcp[13] = byte(ACK | PSH)
	binary.BigEndian.PutUint16(tcp[14:16], 65535)
	copy(tcp[20:], opts)
	copy(tcp[20+optLen:], payload)
	fixIPChecksum(pkt)
	fixTCPChecksum(pkt)
	return pkt
}

// drawOptions draws arbitrary options, including out-of-range WScale and
// combinations that do not fit in 40 bytes.
func drawOptions(t *rapid.T) Options {
	var o Options
	if o.HasMSS = rapid.Bool().Draw(t, "hasMSS"); o.HasMSS {
		o.MSS = rapid.Uint16().Draw(t, "mss")
	}
	if o.HasWScale = rapid.Bool().Draw(t, "hasWS"); o.HasWScale {
		o.WScale = rapid.Uint8().Draw(t, "ws")
	}
	o.SACKPermitted = rapid.Bool().Draw(t, "sackOK")
	if o.HasTS = rapid.Bool().Draw(t, "hasTS"); o.HasTS {
		o.TSVal = rapid.Uint32().Draw(t, "tsval")
		o.TSEcr = rapid.Uint32().Draw(t, "tsecr")
	}
	n := rapid.IntRange(0, MaxSACKBlocks).Draw(t, "nsack")
	for range n {
		o.AddSACK(SACKBlock{
			Start: seqnum.Value(rapid.Uint32().Draw(t, "start")),
			End:   seqnum.Value(rapid.Uint32().Draw(t, "end")),
		})
	}
	return o
}

// drawSegment draws an arbitrary encodable segment.
func drawSegment(t *rapid.T) Segment {
	var s Segment
	s.Src = [4]byte(rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "src"))
	s.Dst = [4]byte(rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "dst"))
	s.SrcPort = rapid.Uint16().Draw(t, "sport")
	s.DstPort = rapid.Uint16().Draw(t, "dport")
	s.Seq = seqnum.Value(rapid.Uint32().Draw(t, "seq"))
	s.Ack = seqnum.Value(rapid.Uint32().Draw(t, "ack"))
	s.Flags = Flags(rapid.Uint8().Draw(t, "flags"))
	s.Window = rapid.Uint16().Draw(t, "win")
	s.Urgent = rapid.Uint16().Draw(t, "urg")
	s.TTL = rapid.Uint8().Draw(t, "ttl")
	s.TOS = rapid.Uint8().Draw(t, "tos")
	s.Options = drawOptions(t)
	s.Payload = drawPayload(t, 2000)
	return s
}

// drawPayload draws up to maxLen bytes. The length comes from rapid; the
// content from a rapid-drawn seed, since rapid keeps byte slices short.
func drawPayload(t *rapid.T, maxLen int) []byte {
	n := rapid.IntRange(0, maxLen).Draw(t, "payloadLen")
	rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "payloadSeed"), 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// wantAfterEncode is what Parse should return for the packet Encode makes
// from s: TTL 0 becomes DefaultTTL, WScale is clamped, SACK blocks that did
// not fit are gone and the unused ones are zero.
func wantAfterEncode(s Segment) Segment {
	if s.TTL == 0 {
		s.TTL = DefaultTTL
	}
	if s.Options.HasWScale {
		s.Options.WScale = min(s.Options.WScale, MaxWScale)
	}
	n := s.Options.layout().nsack
	s.Options.NumSACKBlocks = uint8(n)
	for i := n; i < MaxSACKBlocks; i++ {
		s.Options.SACKBlocks[i] = SACKBlock{}
	}
	return s
}

// sameHeader reports whether a and b agree on every field but Payload.
func sameHeader(a, b Segment) bool {
	a.Payload, b.Payload = nil, nil
	return reflect.DeepEqual(a, b)
}

// fataler is the part of testing.TB that *rapid.T also has.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// mustEncode encodes s into a fresh buffer of exactly the right size.
func mustEncode(tb fataler, s *Segment) []byte {
	tb.Helper()
	buf := make([]byte, s.EncodedLen())
	n, err := s.Encode(buf)
	if err != nil {
		tb.Fatalf("Encode: %v", err)
	}
	if n != len(buf) {
		tb.Fatalf("Encode wrote %d bytes, EncodedLen %d", n, len(buf))
	}
	return buf
}
