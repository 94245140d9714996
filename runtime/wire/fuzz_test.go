package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Parse must not panic; when it
// accepts a packet, the payload must alias the input, and encoding the
// Segment and parsing the result must give back the same header fields and
// payload. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(checkParse)
}

// FuzzParseChecksummed is FuzzParse with both checksums repaired before
// parsing, so that mutations reach the TCP header and option decoding
// instead of stopping at the checksum checks.
func FuzzParseChecksummed(f *testing.F) {
	f.Add(rawPacket(nil, nil))
	f.Add(rawPacket([]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, nil))
	f.Add(rawPacket([]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 26, 0, 0, 0, 1, 0, 0, 0, 2,
		0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6}, []byte("data")))
	f.Add(rawPacket([]byte{3, 3, 2, 99, 5, 1, 2, 3, 4, 2, 0, 0}, []byte("odd")))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		pkt = bytes.Clone(pkt) // the fuzzer owns its input
		if len(pkt) >= IPv4HeaderLen {
			ihl := int(pkt[0]&0x0f) * 4
			total := int(binary.BigEndian.Uint16(pkt[2:4]))
			if ihl >= IPv4HeaderLen && ihl <= total && total <= len(pkt) {
				fixIPChecksum(pkt)
				if total-ihl >= TCPHeaderLen {
					fixTCPChecksum(pkt)
				}
			}
		}
		checkParse(t, pkt)
	})
}

// checkParse is the property both fuzz targets check.
func checkParse(t *testing.T, pkt []byte) {
	var seg Segment
	err := Parse(pkt, &seg)
	if err != nil {
		if r := ReasonOf(err); r == NoDrop || r >= NumDropReasons {
			t.Fatalf("error %v has reason %v", err, r)
		}
		return
	}
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	off := total - len(seg.Payload)
	if len(seg.Payload) > 0 && &seg.Payload[0] != &pkt[off] {
		t.Fatalf("payload does not alias the packet at offset %d", off)
	}
	if seg.Options.NumSACKBlocks > MaxSACKBlocks || (seg.Options.HasWScale && seg.Options.WScale > MaxWScale) {
		t.Fatalf("options out of range: %+v", seg.Options)
	}

	buf := make([]byte, seg.EncodedLen())
	n, err := seg.Encode(buf)
	if errors.Is(err, ErrTooLong) && seg.EncodedLen() > 0xffff {
		return // Linux-aligned options can outgrow a maximal packet
	}
	if err != nil || n != len(buf) {
		t.Fatalf("Encode: n=%d err=%v", n, err)
	}
	var again Segment
	if err := Parse(buf, &again); err != nil {
		t.Fatalf("Parse(Encode(seg)): %v\nseg %+v", err, seg)
	}
	want := seg
	if want.TTL == 0 {
		want.TTL = DefaultTTL
	}
	if !sameHeader(again, want) {
		t.Fatalf("re-parse differs\n got %+v\nwant %+v", again, want)
	}
	if !bytes.Equal(again.Payload, seg.Payload) {
		t.Fatalf("payload differs")
	}
}
