package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
)

func TestParseValid(t *testing.T) {
	payload := []byte("hello, world")
	pkt := rawPacket([]byte{OptNOP, OptNOP, OptTimestamps, 10, 0, 0, 0, 7, 0, 0, 0, 9}, payload)
	var seg Segment
	if err := Parse(pkt, &seg); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Segment{
		Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 0, 0, 2},
		SrcPort: 40000, DstPort: 80, Seq: 1000, Ack: 2000,
		Flags: ACK | PSH, Window: 65535, TTL: 64,
		Options: Options{HasTS: true, TSVal: 7, TSEcr: 9},
	}
	if !sameHeader(seg, want) {
		t.Errorf("got  %+v\nwant %+v", seg, want)
	}
	if string(seg.Payload) != string(payload) {
		t.Errorf("payload %q, want %q", seg.Payload, payload)
	}
}

// TestParseReusesSegment checks that Parse clears what a previous packet
// left in the Segment.
func TestParseReusesSegment(t *testing.T) {
	var seg Segment
	full := rawPacket([]byte{OptMSS, 4, 5, 0xb4, OptSACK, 10, 0, 0, 0, 1, 0, 0, 0, 2}, []byte("x"))
	if err := Parse(full, &seg); err != nil {
		t.Fatal(err)
	}
	if err := Parse(rawPacket(nil, nil), &seg); err != nil {
		t.Fatal(err)
	}
	if seg.Options != (Options{}) || len(seg.Payload) != 0 {
		t.Fatalf("stale state after reuse: %+v", seg)
	}
}

func TestParsePayloadAliases(t *testing.T) {
	pkt := rawPacket(nil, []byte("abcdef"))
	var seg Segment
	if err := Parse(pkt, &seg); err != nil {
		t.Fatal(err)
	}
	if &seg.Payload[0] != &pkt[40] {
		t.Fatal("payload does not alias the packet buffer")
	}
	pkt[40] = 'X'
	if seg.Payload[0] != 'X' {
		t.Fatal("write through packet not visible in payload")
	}
}

func TestParseTrimsLinkPadding(t *testing.T) {
	pkt := rawPacket(nil, []byte("ab"))
	padded := append(pkt, 0, 0, 0, 0, 0, 0) // e.g. Ethernet minimum-frame padding
	var seg Segment
	if err := Parse(padded, &seg); err != nil {
		t.Fatal(err)
	}
	if string(seg.Payload) != "ab" {
		t.Fatalf("payload %q, want %q", seg.Payload, "ab")
	}
}

func TestParseSkipsIPOptions(t *testing.T) {
	base := rawPacket(nil, []byte("data"))
	// Insert 4 bytes of IPv4 options (NOP, NOP, NOP, EOL) after the header.
	pkt := append(append(append([]byte{}, base[:20]...), 1, 1, 1, 0), base[20:]...)
	pkt[0] = 0x46
	binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
	fixIPChecksum(pkt)
	var seg Segment
	if err := Parse(pkt, &seg); err != nil {
		t.Fatal(err)
	}
	if string(seg.Payload) != "data" || seg.SrcPort != 40000 {
		t.Fatalf("bad parse with IP options: %+v", seg)
	}
}

