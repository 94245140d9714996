package wire

import (
	"encoding/binary"
	"errors"
)

// Errors returned by SplitTCP besides ErrShortBuffer and the *ParseError
// values that describe a malformed packet.
var (
	// ErrBadMSS: the MSS passed to SplitTCP is below 1 byte; every piece
	// must carry data (RFC 9293 §3.7.1).
	ErrBadMSS = errors.New("wire: segmentation MSS must be at least 1")
	// ErrUnsplittable: the packet needs splitting but has SYN or RST set.
	// A SYN occupies sequence space and a RST ends the connection, so
	// neither means anything copied onto several pieces; no stack hands
	// them to segmentation offload.
	ErrUnsplittable = errors.New("wire: SYN or RST segment cannot be split")
)

// SplitTCP cuts the IPv4 TCP packet pkt, whose payload may exceed mss bytes,
// into packets carrying at most mss payload bytes each, the way Linux's
// tcp_gso_segment or a NIC's TCP segmentation offload (TSO) does, so that a
// sender can build one large packet and still put only segments within the
// peer's MSS (RFC 9293 §3.7.1) on the wire. It does not allocate.
//
// pkt must be a whole packet: its IPv4 total length must equal len(pkt).
// Any IPv4 options (IHL > 5) and TCP options (data offset > 5) are copied to
// every piece. If the payload is at most mss bytes, SplitTCP calls emit(pkt)
// once with pkt unchanged. Otherwise it builds each piece in scratch, which
// must hold the IPv4 and TCP headers plus mss bytes, and calls emit with it;
// emit must not retain the piece, whose bytes the next one overwrites.
// SplitTCP stops at, and returns, emit's first error. scratch must not
// overlap pkt.
//
// Piece i, carrying payload bytes [off, off+n), is pkt with:
//   - IPv4 total length and header checksum recomputed (RFC 791 §3.1);
//   - IPv4 ID unchanged when Don't Fragment is set, since the ID of an
//     atomic datagram carries no meaning (RFC 6864 §4.1), otherwise the
//     original ID plus i, modulo 2^16;
//   - TCP sequence number the original plus off (RFC 9293 §3.4);
//   - FIN and PSH only on the last piece, CWR (RFC 3168 §6.1.2) only on the
//     first, as tcp_gso_segment does; the other flags on every piece;
//   - if URG is set, the urgent pointer, an offset from the sequence number
//     (RFC 9293 §3.1), reduced by off while it points past the piece's
//     first byte, and URG and the pointer cleared on the pieces after
//     that: what the sender would have written had it sent the pieces
//     itself (Linux builds no large segments for urgent data);
//   - TCP checksum computed afresh over the pseudo-header, header and
//     payload (RFC 9293 §3.1); pkt's checksums are neither checked nor used.
//
// Errors: ErrBadMSS when mss < 1; for a malformed pkt, a static
// *ParseError, as from Parse, whose ReasonOf is TooShort, BadVersion,
// BadIHL, BadTotalLength (also for bytes past the total length), NotTCP,
// Fragment or BadDataOffset (checksums and options are not checked); ErrUnsplittable for SYN or RST when splitting
// is needed; ErrShortBuffer when scratch is too small. Nothing is emitted
// on any of these. SplitTCP never panics.
func SplitTCP(pkt []byte, mss int, scratch []byte, emit func(seg []byte) error) error {
	if mss < 1 {
		return ErrBadMSS
	}
	if len(pkt) < IPv4HeaderLen {
		return errFor(TooShort)
	}
	if pkt[0]>>4 != 4 {
		return errFor(BadVersion)
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return errFor(BadIHL)
	}
	if total := int(binary.BigEndian.Uint16(pkt[2:4])); total != len(pkt) || total < ihl {
		return errFor(BadTotalLength)
	}
	if pkt[9] != ProtocolTCP {
		return errFor(NotTCP)
	}
	frag := binary.BigEndian.Uint16(pkt[6:8])
	if frag&(ipFlagMF|ipFragOffsetMsk) != 0 {
		return errFor(Fragment)
	}
	if len(pkt)-ihl < TCPHeaderLen {
		return errFor(TooShort)
	}
	hdrLen := ihl + int(pkt[ihl+12]>>4)*4 // IPv4 plus TCP header
	if hdrLen-ihl < TCPHeaderLen || hdrLen > len(pkt) {
		return errFor(BadDataOffset)
	}
	payload := pkt[hdrLen:]
	if len(payload) <= mss {
		return emit(pkt)
	}
	flags := Flags(pkt[ihl+13])
	if flags&(SYN|RST) != 0 {
		return ErrUnsplittable
	}
	if len(scratch) < hdrLen+mss {
		return ErrShortBuffer
	}

	var src, dst [4]byte
	copy(src[:], pkt[12:16])
	copy(dst[:], pkt[16:20])
	id := binary.BigEndian.Uint16(pkt[4:6])
	seq := binary.BigEndian.Uint32(pkt[ihl+4 : ihl+8])
	urg := int(binary.BigEndian.Uint16(pkt[ihl+18 : ihl+20]))
	for i, off := 0, 0; off < len(payload); i, off = i+1, off+mss {
		n := min(mss, len(payload)-off)
		last := off+n == len(payload)
		seg := scratch[:hdrLen+n]
		copy(seg, pkt[:hdrLen])
		copy(seg[hdrLen:], payload[off:off+n])

		ip, tcp := seg[:ihl], seg[ihl:]
		binary.BigEndian.PutUint16(ip[2:4], uint16(len(seg)))
		if frag&ipFlagDF == 0 {
			binary.BigEndian.PutUint16(ip[4:6], id+uint16(i))
		}
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], ^Checksum(ip, 0))

		binary.BigEndian.PutUint32(tcp[4:8], seq+uint32(off))
		f := flags
		if !last {
			f &^= FIN | PSH
		}
		if off > 0 {
			f &^= CWR
		}
		if f&URG != 0 {
			up := 0
			if urg > off {
				up = urg - off
			} else {
				f &^= URG
			}
			binary.BigEndian.PutUint16(tcp[18:20], uint16(up))
		}
		tcp[13] = byte(f)
		tcp[16], tcp[17] = 0, 0
		sum := Checksum(tcp, PseudoHeaderChecksum(src, dst, ProtocolTCP, uint16(len(tcp))))
		binary.BigEndian.PutUint16(tcp[16:18], ^sum)

		if err := emit(seg); err != nil {
			return err
		}
	}
	return nil
}
