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
// Send: a second, send-only socket(AF_INET, SOCK_RAW, IPPROTO_RAW) (header
// included, like IP_HDRINCL), one sendto per packet; the route is looked up
// by the packet's destination. It is kept blocking and out of the Go poller
// on purpose: a socket registered with epoll gets a write-space wakeup for
// every packet it sends (measured 15 µs instead of 4-6 µs per Send here).
// sendmmsg is not used: the per-packet cost is the kernel's route, xmit and
// receive path (run inside sendto on a veth), not the syscall, and batching
// would need a queue behind the per-packet Send. The socket has SO_MARK =
// Mark, so every packet the link sends carries fwmark 0x7463; that lets a
// firewall rule drop the RSTs the kernel itself emits for connections it
// does not know (see tests/netnstest DropKernelRSTs).
//
// Things a stack on top of this link must know:
//
//   - The kernel's TCP sees the same packets. For a port with no kernel socket
//     it answers SYNs and segments with RST unless such RSTs are dropped
//     (rule: tcp flags rst meta mark != 0x7463 drop, output hook). Choose
//     ports the kernel will not use itself (outside
//     net.ipv4.ip_local_port_range, or reserve them with a kernel socket).
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
