// Package link defines how the TCP stack moves IPv4 packets, and provides an
// in-memory link pair with seeded impairments for tests and benchmarks.
package link

import "errors"

// Link moves whole IPv4 packets (header included) between the stack and a
// network. Implementations: the in-memory Pair (this package), raw IPv4
// sockets and TUN devices (Linux), and the pcap Tap wrapper.
type Link interface {
	// Send transmits one IPv4 packet. The link must not retain pkt after
	// Send returns (copy it if delivery is deferred). Send never calls the
	// receiver synchronously: delivery is always asynchronous, so a stack may
	// call Send while holding its own locks.
	Send(pkt []byte) error
	// SetReceiver installs the function called with every arriving packet.
	// pkt is valid only during the call. It must be called before traffic
	// flows; calls to recv are serialized (never concurrent with each other).
	SetReceiver(recv func(pkt []byte))
	// MTU is the largest IPv4 packet, in bytes, the link carries.
	MTU() int
	// Close stops delivery and releases resources; later Sends return ErrClosed.
	Close() error
}

// ErrClosed is returned by Send on a closed link.
var ErrClosed = errors.New("link: closed")

// Segmenter is implemented by links that take TCP packets longer than the
// MTU and cut them into MTU-sized segments on the way out: generic
// segmentation offload (GSO), what a NIC does for TSO. A stack sends one
// large packet where it would send many small ones, saving a per-packet
// trip through the link (for a raw socket: a system call, a route lookup and
// the firewall hooks per packet).
type Segmenter interface {
	// GSOMaxSize is the largest IPv4 packet SendGSO accepts; 0 means the
	// link cannot segment (e.g. a wrapper around a link that cannot), and
	// the stack then sends nothing longer than MTU.
	GSOMaxSize() int
	// SendGSO transmits the IPv4 TCP packet pkt (complete, checksums valid)
	// as segments of at most mss payload bytes each: the headers are
	// copied to every segment with the sequence number, lengths and
	// checksums adjusted, FIN and PSH kept only on the last segment and CWR
	// only on the first (as Linux's tcp_gso_segment does). Like Send, it
	// does not retain pkt and never calls the receiver synchronously.
	SendGSO(pkt []byte, mss int) error
}

// BatchReceiver is implemented by links that receive packets in batches (one
// recvmmsg, one drain of a queue). The function installed by SetBatchEnd is
// called after the last packet of each batch, on the goroutine that calls
// the receiver and serialized with it, so a receiver can defer per-packet
// work to the end of the batch: the stack sends one ACK per connection per
// batch, as Linux does per GRO packet. Install it before SetReceiver.
type BatchReceiver interface {
	SetBatchEnd(end func())
}

// PortReserver is implemented by links that share their address with the
// host's own TCP (a raw socket does). Without a reservation the host answers
// every segment of the stack's connections with an RST (which a firewall
// rule must then drop, after the host has built it) and may give the same
// port to one of its own programs. The stack reserves each port it listens
// on or dials from, and releases it when the listener or connection is gone.
type PortReserver interface {
	// ReservePort claims port for the stack. It fails with an error
	// wrapping syscall.EADDRINUSE when the host already uses the port.
	// release gives the port back; calling it more than once is harmless.
	ReservePort(port uint16) (release func(), err error)
}

// Gatherer is implemented by links that take a packet in pieces and join
// them on the way out (as writev does), so a stack can send payload straight
// from its send buffer, headers in one piece and the data in the ring's one
// or two others, instead of first copying it behind the headers.
type Gatherer interface {
	// SendGather sends the IPv4 packet that is the concatenation of parts:
	// as Send with mss == 0, as SendGSO with mss > 0 (a stack passes mss > 0
	// only to a Segmenter, for a payload longer than mss). parts[0] must
	// hold the whole IPv4 and TCP headers. Like Send, it does not retain
	// parts or their bytes and never calls the receiver synchronously.
	SendGather(parts [][]byte, mss int) error
}
