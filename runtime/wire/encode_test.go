package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSegment(t)
		pkt := mustEncode(t, &s)
		var got Segment
		if err := Parse(pkt, &got); err != nil {
			t.Fatalf("Parse(Encode(s)): %v", err)
		}
		want := wantAfterEncode(s)
		if !sameHeader(got, want) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
		}
		if !bytes.Equal(got.Payload, s.Payload) {
			t.Fatalf("payload differs")
		}
		// Encoding what Parse returned reproduces the packet exactly.
		if again := mustEncode(t, &got); !bytes.Equal(again, pkt) {
			t.Fatalf("re-encode differs:\n%x\n%x", pkt, again)
		}
	})
}

func TestEncodeFixedFields(t *testing.T) {
	s := Segment{
		Src: [4]byte{192, 0, 2, 1}, Dst: [4]byte{198, 51, 100, 7},
		SrcPort: 1234, DstPort: 80, Seq: 0x01020304, Ack: 0x05060708,
		Flags: PSH | ACK, Window: 0xabcd, Urgent: 0x1122, TOS: 0x02,
		Payload: []byte("xyz"),
	}
	pkt := mustEncode(t, &s)
	want := []byte{
		0x45, 0x02, 0x00, 43, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
		0x04, 0xd2, 0x00, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 0x50, 0x18, 0xab, 0xcd, 0, 0, 0x11, 0x22,
		'x', 'y', 'z',
	}
	binary.BigEndian.PutUint16(want[10:], ^naiveChecksum(want[:20], 0))
	tcp := want[20:]
	binary.BigEndian.PutUint16(tcp[16:], ^naiveChecksum(tcp, naivePseudo(s.Src, s.Dst, 6, uint16(len(tcp)))))
	if !bytes.Equal(pkt, want) {
		t.Fatalf("got\n%x\nwant\n%x", pkt, want)
	}
}

// TestEncodeOptionLayout checks the byte layout Linux uses.
func TestEncodeOptionLayout(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want []byte
	}{
		{"none", Options{}, nil},
		{"Linux SYN", Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSVal: 1, TSEcr: 0, HasWScale: true, WScale: 7},
			[]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}},
		{"SYN without TS", Options{HasMSS: true, MSS: 536, SACKPermitted: true, HasWScale: true, WScale: 0},
			[]byte{2, 4, 2, 0x18, 1, 1, 4, 2, 1, 3, 3, 0}},
		{"SYN MSS only", Options{HasMSS: true, MSS: 1460}, []byte{2, 4, 5, 0xb4}},
		{"ACK with TS", Options{HasTS: true, TSVal: 0x01020304, TSEcr: 0x05060708},
			[]byte{1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"TS + SACK", Options{HasTS: true, TSVal: 1, TSEcr: 2, NumSACKBlocks: 1, SACKBlocks: [4]SACKBlock{{10, 20}}},
			[]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20}},
		{"WS clamped", Options{HasWScale: true, WScale: 200}, []byte{1, 3, 3, 14}},
		{"TS + 4 SACK drops the 4th", Options{HasTS: true, TSVal: 1, TSEcr: 2, NumSACKBlocks: 4,
			SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			append([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 26}, seqBytes(1, 2, 3, 4, 5, 6)...)},
		{"WS + 4 SACK aligned in 40", Options{HasWScale: true, WScale: 3, NumSACKBlocks: 4,
			SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
			append([]byte{1, 3, 3, 3, 1, 1, 5, 34}, seqBytes(1, 2, 3, 4, 5, 6, 7, 8)...)},
		// Aligned would need 44 bytes; back to back it is 39, padded to 40.
		{"TS + WS + 3 SACK compact", Options{HasTS: true, TSVal: 1, TSEcr: 2, HasWScale: true, WScale: 3,
			NumSACKBlocks: 3, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}}},
			append(append([]byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 3, 3, 3, 5, 26}, seqBytes(1, 2, 3, 4, 5, 6)...), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Segment{Options: tt.opts}
			pkt := mustEncode(t, &s)
			if got := HeaderLen(&tt.opts); got != 40+len(tt.want) {
				t.Errorf("HeaderLen = %d, want %d", got, 40+len(tt.want))
			}
			if got := pkt[40:]; !bytes.Equal(got, tt.want) {
				t.Fatalf("options\n got %v\nwant %v", got, tt.want)
			}
			if doff := int(pkt[32]>>4) * 4; doff != 20+len(tt.want) {
				t.Errorf("data offset %d", doff)
			}
		})
	}
	if HeaderLen(nil) != 40 {
		t.Errorf("HeaderLen(nil) = %d", HeaderLen(nil))
	}
}

// TestEncodeOptionsAlwaysFit checks that Encode never exceeds 40 option
// bytes and drops SACK blocks only when they cannot fit.
func TestEncodeOptionsAlwaysFit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t)
		l := o.layout()
		if l.size > MaxOptionsLen || l.size%4 != 0 {
			t.Fatalf("layout size %d", l.size)
		}
		if n := int(o.NumSACKBlocks); l.nsack < n && o.compactLen(n) <= MaxOptionsLen {
			t.Fatalf("dropped SACK blocks (%d of %d) that fit", n-l.nsack, n)
		}
	})
}

