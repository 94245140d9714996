package wire

import (
	"encoding/binary"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
)

// IPv4 flag and fragment-offset bits (RFC 791 §3.1).
const (
	ipFlagDF        = 0x4000 // Don't Fragment
	ipFlagMF        = 0x2000 // More Fragments
	ipFragOffsetMsk = 0x1fff // Fragment Offset, in 8-byte units
)

// Parse validates pkt as an IPv4 packet carrying one TCP segment and decodes it
// into seg. It never panics, whatever pkt holds, and never allocates: on
// failure it returns a static *ParseError (see ReasonOf). On success
// seg.Payload aliases pkt. On failure seg's contents are unspecified.
//
// Checks, in order, with the DropReason returned when each fails:
//   - at least 20 bytes, else [TooShort]; version 4, else [BadVersion];
//     IHL >= 5, else [BadIHL] (RFC 791 §3.1);
//   - IHL*4 <= total length <= len(pkt), else [BadTotalLength]; bytes past
//     the total length (link padding) are ignored;
//   - header checksum, else [BadIPChecksum]; protocol 6, else [NotTCP];
//   - not a fragment (MF clear, offset 0), else [Fragment] (RFC 791 §3.2);
//   - at least 20 bytes of TCP, else [TooShort]; 5 <= data offset and the
//     header fits, else [BadDataOffset] (RFC 9293 §3.1);
//   - TCP checksum over pseudo-header, header and data, else
//     [BadTCPChecksum] (RFC 9293 §3.1, MUST-3);
//   - legal option lengths, else [BadOption] (RFC 9293 §3.1, MUST-7);
//     unknown options are skipped (MUST-6).
//
// IPv4 options are skipped. The TCP reserved bits are ignored, as RFC 9293
// §3.1 requires of receivers.
func Parse(pkt []byte, seg *Segment) error {
	if len(pkt) < IPv4HeaderLen {
		return errFor(TooShort)
	}
	vihl := pkt[0]
	if vihl>>4 != 4 {
		return errFor(BadVersion)
	}
	ihl := int(vihl&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return errFor(BadIHL)
	}
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if total > len(pkt) || total < ihl {
		return errFor(BadTotalLength)
	}
	pkt = pkt[:total] // drop link-layer padding
	ip := pkt[:ihl]
	if Checksum(ip, 0) != 0xffff {
		return errFor(BadIPChecksum)
	}
	if ip[9] != ProtocolTCP {
		return errFor(NotTCP)
	}
	if frag := binary.BigEndian.Uint16(ip[6:8]); frag&(ipFlagMF|ipFragOffsetMsk) != 0 {
		return errFor(Fragment)
	}

	tcp := pkt[ihl:]
	if len(tcp) < TCPHeaderLen {
		return errFor(TooShort)
	}
	doff := int(tcp[12]>>4) * 4
	if doff < TCPHeaderLen || doff > len(tcp) {
		return errFor(BadDataOffset)
	}
	var src, dst [4]byte
	copy(src[:], ip[12:16])
	copy(dst[:], ip[16:20])
	// len(tcp) <= 65535 - 20, so the conversion is exact.
	if Checksum(tcp, PseudoHeaderChecksum(src, dst, ProtocolTCP, uint16(len(tcp)))) != 0xffff {
		return errFor(BadTCPChecksum)
	}

	*seg = Segment{
		Src:     src,
		Dst:     dst,
		TOS:     ip[1],
		TTL:     ip[8],
		SrcPort: binary.BigEndian.Uint16(tcp[0:2]),
		DstPort: binary.BigEndian.Uint16(tcp[2:4]),
		Seq:     seqnum.Value(binary.BigEndian.Uint32(tcp[4:8])),
		Ack:     seqnum.Value(binary.BigEndian.Uint32(tcp[8:12])),
		Flags:   Flags(tcp[13]),
		Window:  binary.BigEndian.Uint16(tcp[14:16]),
		Urgent:  binary.BigEndian.Uint16(tcp[18:20]),
		Payload: tcp[doff:],
	}
	if doff > TCPHeaderLen && !parseOptions(tcp[TCPHeaderLen:doff], &seg.Options) {
		return errFor(BadOption)
	}
	return nil
}
