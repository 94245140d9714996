package wire

import (
	"fmt"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
)

// Header sizes and protocol constants.
const (
	// IPv4HeaderLen is the IPv4 header length without options (RFC 791
	// §3.1); Encode always writes exactly this much.
	IPv4HeaderLen = 20
	// TCPHeaderLen is the TCP header length without options (RFC 9293 §3.1).
	TCPHeaderLen = 20
	// MaxTCPHeaderLen is the longest TCP header, options included: the data
	// offset field counts at most 15 32-bit words (RFC 9293 §3.1).
	MaxTCPHeaderLen = 60
	// ProtocolTCP is the IPv4 protocol number of TCP.
	ProtocolTCP = 6
	// DefaultTTL is the IPv4 Time to Live Encode uses when Segment.TTL is
	// zero (the Linux default, and RFC 1700's recommended value).
	DefaultTTL = 64
)

// Segment is a decoded IPv4+TCP packet: the fields of the TCP header (RFC
// 9293 §3.1), the addresses, TTL and TOS of the IPv4 header (RFC 791 §3.1),
// the parsed options and the payload. Parse fills one in place; Encode writes
// one out. It is meant to be reused, not allocated per packet.
type Segment struct {
	// Src is the IPv4 source address.
	Src [4]byte
	// Dst is the IPv4 destination address.
	Dst [4]byte
	// SrcPort is the TCP source port.
	SrcPort uint16
	// DstPort is the TCP destination port.
	DstPort uint16
	// Seq is SEG.SEQ, the sequence number of the first octet, or of the SYN
	// when SYN is set (RFC 9293 §3.4).
	Seq seqnum.Value
	// Ack is SEG.ACK, meaningful only when Flags has ACK (RFC 9293 §3.1).
	Ack seqnum.Value
	// Flags holds the control bits.
	Flags Flags
	// Window is the raw 16-bit window field, not yet shifted by the window
	// scale (RFC 7323 §2.3: never scaled in SYN segments).
	Window uint16
	// Urgent is the urgent pointer, meaningful only when Flags has URG.
	Urgent uint16
	// TTL is the IPv4 Time to Live; Encode writes DefaultTTL when it is 0.
	TTL uint8
	// TOS is the IPv4 Type of Service byte: DSCP and the two ECN bits
	// (RFC 2474 §3, RFC 3168 §5).
	TOS uint8
	// Options holds the parsed or to-be-encoded TCP options.
	Options Options
	// Payload is the segment data. After Parse it aliases the packet buffer
	// and is valid only as long as that buffer is; copy what must outlive it.
	Payload []byte
}

// Len returns SEG.LEN, the sequence space the segment occupies: the payload
// length plus one for SYN and one for FIN (RFC 9293 §3.4).
func (s *Segment) Len() seqnum.Size {
	n := seqnum.Size(len(s.Payload))
	if s.Flags&SYN != 0 {
		n++
	}
	if s.Flags&FIN != 0 {
		n++
	}
	return n
}

// End returns SEG.SEQ+SEG.LEN, the sequence number just past the segment
// (RFC 9293 §3.4).
func (s *Segment) End() seqnum.Value {
	return s.Seq.Add(s.Len())
}

// EncodedLen returns the length of the packet Encode writes for s.
func (s *Segment) EncodedLen() int {
	return HeaderLen(&s.Options) + len(s.Payload)
}

// String formats the segment tcpdump-style for logs, e.g.
// "10.0.0.1:1234 > 10.0.0.2:80 [SYN|ACK] seq=1 ack=2 win=65535 len=0".
// It allocates.
func (s *Segment) String() string {
	return fmt.Sprintf("%d.%d.%d.%d:%d > %d.%d.%d.%d:%d [%v] seq=%d ack=%d win=%d len=%d",
		s.Src[0], s.Src[1], s.Src[2], s.Src[3], s.SrcPort,
		s.Dst[0], s.Dst[1], s.Dst[2], s.Dst[3], s.DstPort,
		s.Flags, uint32(s.Seq), uint32(s.Ack), s.Window, len(s.Payload))
}
