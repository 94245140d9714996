package wire

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Encode writes s as a complete IPv4 packet into buf and returns its length,
// s.EncodedLen(). It does not allocate. It fails with ErrShortBuffer when buf
// is shorter than HeaderLen(&s.Options)+len(s.Payload), or ErrTooLong when
// that exceeds 65535.
//
// The IPv4 header (RFC 791 §3.1) is 20 bytes: TOS from s.TOS, ID 0 with Don't
// Fragment set (an atomic datagram, RFC 6864 §4.1), TTL s.TTL or DefaultTTL,
// protocol 6, header checksum. The TCP header (RFC 9293 §3.1) carries the
// options laid out as HeaderLen describes, reserved bits zero, and the
// checksum over pseudo-header, header and data (MUST-2).
//
// s.Payload may overlap buf: in particular it may already sit at
// buf[HeaderLen(&s.Options):], where a zero-copy sender can build it.
func (s *Segment) Encode(buf []byte) (int, error) {
	lay := s.Options.layout()
	hdr := IPv4HeaderLen + TCPHeaderLen + lay.size
	n := hdr + len(s.Payload)
	if n > 0xffff {
		return 0, ErrTooLong
	}
	if len(buf) < n {
		return 0, ErrShortBuffer
	}
	// Payload first: it may overlap where the headers go.
	copy(buf[hdr:n], s.Payload)
	s.encodeHeader(buf[:hdr], lay, len(s.Payload), Checksum(buf[hdr:n], 0))
	return n, nil
}

// EncodeHeader writes the IPv4 and TCP headers of s into buf for a payload
// that is the concatenation of the pieces of payload (s.Payload is
// ignored), and returns the header length, HeaderLen(&s.Options). The
// pieces stay where they are: a gathering sender (link.Gatherer) sends the
// headers and then the pieces, e.g. straight from a ring buffer, saving the
// copy Encode makes. The checksum covers the pieces as if joined (odd-length
// pieces included). It does not allocate; it fails like Encode.
func (s *Segment) EncodeHeader(buf []byte, payload ...[]byte) (int, error) {
	lay := s.Options.layout()
	hdr := IPv4HeaderLen + TCPHeaderLen + lay.size
	var sum uint16
	n, odd := 0, false
	for _, p := range payload {
		ps := Checksum(p, 0)
		if odd {
			// p starts at an odd offset of the joined payload: its bytes sit
			// in the other half of each 16-bit word (RFC 1071 §2(B)).
			ps = bits.ReverseBytes16(ps)
		}
		sum = CombineChecksums(sum, ps)
		n += len(p)
		odd = n%2 == 1
	}
	if hdr+n > 0xffff {
		return 0, ErrTooLong
	}
	if len(buf) < hdr {
		return 0, ErrShortBuffer
	}
	s.encodeHeader(buf[:hdr], lay, n, sum)
	return hdr, nil
}

// encodeHeader writes the headers into buf (exactly the header length, lay)
// for a payload of payloadLen bytes whose Checksum (initial 0) is
// payloadSum.
func (s *Segment) encodeHeader(buf []byte, lay optLayout, payloadLen int, payloadSum uint16) {
	tcpLen := len(buf) - IPv4HeaderLen + payloadLen
	ip := buf[:IPv4HeaderLen]
	ip[0] = 4<<4 | IPv4HeaderLen/4
	ip[1] = s.TOS
	binary.BigEndian.PutUint16(ip[2:4], uint16(IPv4HeaderLen+tcpLen))
	binary.BigEndian.PutUint32(ip[4:8], ipFlagDF) // ID 0, DF, offset 0
	ip[8] = s.TTL
	if ip[8] == 0 {
		ip[8] = DefaultTTL
	}
	ip[9] = ProtocolTCP
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], s.Src[:])
	copy(ip[16:20], s.Dst[:])
	binary.BigEndian.PutUint16(ip[10:12], ^Checksum(ip, 0))

	tcp := buf[IPv4HeaderLen:]
	binary.BigEndian.PutUint16(tcp[0:2], s.SrcPort)
	binary.BigEndian.PutUint16(tcp[2:4], s.DstPort)
	binary.BigEndian.PutUint32(tcp[4:8], uint32(s.Seq))
	binary.BigEndian.PutUint32(tcp[8:12], uint32(s.Ack))
	tcp[12] = byte((TCPHeaderLen+lay.size)/4) << 4
	tcp[13] = byte(s.Flags)
	binary.BigEndian.PutUint16(tcp[14:16], s.Window)
	tcp[16], tcp[17] = 0, 0
	binary.BigEndian.PutUint16(tcp[18:20], s.Urgent)
	if lay.size > 0 {
		s.Options.writeOptions(tcp[TCPHeaderLen:TCPHeaderLen+lay.size], lay)
	}
	// The header is a whole number of 32-bit words, so the payload's sum
	// continues it (RFC 1071 §2(C)).
	sum := CombineChecksums(Checksum(tcp, PseudoHeaderChecksum(s.Src, s.Dst, ProtocolTCP, uint16(tcpLen))), payloadSum)
	binary.BigEndian.PutUint16(tcp[16:18], ^sum)
}

// Append appends the encoded packet to dst and returns the extended slice. It
// allocates only when dst lacks capacity for s.EncodedLen() more bytes.
func (s *Segment) Append(dst []byte) ([]byte, error) {
	n := s.EncodedLen()
	if n > 0xffff {
		return dst, ErrTooLong
	}
	dst = slices.Grow(dst, n)
	m, err := s.Encode(dst[len(dst) : len(dst)+n])
	return dst[:len(dst)+m], err
}
