//go:build linux

package rawlink

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/wire"
)

// GSOMaxSize is the largest IPv4 packet SendGSO accepts: the IPv4 total
// length limit.
const GSOMaxSize = 65535

// pathTTL is how long a resolved next hop is trusted before Send asks the
// kernel again (a neighbor's hardware address or the route can change);
// pathRetry is how long an unresolved one waits before the next attempt,
// during which packets take the IP_HDRINCL socket, whose route lookup makes
// the kernel resolve the neighbor.
const (
	pathTTL   = 2 * time.Second
	pathRetry = 100 * time.Millisecond
)

// virtio_net_hdr (linux/virtio_net.h) constants; the header precedes every
// frame on a PACKET_VNET_HDR socket, in host byte order on little-endian
// hosts (virtio 1.0 is little-endian).
const (
	vnetHdrLen     = 10
	vnetGSOTCPv4   = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	ethHdrLen      = 14
	frameHdrLen    = vnetHdrLen + ethHdrLen
	packetSendBuf  = 4 << 20
	ethPIPNetOrder = 0x0008 // htons(ETH_P_IP) on little-endian hosts
)

// l2path is how to reach one destination through the packet socket.
type l2path struct {
	ok      bool      // resolved: ifindex and hdr are valid
	ifindex int32     // outgoing interface
	eth     [14]byte  // Ethernet header: next hop, our address, IPv4
	expires time.Time // when to resolve again
	addr    unix.RawSockaddrLinklayer
}

// offload is the packet-socket transmit path (see Config.NoOffload).
type offload struct {
	fd int // AF_PACKET, SOCK_RAW, protocol 0 (send only), PACKET_VNET_HDR
	nl *netlink.Handle

	mu    sync.Mutex
	paths map[[4]byte]*l2path

	scratch sync.Pool // of *[]byte, MTU-sized: software segmentation
}

// openOffload creates the packet socket and a netlink handle in the calling
// thread's network namespace.
func openOffload(mtu int) (*offload, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rawlink: packet socket: %w", err)
	}
	o := &offload{fd: fd, paths: make(map[[4]byte]*l2path)}
	o.scratch.New = func() any { b := make([]byte, mtu); return &b }
	fail := func(what string, err error) (*offload, error) {
		o.close()
		return nil, fmt.Errorf("rawlink: packet socket %s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, Mark); err != nil {
		return fail("SO_MARK", err)
	}
	tv := unix.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fail("SO_SNDTIMEO", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, packetSendBuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, packetSendBuf); err != nil {
			return fail("SO_SNDBUF", err)
		}
	}
	if o.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return fail("netlink", err)
	}
	return o, nil
}

func (o *offload) close() error {
	if o.nl != nil {
		o.nl.Close()
	}
	return unix.Close(o.fd)
}

// path returns how to reach dst, resolving it when unknown or expired. The
// result is a copy: the cache entry may be replaced concurrently.
func (o *offload) path(dst [4]byte, now time.Time) (l2path, bool) {
	o.mu.Lock()
	p := o.paths[dst]
	if p != nil && now.Before(p.expires) {
		r := *p
		o.mu.Unlock()
		return r, r.ok
	}
	o.mu.Unlock()
	r := o.resolve(dst, now)
	o.mu.Lock()
	if len(o.paths) > 4096 { // bound the cache; entries are cheap to rebuild
		clear(o.paths)
	}
	o.paths[dst] = &r
	o.mu.Unlock()
	return r, r.ok
}

// resolve asks the kernel for the route to dst and the next hop's hardware
// address. Only Ethernet next hops the kernel has resolved qualify; anything
// else (loopback, a gateway not yet in the neighbor table, a point-to-point
// device) leaves the packet to the IP_HDRINCL socket.
func (o *offload) resolve(dst [4]byte, now time.Time) l2path {
	miss := l2path{expires: now.Add(pathRetry)}
	routes, err := o.nl.RouteGet(net.IP(dst[:]))
	if err != nil || len(routes) == 0 {
		return miss
	}
	rt := routes[0]
	if rt.Type == unix.RTN_LOCAL || rt.LinkIndex <= 0 {
		return miss
	}
	lk, err := o.nl.LinkByIndex(rt.LinkIndex)
	if err != nil {
		return miss
	}
	attrs := lk.Attrs()
	if attrs.EncapType != "ether" || len(attrs.HardwareAddr) != 6 {
		return miss
	}
	hop, _ := netip.AddrFromSlice(dst[:])
	if gw, ok := netip.AddrFromSlice(rt.Gw.To4()); ok && rt.Gw != nil && !gw.IsUnspecified() {
		hop = gw
	}
	neighs, err := o.nl.NeighList(rt.LinkIndex, unix.AF_INET)
	if err != nil {
		return miss
	}
	const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP.To4())
		if !ok || a != hop || n.State&usable == 0 || len(n.HardwareAddr) != 6 {
			continue
		}
		p := l2path{ok: true, ifindex: int32(rt.LinkIndex), expires: now.Add(pathTTL)}
		copy(p.eth[0:6], n.HardwareAddr)
		copy(p.eth[6:12], attrs.HardwareAddr)
		binary.BigEndian.PutUint16(p.eth[12:14], unix.ETH_P_IP)
		p.addr = unix.RawSockaddrLinklayer{
			Family: unix.AF_PACKET, Protocol: ethPIPNetOrder, Ifindex: p.ifindex, Halen: 6,
		}
		copy(p.addr.Addr[:], n.HardwareAddr)
		return p
	}
	return miss
}

// send transmits the packet joined from parts (at most maxGather; parts[0]
// holds the IPv4 and, with mss > 0, the TCP header) as one Ethernet frame on
// p's interface. mss > 0 asks the kernel to segment it (GSO) into mss-byte
// TCP segments, fixing lengths, sequence numbers and checksums; the
// packet's own TCP checksum is then ignored.
func (o *offload) send(p *l2path, parts [][]byte, mss int) syscall.Errno {
	var hdr [frameHdrLen]byte
	if mss > 0 {
		h := parts[0]
		ihl := int(h[0]&0x0f) * 4
		thl := int(h[ihl+12]>>4) * 4
		hdr[1] = vnetGSOTCPv4
		binary.LittleEndian.PutUint16(hdr[2:4], uint16(ethHdrLen+ihl+thl)) // hdr_len
		binary.LittleEndian.PutUint16(hdr[4:6], uint16(mss))               // gso_size
	}
	copy(hdr[vnetHdrLen:], p.eth[:])
	var iov [1 + maxGather]unix.Iovec
	iov[0].Base = &hdr[0]
	iov[0].SetLen(frameHdrLen)
	k := 1
	for _, part := range parts {
		if len(part) > 0 {
			iov[k].Base = &part[0]
			iov[k].SetLen(len(part))
			k++
		}
	}
	msg := unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&p.addr)),
		Namelen: unix.SizeofSockaddrLinklayer,
		Iov:     &iov[0],
	}
	msg.SetIovlen(k)
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(o.fd), uintptr(unsafe.Pointer(&msg)), 0)
		if e != unix.EINTR {
			return e
		}
	}
}

// split segments pkt in software for a destination the packet socket cannot
// reach yet, handing each segment to send.
func (o *offload) split(pkt []byte, mss int, send func([]byte) error) error {
	b := o.scratch.Get().(*[]byte)
	err := wire.SplitTCP(pkt, mss, *b, send)
	o.scratch.Put(b)
	return err
}
