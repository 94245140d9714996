package wire

import (
	"strconv"
	"testing"
)

// benchSegment is a typical established-connection data segment: ACK|PSH
// with timestamps, or a pure ACK when payload is 0.
func benchSegment(payload int) Segment {
	s := Segment{
		Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{10, 0, 0, 2}, SrcPort: 40000, DstPort: 80,
		Seq: 123456, Ack: 654321, Flags: ACK, Window: 502,
		Options: Options{HasTS: true, TSVal: 1000, TSEcr: 999},
		Payload: make([]byte, payload),
	}
	if payload > 0 {
		s.Flags |= PSH
	}
	for i := range s.Payload {
		s.Payload[i] = byte(i * 7)
	}
	return s
}

var benchCases = []struct {
	name    string
	payload int
}{
	{"header-only", 0},
	{"payload=1460", 1460},
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			s := benchSegment(bc.payload)
			pkt := mustEncode(b, &s)
			var seg Segment
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Parse(pkt, &seg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			s := benchSegment(bc.payload)
			buf := make([]byte, s.EncodedLen())
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Encode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChecksum compares the carry-chain sum ("scalar") with the AVX2
// one ("vector", the default where the CPU has it) on header-, MSS- and
// GSO-sized inputs.
func BenchmarkChecksum(b *testing.B) {
	defer func(v bool) { useAVX2 = v }(useAVX2)
	for _, path := range []struct {
		name   string
		vector bool
	}{{"scalar", false}, {"vector", useAVX2}} {
		for _, n := range []int{20, 128, 256, 1480, 65535} {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i)
			}
			b.Run(path.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				useAVX2 = path.vector
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					_ = Checksum(data, 0)
				}
			})
		}
	}
}
