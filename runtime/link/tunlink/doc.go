// Package tunlink implements link.Link on a Linux TUN device (IFF_TUN |
// IFF_NO_PI): the stack owns the addresses routed to the device and sees
// exactly the IPv4 packets the kernel routes there.
//
// The device is created (or attached to, if a persistent device of that name
// exists) in the network namespace of the thread calling Open, and the
// device is removed when the link is closed unless it is persistent.
// Addresses and routes are the caller's job (netlink, e.g.
// netnstest.NS.AddTUN): typically the device gets 10.0.0.1/24 and the stack
// answers as 10.0.0.2.
//
// The kernel hands a TUN device fully checksummed, MTU-sized packets (no
// offloads are negotiated), so unlike a raw socket on a veth there are no
// partial checksums. Non-IPv4 packets the kernel sends to the device (IPv6
// router solicitations and the like) are counted and dropped.
package tunlink