func TestEncodeErrors(t *testing.T) {
	s := Segment{Payload: make([]byte, 100)}
	if _, err := s.Encode(make([]byte, 139)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: %v", err)
	}
	if n, err := s.Encode(make([]byte, 140)); err != nil || n != 140 {
		t.Errorf("exact buffer: %d, %v", n, err)
	}
	s.Payload = make([]byte, 65535-40+1)
	if _, err := s.Encode(make([]byte, 70000)); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, err := s.Append(nil); !errors.Is(err, ErrTooLong) {
		t.Errorf("Append too long: %v", err)
	}
	s.Payload = s.Payload[:65535-40]
	if n, err := s.Encode(make([]byte, 70000)); err != nil || n != 65535 {
		t.Errorf("max size: %d, %v", n, err)
	}
}

// TestEncodeInPlacePayload builds the payload where Encode will put it.
func TestEncodeInPlacePayload(t *testing.T) {
	s := Segment{Flags: ACK, Options: Options{HasTS: true, TSVal: 9}}
	hl := HeaderLen(&s.Options)
	buf := make([]byte, hl+5)
	copy(buf[hl:], "hello")
	s.Payload = buf[hl:]
	n, err := s.Encode(buf)
	if err != nil {
		t.Fatal(err)
	}
	var got Segment
	if err := Parse(buf[:n], &got); err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != "hello" {
		t.Fatalf("payload %q", got.Payload)
	}
}

// TestEncodeHeaderMatchesEncode: headers from EncodeHeader followed by the
// payload pieces are byte for byte what Encode makes of the joined payload,
// for any cut into pieces (odd lengths and empty pieces included).
func TestEncodeHeaderMatchesEncode(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSegment(t)
		want := mustEncode(t, &s)
		var pieces [][]byte
		rest := s.Payload
		for k := rapid.IntRange(0, 4).Draw(t, "cuts"); k > 0; k-- {
			cut := rapid.IntRange(0, len(rest)).Draw(t, "cut")
			pieces, rest = append(pieces, rest[:cut]), rest[cut:]
		}
		pieces = append(pieces, rest)
		hs := s
		hs.Payload = []byte("ignored")
		buf := make([]byte, IPv4HeaderLen+MaxTCPHeaderLen)
		n, err := hs.EncodeHeader(buf, pieces...)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Concat(append([][]byte{buf[:n]}, pieces...)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("pieces %d: EncodeHeader+pieces differs from Encode\n got %x\nwant %x", len(pieces), got, want)
		}
	})
}

func TestEncodeHeaderErrors(t *testing.T) {
	var s Segment
	if _, err := s.EncodeHeader(make([]byte, 39), []byte("x")); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short buffer: %v", err)
	}
	big := make([]byte, 40000)
	if _, err := s.EncodeHeader(make([]byte, 40), big, big); !errors.Is(err, ErrTooLong) {
		t.Errorf("too long: %v", err)
	}
	a, b := make([]byte, 1000), make([]byte, 461)
	buf := make([]byte, 40)
	if n := testing.AllocsPerRun(100, func() { _, _ = s.EncodeHeader(buf, a, b) }); n != 0 {
		t.Errorf("EncodeHeader allocates %.1f times", n)
	}
}

func TestAppend(t *testing.T) {
	s := Segment{Flags: SYN, Options: Options{HasMSS: true, MSS: 1460}, Payload: []byte("ab")}
	prefix := []byte("prefix")
	out, err := s.Append(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if string(out[:6]) != "prefix" || len(out) != 6+s.EncodedLen() {
		t.Fatalf("bad append: len %d", len(out))
	}
	var got Segment
	if err := Parse(out[6:], &got); err != nil || got.Options.MSS != 1460 || string(got.Payload) != "ab" {
		t.Fatalf("parse appended: %v %+v", err, got)
	}
	buf := make([]byte, 0, 100)
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Append(buf[:0]) }); n != 0 {
		t.Errorf("Append with capacity allocates %.1f times", n)
	}
}

func TestEncodeZeroAlloc(t *testing.T) {
	s := Segment{Flags: ACK | PSH, Options: Options{HasTS: true, NumSACKBlocks: 2}, Payload: make([]byte, 1460)}
	buf := make([]byte, 2048)
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Encode(buf) }); n != 0 {
		t.Errorf("Encode allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = HeaderLen(&s.Options) }); n != 0 {
		t.Errorf("HeaderLen allocates %.1f times", n)
	}
}

func TestSegmentString(t *testing.T) {
	s := Segment{Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 0, 0, 2}, SrcPort: 1234, DstPort: 80,
		Flags: SYN | ACK, Seq: 1, Ack: 2, Window: 65535}
	want := "10.0.0.1:1234 > 10.0.0.2:80 [SYN|ACK] seq=1 ack=2 win=65535 len=0"
	if got := s.String(); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestAddSACK(t *testing.T) {
	var o Options
	for i := range MaxSACKBlocks {
		if !o.AddSACK(SACKBlock{Start: 1, End: 2}) {
			t.Fatalf("block %d refused", i)
		}
	}
	if o.AddSACK(SACKBlock{}) {
		t.Fatal("fifth block accepted")
	}
	if len(o.SACK()) != MaxSACKBlocks {
		t.Fatalf("SACK() has %d blocks", len(o.SACK()))
	}
	o.NumSACKBlocks = 200 // corrupt count: SACK and Encode must not panic
	_ = o.SACK()
	s := Segment{Options: o}
	mustEncode(t, &s)
}
