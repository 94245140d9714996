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