// TestParseDropReasons triggers every DropReason with a crafted packet.
func TestParseDropReasons(t *testing.T) {
	valid := func() []byte { return rawPacket(nil, []byte("payload")) }
	tests := []struct {
		name string
		pkt  func() []byte
		want DropReason
	}{
		{"empty", func() []byte { return nil }, TooShort},
		{"19 bytes", func() []byte { return valid()[:19] }, TooShort},
		{"IP payload shorter than TCP header", func() []byte {
			p := valid()[:30]
			binary.BigEndian.PutUint16(p[2:4], 30)
			fixIPChecksum(p)
			return p
		}, TooShort},
		{"version 6", func() []byte { p := valid(); p[0] = 0x65; return p }, BadVersion},
		{"version 0", func() []byte { p := valid(); p[0] = 0x05; return p }, BadVersion},
		{"IHL 4", func() []byte { p := valid(); p[0] = 0x44; return p }, BadIHL},
		{"IHL 0", func() []byte { p := valid(); p[0] = 0x40; return p }, BadIHL},
		{"total length past end", func() []byte {
			p := valid()
			binary.BigEndian.PutUint16(p[2:4], uint16(len(p)+1))
			fixIPChecksum(p)
			return p
		}, BadTotalLength},
		{"truncated packet", func() []byte { p := valid(); return p[:len(p)-1] }, BadTotalLength},
		{"total length below IHL", func() []byte {
			p := valid()
			binary.BigEndian.PutUint16(p[2:4], 19)
			fixIPChecksum(p)
			return p
		}, BadTotalLength},
		{"IHL past total length", func() []byte {
			p := valid()
			p[0] = 0x4f // 60-byte header in a 20+20+7-byte packet
			binary.BigEndian.PutUint16(p[2:4], 47)
			return p
		}, BadTotalLength},
		{"IP checksum", func() []byte { p := valid(); p[10] ^= 1; return p }, BadIPChecksum},
		{"IP header bit flip", func() []byte { p := valid(); p[8] ^= 0x10; return p }, BadIPChecksum},
		{"UDP", func() []byte { p := valid(); p[9] = 17; fixIPChecksum(p); return p }, NotTCP},
		{"ICMP", func() []byte { p := valid(); p[9] = 1; fixIPChecksum(p); return p }, NotTCP},
		{"more fragments", func() []byte {
			p := valid()
			binary.BigEndian.PutUint16(p[6:8], 0x2000)
			fixIPChecksum(p)
			return p
		}, Fragment},
		{"fragment offset", func() []byte {
			p := valid()
			binary.BigEndian.PutUint16(p[6:8], 0x4000|185) // DF with an offset: still a fragment
			fixIPChecksum(p)
			return p
		}, Fragment},
		{"data offset 4", func() []byte { p := valid(); p[32] = 4 << 4; fixTCPChecksum(p); return p }, BadDataOffset},
		{"data offset 0", func() []byte { p := valid(); p[32] = 0; fixTCPChecksum(p); return p }, BadDataOffset},
		{"data offset past end", func() []byte {
			p := valid() // 27 bytes of TCP; offset 8 words needs 32
			p[32] = 8 << 4
			fixTCPChecksum(p)
			return p
		}, BadDataOffset},
		{"TCP checksum", func() []byte { p := valid(); p[36] ^= 0xff; return p }, BadTCPChecksum},
		{"payload bit flip", func() []byte { p := valid(); p[len(p)-1] ^= 0x01; return p }, BadTCPChecksum},
		{"pseudo-header address", func() []byte {
			p := valid()
			p[19]++ // misrouted: TCP checksum covers the destination (RFC 9293 §3.1)
			fixIPChecksum(p)
			return p
		}, BadTCPChecksum},
		{"option length 0", func() []byte { return rawPacket([]byte{OptMSS, 0, 5, 0xb4}, nil) }, BadOption},
		{"option length 1", func() []byte { return rawPacket([]byte{99, 1, 0, 0}, nil) }, BadOption},
		{"option overruns header", func() []byte { return rawPacket([]byte{OptNOP, OptNOP, 99, 3}, nil) }, BadOption},
		{"option kind without length", func() []byte { return rawPacket([]byte{OptNOP, OptNOP, OptNOP, OptMSS}, nil) }, BadOption},
	}
	seen := make(map[DropReason]bool)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seg Segment
			err := Parse(tt.pkt(), &seg)
			if got := ReasonOf(err); got != tt.want {
				t.Fatalf("reason %v (err %v), want %v", got, err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason != tt.want {
				t.Fatalf("error %T %v is not a *ParseError with reason %v", err, err, tt.want)
			}
			seen[tt.want] = true
		})
	}
	for r := DropReason(1); r < NumDropReasons; r++ {
		if !seen[r] {
			t.Errorf("no test triggers %v", r)
		}
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []byte
		want Options // ignored when bad
		bad  bool
	}{
		{"none", nil, Options{}, false},
		{"linux SYN", []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7},
			Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSVal: 1, TSEcr: 2, HasWScale: true, WScale: 7}, false},
		{"unaligned options", []byte{3, 3, 2, 2, 4, 1, 0x10},
			Options{HasWScale: true, WScale: 2, HasMSS: true, MSS: 0x0110}, false},
		{"wscale clamped", []byte{1, 3, 3, 15}, Options{HasWScale: true, WScale: 14}, false},
		{"wscale 255 clamped", []byte{1, 3, 3, 255}, Options{HasWScale: true, WScale: 14}, false},
		{"wscale 14 kept", []byte{1, 3, 3, 14}, Options{HasWScale: true, WScale: 14}, false},
		{"unknown skipped", []byte{99, 6, 1, 2, 3, 4, 2, 4, 0, 100}, Options{HasMSS: true, MSS: 100}, false},
		{"unknown length 2 skipped", []byte{200, 2, 4, 2}, Options{SACKPermitted: true}, false},
		{"EOL stops parsing", []byte{4, 2, 0, 0, 2, 4, 0, 100}, Options{SACKPermitted: true}, false},
		{"EOL hides garbage", []byte{0, 2, 0, 1}, Options{}, false},
		{"one SACK block", []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2},
			Options{NumSACKBlocks: 1, SACKBlocks: [4]SACKBlock{{1, 2}}}, false},
		{"four SACK blocks", append([]byte{1, 1, 5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...),
			Options{NumSACKBlocks: 4, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}, false},
		{"TS + three SACK blocks", append([]byte{1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 1, 5, 26}, seqBytes(1, 2, 3, 4, 5, 6)...),
			Options{HasTS: true, TSVal: 5, TSEcr: 6, NumSACKBlocks: 3, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}}}, false},
		{"repeated option: last wins", []byte{2, 4, 0, 1, 2, 4, 0, 2}, Options{HasMSS: true, MSS: 2}, false},
		{"fills 40 bytes", append([]byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4}[:38], 4, 2),
			Options{HasTS: true, TSVal: 1, TSEcr: 2, SACKPermitted: true}, false},

		{"MSS length 3", []byte{2, 3, 5, 1}, Options{}, true},
		{"MSS length 5", []byte{2, 5, 5, 0xb4, 0, 0, 0, 0}, Options{}, true},
		{"MSS length 0", []byte{2, 0, 0, 0}, Options{}, true},
		{"MSS truncated by header end", []byte{1, 1, 2, 4}, Options{}, true},
		{"WS length 4", []byte{3, 4, 7, 0}, Options{}, true},
		{"WS length 2", []byte{3, 2, 1, 1}, Options{}, true},
		{"SACK-permitted length 3", []byte{4, 3, 0, 0}, Options{}, true},
		{"TS length 8", []byte{8, 8, 0, 0, 0, 1, 0, 0}, Options{}, true},
		{"TS length 11", []byte{8, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}, Options{}, true},
		{"SACK no blocks", []byte{5, 2, 0, 0}, Options{}, true},
		{"SACK length 9", []byte{5, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, Options{}, true},
		{"SACK length 11", []byte{5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}, Options{}, true},
		{"SACK past header", []byte{5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}, Options{}, true},
		{"unknown length 1", []byte{200, 1, 0, 0}, Options{}, true},
		{"unknown length 255", []byte{200, 255, 0, 0}, Options{}, true},
		{"length byte missing at end", []byte{1, 1, 1, 200}, Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seg Segment
			err := Parse(rawPacket(tt.opts, []byte("p")), &seg)
			if tt.bad {
				if ReasonOf(err) != BadOption {
					t.Fatalf("err %v, want BadOption", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if seg.Options != tt.want {
				t.Fatalf("options\n got %+v\nwant %+v", seg.Options, tt.want)
			}
			if string(seg.Payload) != "p" {
				t.Fatalf("payload %q", seg.Payload)
			}
		})
	}
}

// seqBytes encodes 32-bit values big-endian.
func seqBytes(vs ...uint32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// TestParseNeverPanicsOnTruncation parses every prefix and every
// single-byte corruption of a packet with options.
func TestParseNeverPanicsOnTruncation(t *testing.T) {
	pkt := rawPacket([]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7}, []byte("some payload"))
	var seg Segment
	for n := range len(pkt) + 1 {
		_ = Parse(pkt[:n], &seg)
	}
	for i := range pkt {
		for _, v := range []byte{0, 1, 0x0f, 0xf0, 0xff} {
			p := append([]byte(nil), pkt...)
			p[i] = v
			_ = Parse(p, &seg)
			fixIPChecksum(p)
			_ = Parse(p, &seg)
		}
	}
}

func TestSegmentLen(t *testing.T) {
	tests := []struct {
		flags   Flags
		payload int
		want    seqnum.Size
	}{
		{0, 0, 0},
		{ACK, 0, 0},
		{SYN, 0, 1},
		{SYN | ACK, 0, 1},
		{FIN | ACK, 0, 1},
		{SYN | FIN, 0, 2},
		{PSH | ACK, 1460, 1460},
		{FIN | PSH | ACK, 100, 101},
		{SYN | FIN, 10, 12},
		{RST, 0, 0},
	}
	for _, tt := range tests {
		s := Segment{Seq: 0xffffffff, Flags: tt.flags, Payload: make([]byte, tt.payload)}
		if got := s.Len(); got != tt.want {
			t.Errorf("Len(%v, %d bytes) = %d, want %d", tt.flags, tt.payload, got, tt.want)
		}
		if got, want := s.End(), seqnum.Value(0xffffffff).Add(tt.want); got != want {
			t.Errorf("End(%v, %d bytes) = %d, want %d", tt.flags, tt.payload, got, want)
		}
	}
}

func TestFlagsString(t *testing.T) {
	tests := map[Flags]string{
		0:               "none",
		SYN:             "SYN",
		SYN | ACK:       "SYN|ACK",
		FIN | PSH | ACK: "FIN|PSH|ACK",
		RST | ACK:       "RST|ACK",
		FIN | SYN | RST | PSH | ACK | URG | ECE | CWR: "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR",
	}
	for f, want := range tests {
		if got := f.String(); got != want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint8(f), got, want)
		}
	}
	if !(SYN | ACK).Has(ACK) || (SYN | ACK).Has(ACK|FIN) {
		t.Error("Has is wrong")
	}
}

