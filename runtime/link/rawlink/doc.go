// Package rawlink implements link.Link on a Linux raw IPv4 socket, so a
// user-space TCP stack can talk to real hosts through the kernel's routing
// while sharing an address with the kernel.
//
// Receive: socket(AF_INET, SOCK_RAW, IPPROTO_TCP). The kernel hands every raw
// TCP socket a copy of each TCP packet it delivers locally (after the
// netfilter input hook, before its own TCP code), IP header included. The
// socket is bound to Config.LocalAddr and carries a classic BPF filter, so the
// kernel only queues IPv4 TCP packets addressed to LocalAddr; the reader checks
// again in software. Packets are read in batches with recvmmsg into a fixed
// set of preallocated buffers by one goroutine: no allocation per packet.
//
// Send, default: once the kernel has resolved the next hop of a destination
// to an Ethernet address (looked up through netlink, cached for 2 s), packets
// to it go out through a send-only packet socket on the outgoing interface
// (AF_PACKET, PACKET_VNET_HDR): one sendmsg per frame, no route lookup, no
// netfilter output hooks (firewall output rules do not see them; input rules
// at the peer do). SendGSO (link.Segmenter) hands the kernel one TCP packet
// of up to 64 KiB with a virtio-net header asking for TCPv4 segmentation, so
// a bulk transfer costs one system call per 64 KiB instead of one per
// segment; the kernel cuts it (in software when the device lacks TSO) and
// fixes lengths, sequence numbers and checksums. Measured on a veth with
// offloads off: stack→kernel from 0.30–0.35× to 0.96–0.99× of kernel→kernel.
// SendGather (link.Gatherer) passes the stack's pieces (headers, then the
// payload where it sits in the send buffer) to that sendmsg as iovecs; the
// fallback below joins them first.
//
// Send, fallback (Config.NoOffload, or a next hop not resolved yet): a
// send-only socket(AF_INET, SOCK_RAW, IPPROTO_RAW) (header included, like
// IP_HDRINCL), one sendto per packet, SendGSO cutting in software
// (wire.SplitTCP). Its route lookup makes the kernel resolve the neighbor,
// after which the packet socket takes over. It is kept blocking and out of
// the Go poller on purpose: a socket registered with epoll gets a
// write-space wakeup for every packet it sends (measured 15 µs instead of
// 4-6 µs per Send here).
//
// Both send sockets have SO_MARK = Mark, so every packet the link sends
// carries fwmark 0x7463; that lets a firewall rule drop the RSTs the kernel
// itself emits for connections it does not know (see tests/netnstest
// DropKernelRSTs).
//
// Ports (link.PortReserver): the stack reserves every port it listens on or
// dials from. ReservePort opens a kernel TCP socket listening on
// LocalAddr:port with a socket filter that drops every packet. The kernel's
// lookup for the stack's segments then finds that socket and discards the
// segment at the filter instead of building an RST for each one (the RST
// rule above becomes a safety net; building and dropping those RSTs held
// kernel→stack throughput at 0.45× the kernel's, 0.71× without), and the
// kernel cannot give the port to one of its own programs. Sockets are created by a goroutine locked to a thread
// in the link's namespace.
//
// Batches (link.BatchReceiver): after each recvmmsg batch the link calls the
// batch-end function, so the stack ACKs once per batch and connection, as
// Linux ACKs once per GRO packet.
//
// Things a stack on top of this link must know:
//
//   - The kernel's TCP sees the same packets. For a port with no kernel socket
//     it answers SYNs and segments with RST unless such RSTs are dropped
//     (rule: tcp flags rst meta mark != 0x7463 drop, output hook) or the
//     port is reserved (ReservePort; the stack does it for its own ports).
//   - LocalAddr must be an address of an interface of the socket's network
//     namespace: only locally delivered packets reach raw sockets.
//   - The socket lives in the network namespace of the thread that called
//     Open (see netnstest.NS.Do); it stays there afterwards.
//   - Checksums are not verified by the kernel before raw delivery: the stack
//     must verify them. With checksum offload on the sending side of a veth
//     (the default), packets from a local kernel arrive with only the
//     pseudo-header checksum filled in (CHECKSUM_PARTIAL); with GRO/LRO or
//     TSO across a veth, packets can be larger than the MTU (up to 64 KiB)
//     with a stale checksum. Turn those offloads off on the interfaces
//     involved (netnstest does so by default).
//   - Reassembled fragments arrive whole, so received packets may exceed
//     MTU; receive buffers are 64 KiB.
//   - The kernel does not fragment what the link sends (EMSGSIZE above the
//     route MTU), and ICMP "fragmentation needed" never reaches a TCP raw
//     socket: path MTU discovery is the stack's problem. Set DF.
//   - Packets the link sends to an address of its own namespace loop back
//     through lo and are received again by raw sockets there.
//   - The kernel queues only about 200 KiB per unresolved neighbor: the
//     first burst to a host whose ARP entry is missing loses packets
//     (netnstest installs static neighbors).
package rawlink
