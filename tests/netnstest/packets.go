package netnstest

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TCP flag bits, as in the TCP header's flags byte.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

// Segment is a TCP segment in an IPv4 packet, for hand-built test traffic.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8  // FlagSYN | FlagACK ...
	Window   uint16 // 0 means 65535 when building
	Payload  []byte
}

// BuildTCP serializes s as an IPv4 packet (no options, TTL 64) with correct
// lengths and checksums, using gopacket/layers.
func BuildTCP(s Segment) []byte {
	ip := &layers.IPv4{
		Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP,
		Flags: layers.IPv4DontFragment,
		SrcIP: s.Src.Addr().AsSlice(), DstIP: s.Dst.Addr().AsSlice(),
	}
	win := s.Window
	if win == 0 {
		win = 65535
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.Src.Port()), DstPort: layers.TCPPort(s.Dst.Port()),
		Seq: s.Seq, Ack: s.Ack, Window: win,
		FIN: s.Flags&FlagFIN != 0, SYN: s.Flags&FlagSYN != 0, RST: s.Flags&FlagRST != 0,
		PSH: s.Flags&FlagPSH != 0, ACK: s.Flags&FlagACK != 0,
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, tcp, gopacket.Payload(s.Payload)); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ParseTCP decodes an IPv4 packet carrying TCP (Payload aliases pkt). It
// reports false for anything else or a truncated packet; it does not check
// checksums (see ChecksumsOK).
func ParseTCP(pkt []byte) (Segment, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 6 {
		return Segment{}, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < 20 || total > len(pkt) || total < ihl+20 {
		return Segment{}, false
	}
	tcp := pkt[ihl:total]
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return Segment{}, false
	}
	src := netip.AddrFrom4([4]byte(pkt[12:16]))
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	return Segment{
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:2])),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:4])),
		Seq:     binary.BigEndian.Uint32(tcp[4:8]),
		Ack:     binary.BigEndian.Uint32(tcp[8:12]),
		Flags:   tcp[13],
		Window:  binary.BigEndian.Uint16(tcp[14:16]),
		Payload: tcp[off:],
	}, true
}

// ChecksumsOK reports whether an IPv4 TCP packet has a valid IP header
// checksum and a valid TCP checksum.
func ChecksumsOK(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < 20 || total > len(pkt) || total < ihl {
		return false
	}
	if fold(sum(pkt[:ihl], 0)) != 0xffff {
		return false
	}
	seg := pkt[ihl:total]
	s := sum(pkt[12:20], 0) + uint32(pkt[9]) + uint32(len(seg))
	return fold(sum(seg, s)) == 0xffff
}

func sum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Capture collects copies of the packets handed to its Receive method; use
// Receive as a link's receiver. When its buffer is full it drops packets and
// counts them.
type Capture struct {
	ch      chan []byte
	dropped atomic.Int64
}

// NewCapture returns a Capture buffering up to size packets.
func NewCapture(size int) *Capture {
	return &Capture{ch: make(chan []byte, size)}
}

// Receive copies pkt into the capture. It is meant as a link receiver.
func (c *Capture) Receive(pkt []byte) {
	select {
	case c.ch <- append([]byte(nil), pkt...):
	default:
		c.dropped.Add(1)
	}
}

// Dropped returns how many packets did not fit in the buffer.
func (c *Capture) Dropped() int64 { return c.dropped.Load() }

// Next returns the next captured packet, or false after timeout.
func (c *Capture) Next(timeout time.Duration) ([]byte, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case p := <-c.ch:
		return p, true
	case <-t.C:
		return nil, false
	}
}

// WaitTCP returns the first captured TCP segment (and its packet) for which
// match returns true, discarding the packets before it, or false when
// timeout has passed since the call.
func (c *Capture) WaitTCP(timeout time.Duration, match func(Segment) bool) (Segment, []byte, bool) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Segment{}, nil, false
		}
		p, ok := c.Next(left)
		if !ok {
			return Segment{}, nil, false
		}
		if s, ok := ParseTCP(p); ok && match(s) {
			return s, p, true
		}
	}
}

// Drain returns all packets captured so far without waiting.
func (c *Capture) Drain() [][]byte {
	var out [][]byte
	for {
		select {
		case p := <-c.ch:
			out = append(out, p)
		default:
			return out
		}
	}
}