func TestDropReasonStrings(t *testing.T) {
	names := make(map[string]bool)
	for r := range NumDropReasons {
		s := r.String()
		if s == "" || names[s] {
			t.Errorf("reason %d has empty or duplicate name %q", r, s)
		}
		names[s] = true
		if (&ParseError{Reason: r}).Error() == "" {
			t.Errorf("reason %v has no message", r)
		}
	}
	if got := DropReason(200).String(); got != "DropReason(200)" {
		t.Errorf("out of range: %q", got)
	}
	if got := (&ParseError{Reason: 200}).Error(); got != "wire: DropReason(200)" {
		t.Errorf("out of range message: %q", got)
	}
}

func TestReasonOf(t *testing.T) {
	err := Parse(nil, new(Segment))
	if ReasonOf(err) != TooShort {
		t.Fatalf("ReasonOf(%v) = %v", err, ReasonOf(err))
	}
	if got := ReasonOf(fmt.Errorf("link 3: %w", err)); got != TooShort {
		t.Errorf("wrapped: %v", got)
	}
	if got := ReasonOf(nil); got != NoDrop {
		t.Errorf("nil: %v", got)
	}
	if got := ReasonOf(errors.New("other")); got != NoDrop {
		t.Errorf("foreign error: %v", got)
	}
	if got := ReasonOf((*ParseError)(nil)); got != NoDrop {
		t.Errorf("typed nil: %v", got)
	}
}

func TestParseZeroAlloc(t *testing.T) {
	good := rawPacket([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, make([]byte, 1460))
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	var seg Segment
	for name, pkt := range map[string][]byte{"valid": good, "bad checksum": bad, "short": good[:10]} {
		if n := testing.AllocsPerRun(100, func() { _ = Parse(pkt, &seg) }); n != 0 {
			t.Errorf("Parse(%s) allocates %.1f times", name, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = ReasonOf(Parse(pkt, &seg)) }); n != 0 {
			t.Errorf("ReasonOf(Parse(%s)) allocates %.1f times", name, n)
		}
	}
}
