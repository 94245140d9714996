//go:build linux

package rawlink

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/link"
)

// Mark is the fwmark (SO_MARK) carried by every packet a Link sends. Firewall
// rules use it to tell the stack's packets from the kernel's own, e.g.
// "tcp flags rst meta mark != 0x7463 drop".
const Mark = 0x7463

// DefaultMTU is the MTU used when Config.MTU is zero.
const DefaultMTU = 1500

// DefaultBatch is the number of packets read per recvmmsg call when
// Config.Batch is zero.
const DefaultBatch = 32

// maxPacket is the size of each receive buffer: the largest IPv4 packet.
// Reassembled fragments and GRO/GSO packets can exceed the MTU.
const maxPacket = 65535

// defaultRecvBuffer is the SO_RCVBUF asked for when Config.RecvBuffer is zero.
const defaultRecvBuffer = 4 << 20

// sendTimeout bounds how long Send waits for send-buffer room.
const sendTimeout = time.Second

// Config configures Open.
type Config struct {
	// LocalAddr is the IPv4 address the stack owns (required). Only IPv4 TCP
	// packets whose destination is LocalAddr are delivered. It must be an
	// address of the network namespace the link is opened in.
	LocalAddr netip.Addr
	// MTU is the largest packet Send accepts (default DefaultMTU). It should
	// not exceed the MTU of the outgoing interface: the kernel does not
	// fragment IP_HDRINCL packets and rejects larger ones with EMSGSIZE.
	MTU int
	// Batch is the number of receive buffers, i.e. packets per recvmmsg
	// (default DefaultBatch). Each buffer is 64 KiB.
	Batch int
	// RecvBuffer is the socket receive buffer in bytes (default 4 MiB; set
	// with SO_RCVBUFFORCE, falling back to SO_RCVBUF).
	RecvBuffer int
	// NoOffload sends every packet through the IP_HDRINCL socket. By
	// default a packet to a destination whose next hop is a resolved
	// Ethernet neighbor goes out through a packet socket on the outgoing
	// interface instead (AF_PACKET with PACKET_VNET_HDR), which makes
	// SendGSO a kernel segmentation offload: one system call per 64 KiB
	// rather than per segment, and no per-packet route lookup or netfilter
	// output hooks (so firewall output rules do not see the stack's
	// packets; input rules at the peer still do).
	NoOffload bool
}

// Stats are a Link's packet counters.
type Stats struct {
	RxPackets   uint64 // packets delivered to the receiver
	RxBytes     uint64 // bytes delivered to the receiver
	RxFiltered  uint64 // packets read but not IPv4 TCP to LocalAddr
	RxTruncated uint64 // packets larger than a receive buffer, dropped
	RxNoRecv    uint64 // packets dropped because no receiver was set
	RxErrors    uint64 // failed reads (a non-transient error stops the reader)
	RxOverflow  uint64 // packets the kernel dropped, receive buffer full (known when a later packet is read)
	TxPackets   uint64 // packets handed to the kernel
	TxBytes     uint64 // bytes handed to the kernel
	TxDropped   uint64 // packets dropped: ENOBUFS, or no send-buffer room within 1s
	TxErrors    uint64 // Sends that failed with another error
	TxFrames    uint64 // of TxPackets, sent through the packet socket (see Config.NoOffload)
	TxGSO       uint64 // of TxFrames, segmented by the kernel (SendGSO)
}

// ErrBadPacket is returned by Send for a packet that is not IPv4 or is
// shorter than an IPv4 header.
var ErrBadPacket = errors.New("rawlink: not an IPv4 packet")

// ErrTooBig is returned by Send for a packet larger than the link's MTU.
var ErrTooBig = errors.New("rawlink: packet larger than MTU")

// mmsghdr mirrors struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// Link is a link.Link over raw IPv4 sockets. It is safe for concurrent
// use.
type Link struct {
	local [4]byte
	mtu   int

	// The receive socket (IPPROTO_TCP) is non-blocking and lives in the
	// runtime poller. The send socket (IPPROTO_RAW: send-only, header
	// included) is blocking with a send timeout and stays out of the poller:
	// a socket registered with epoll gets a write-space wakeup for every
	// packet it sends, which costs a thread wakeup per packet (measured: 15
	// µs instead of 4 µs per Send).
	file *os.File
	rc   syscall.RawConn
	wfd  int
	off  *offload  // packet-socket transmit path; nil with Config.NoOffload
	res  *reserver // creates ReservePort's sockets in the link's namespace

	sendRawFn func([]byte) error // l.sendRaw, bound once (no allocation per use)
	joins     sync.Pool          // of *[]byte, GSOMaxSize long: SendGather's joined packets

	// mu is read-held by Send around the send syscall and write-held by
	// Close around closing wfd, so wfd is never reused under a Send.
	mu     sync.RWMutex
	closed atomic.Bool
	recv   atomic.Pointer[func([]byte)]
	end    atomic.Pointer[func()] // batch end (link.BatchReceiver)
	done   chan struct{}

	// Reader state, owned by the reader goroutine.
	bufs   [][]byte
	ctls   []byte // one control buffer (SO_RXQ_OVFL) per message
	iovs   []unix.Iovec
	msgs   []mmsghdr
	nread  int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	st struct {
		rxPackets, rxBytes, rxFiltered, rxTruncated, rxNoRecv, rxErrors, rxOverflow atomic.Uint64
		txPackets, txBytes, txDropped, txErrors, txFrames, txGSO                    atomic.Uint64
	}
}

var (
	_ link.Link          = (*Link)(nil)
	_ link.Segmenter     = (*Link)(nil)
	_ link.BatchReceiver = (*Link)(nil)
	_ link.PortReserver  = (*Link)(nil)
	_ link.Gatherer      = (*Link)(nil)
)

// Open creates the raw sockets in the calling thread's network namespace and
// starts the reader goroutine. Call it inside netnstest.NS.Do (or on a thread
// otherwise switched into the target namespace) to use another namespace.
// Requires CAP_NET_RAW and CAP_NET_ADMIN (for SO_MARK).
func Open(cfg Config) (*Link, error) {
	if !cfg.LocalAddr.Is4() {
		return nil, fmt.Errorf("rawlink: LocalAddr %v is not an IPv4 address", cfg.LocalAddr)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 68 || cfg.MTU > maxPacket {
		return nil, fmt.Errorf("rawlink: MTU %d out of range [68, %d]", cfg.MTU, maxPacket)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.RecvBuffer <= 0 {
		cfg.RecvBuffer = defaultRecvBuffer
	}
	l := &Link{local: cfg.LocalAddr.As4(), mtu: cfg.MTU, wfd: -1, done: make(chan struct{})}
	l.sendRawFn = l.sendRaw
	l.joins.New = func() any { b := make([]byte, GSOMaxSize); return &b }
	fd, err := l.setup(cfg)
	if err == nil && !cfg.NoOffload {
		l.off, err = openOffload(cfg.MTU)
	}
	if err == nil {
		l.res, err = startReserver()
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		if l.wfd >= 0 {
			unix.Close(l.wfd)
		}
		if l.off != nil {
			l.off.close()
		}
		return nil, err
	}
	// fd is non-blocking, so os.NewFile registers it with the runtime poller:
	// reads park in the poller and Close wakes them up.
	l.file = os.NewFile(uintptr(fd), "rawlink:"+cfg.LocalAddr.String())
	if l.rc, err = l.file.SyscallConn(); err != nil {
		l.file.Close()
		unix.Close(l.wfd)
		if l.off != nil {
			l.off.close()
		}
		l.res.close()
		return nil, fmt.Errorf("rawlink: %w", err)
	}
	l.bufs = make([][]byte, cfg.Batch)
	l.ctls = make([]byte, cfg.Batch*ctlSpace)
	l.iovs = make([]unix.Iovec, cfg.Batch)
	l.msgs = make([]mmsghdr, cfg.Batch)
	for i := range l.bufs {
		l.bufs[i] = make([]byte, maxPacket)
		l.iovs[i].Base = &l.bufs[i][0]
		l.iovs[i].SetLen(maxPacket)
		l.msgs[i].hdr.Iov = &l.iovs[i]
		l.msgs[i].hdr.SetIovlen(1)
		l.msgs[i].hdr.Control = &l.ctls[i*ctlSpace]
	}
	l.readFn = l.recvmmsg
	go l.readLoop()
	return l, nil
}

// setup creates the send socket (l.wfd) and returns the configured receive
// socket; on error the caller closes whichever is >= 0.
func (l *Link) setup(cfg Config) (fd int, err error) {
	l.wfd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("rawlink: send socket: %w", err)
	}
	if err := unix.SetsockoptInt(l.wfd, unix.SOL_SOCKET, unix.SO_MARK, Mark); err != nil {
		return -1, fmt.Errorf("rawlink: SO_MARK: %w", err)
	}
	tv := unix.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(l.wfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return -1, fmt.Errorf("rawlink: SO_SNDTIMEO: %w", err)
	}
	// IPPROTO_RAW sockets receive nothing; a reject-all filter makes sure.
	none := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(l.wfd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{
		Len: 1, Filter: &none[0],
	}); err != nil {
		return -1, fmt.Errorf("rawlink: SO_ATTACH_FILTER: %w", err)
	}

	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("rawlink: socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		return fd, fmt.Errorf("rawlink: SO_RXQ_OVFL: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.RecvBuffer); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RecvBuffer); err != nil {
			return fd, fmt.Errorf("rawlink: SO_RCVBUF: %w", err)
		}
	}
	prog := filter(l.local)
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{
		Len: uint16(len(prog)), Filter: &prog[0],
	}); err != nil {
		return fd, fmt.Errorf("rawlink: SO_ATTACH_FILTER: %w", err)
	}
	// Binding a raw socket makes the kernel deliver only packets whose
	// destination is the bound address. It also checks that the address is
	// local, which it must be for packets to reach raw sockets at all.
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: l.local}); err != nil {
		return fd, fmt.Errorf("rawlink: bind %v (must be an address of this network namespace): %w",
			netip.AddrFrom4(l.local), err)
	}
	return fd, nil
}

// filter returns a classic BPF program accepting IPv4 TCP packets to dst.
// For raw IPv4 sockets the program sees the packet from its IP header on.
func filter(dst [4]byte) []unix.SockFilter {
	d := uint32(dst[0])<<24 | uint32(dst[1])<<16 | uint32(dst[2])<<8 | uint32(dst[3])
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 0},            // 0: A = byte[0]
		{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0xf0},        // 1: A &= 0xf0
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0x40, Jf: 5}, // 2: version 4?
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 9},            // 3: A = protocol
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.IPPROTO_TCP, Jf: 3},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 16}, // 5: A = daddr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: d, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: maxPacket}, // 7: accept
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},         // 8: drop
	}
}

// ctlSpace is the control buffer size per message: one SO_RXQ_OVFL cmsg.
var ctlSpace = unix.CmsgSpace(4)

// recvmmsg is the RawConn.Read callback; it reports false (wait for
// readability) when nothing is queued.
func (l *Link) recvmmsg(fd uintptr) bool {
	for i := range l.msgs {
		l.msgs[i].hdr.SetControllen(ctlSpace)
		l.msgs[i].hdr.Flags = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&l.msgs[0])),
			uintptr(len(l.msgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			l.nread, l.rerr = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			l.nread, l.rerr = 0, e
			return true
		}
	}
}

func (l *Link) readLoop() {
	defer close(l.done)
	for {
		if err := l.rc.Read(l.readFn); err != nil {
			return // closed
		}
		switch l.rerr {
		case 0:
		case unix.ENOMEM, unix.ENOBUFS:
			l.st.rxErrors.Add(1)
			continue
		default:
			l.st.rxErrors.Add(1)
			return
		}
		if l.nread > 0 {
			l.overflow(&l.msgs[l.nread-1].hdr)
		}
		recv := l.recv.Load()
		for i := 0; i < l.nread; i++ {
			m := &l.msgs[i]
			if m.hdr.Flags&unix.MSG_TRUNC != 0 {
				l.st.rxTruncated.Add(1)
				continue
			}
			pkt := l.bufs[i][:m.n]
			if !l.accept(pkt) {
				l.st.rxFiltered.Add(1)
				continue
			}
			if recv == nil {
				l.st.rxNoRecv.Add(1)
				continue
			}
			if l.closed.Load() {
				return
			}
			l.st.rxPackets.Add(1)
			l.st.rxBytes.Add(uint64(len(pkt)))
			(*recv)(pkt)
		}
		if end := l.end.Load(); end != nil && recv != nil {
			(*end)()
		}
	}
}

// overflow records the kernel's cumulative receive-queue drop count, which
// SO_RXQ_OVFL attaches to packets once it is non-zero.
func (l *Link) overflow(h *unix.Msghdr) {
	if h.Controllen < unix.SizeofCmsghdr+4 {
		return
	}
	ctl := unsafe.Slice(h.Control, int(h.Controllen))
	c := (*unix.Cmsghdr)(unsafe.Pointer(h.Control))
	if c.Level == unix.SOL_SOCKET && c.Type == unix.SO_RXQ_OVFL {
		l.st.rxOverflow.Store(uint64(*(*uint32)(unsafe.Pointer(&ctl[unix.SizeofCmsghdr]))))
	}
}

// accept reports whether pkt is a well-formed IPv4 TCP packet to LocalAddr.
func (l *Link) accept(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_TCP {
		return false
	}
	if ihl := int(pkt[0]&0x0f) * 4; ihl < 20 || ihl > len(pkt) {
		return false
	}
	return [4]byte(pkt[16:20]) == l.local
}

// Send transmits one IPv4 packet (IP header included). Through the
// IP_HDRINCL socket the kernel fills in the IP header checksum and total
// length, an IP ID if it is zero and the source address if it is zero;
// through the packet socket (see Config.NoOffload) the packet goes out as
// given, so the caller must fill them (wire.Segment.Encode does). The TCP
// checksum is always the caller's. The packet carries fwmark Mark. Send
// does not retain pkt and never calls the receiver. If the socket send
// buffer is full, Send waits for room, at most a second; a packet the kernel
// drops (ENOBUFS, or that timeout) is counted in Stats.TxDropped and Send
// returns nil, as a NIC queue would drop it.
func (l *Link) Send(pkt []byte) error {
	return l.SendGather([][]byte{pkt}, 0)
}

// GSOMaxSize returns the largest packet SendGSO accepts: GSOMaxSize, or 0
// with Config.NoOffload.
func (l *Link) GSOMaxSize() int {
	if l.off == nil {
		return 0
	}
	return GSOMaxSize
}

// SendGSO transmits the IPv4 TCP packet pkt as segments of at most mss
// payload bytes (see link.Segmenter): as one frame the kernel segments when
// the destination is reachable through the packet socket, otherwise cut in
// software (wire.SplitTCP) and sent through the IP_HDRINCL socket.
func (l *Link) SendGSO(pkt []byte, mss int) error {
	if l.off == nil {
		return l.Send(pkt) // GSOMaxSize is 0: pkt must fit the MTU
	}
	if mss < 1 {
		return ErrBadPacket
	}
	return l.SendGather([][]byte{pkt}, mss)
}

// maxGather is the most parts SendGather passes to the packet socket as
// they are; more are joined first.
const maxGather = 3

// SendGather sends the packet joined from parts (link.Gatherer): as Send
// with mss == 0, as SendGSO with mss > 0. Through the packet socket the
// parts go to the kernel as they are, in one sendmsg; the IP_HDRINCL socket
// and software segmentation get them joined in a scratch buffer first.
func (l *Link) SendGather(parts [][]byte, mss int) error {
	if len(parts) == 0 {
		return ErrBadPacket
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	gso := mss > 0 && l.off != nil // without offload, GSOMaxSize is 0: a plain send
	if err := l.check(parts[0], n, gso); err != nil {
		return err
	}
	if !gso {
		mss = 0
	}
	var path l2path
	ok := false
	if l.off != nil {
		path, ok = l.off.path([4]byte(parts[0][16:20]), time.Now())
	}
	if ok && len(parts) <= maxGather {
		return l.sendFrame(&path, parts, n, mss)
	}
	pkt, jp := parts[0], (*[]byte)(nil)
	if len(parts) > 1 {
		jp = l.joins.Get().(*[]byte)
		pkt = (*jp)[:0]
		for _, p := range parts {
			pkt = append(pkt, p...)
		}
	}
	var err error
	switch {
	case ok:
		err = l.sendFrame(&path, [][]byte{pkt}, n, mss)
	case mss > 0:
		err = l.off.split(pkt, mss, l.sendRawFn)
	default:
		err = l.sendRaw(pkt)
	}
	if jp != nil {
		l.joins.Put(jp)
	}
	return err
}

// check validates a packet of n bytes whose headers start hdr: an IPv4
// packet within the MTU, or for segmentation offload (gso) a TCP packet
// with whole headers in hdr within GSOMaxSize.
func (l *Link) check(hdr []byte, n int, gso bool) error {
	if len(hdr) < 20 || hdr[0]>>4 != 4 {
		return ErrBadPacket
	}
	if !gso {
		if n > l.mtu {
			return ErrTooBig
		}
		return nil
	}
	if len(hdr) < 40 || hdr[9] != unix.IPPROTO_TCP {
		return ErrBadPacket
	}
	ihl := int(hdr[0]&0x0f) * 4
	if ihl < 20 || ihl+20 > len(hdr) || ihl+int(hdr[ihl+12]>>4)*4 > len(hdr) {
		return ErrBadPacket
	}
	if n > GSOMaxSize {
		return ErrTooBig
	}
	return nil
}

// sendRaw sends pkt through the IP_HDRINCL socket.
func (l *Link) sendRaw(pkt []byte) error {
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte(pkt[16:20])}
	l.mu.RLock()
	if l.closed.Load() {
		l.mu.RUnlock()
		return link.ErrClosed
	}
	e := sendto(l.wfd, pkt, &sa)
	l.mu.RUnlock()
	return l.sent(len(pkt), e)
}

// sendFrame sends the n-byte packet joined from parts through the packet
// socket; mss > 0 asks for GSO.
func (l *Link) sendFrame(p *l2path, parts [][]byte, n, mss int) error {
	l.mu.RLock()
	if l.closed.Load() {
		l.mu.RUnlock()
		return link.ErrClosed
	}
	e := l.off.send(p, parts, mss)
	l.mu.RUnlock()
	if e == 0 {
		l.st.txFrames.Add(1)
		if mss > 0 {
			l.st.txGSO.Add(1)
		}
	}
	return l.sent(n, e)
}

// sent counts the outcome e of sending an n-byte packet.
func (l *Link) sent(n int, e syscall.Errno) error {
	switch e {
	case 0:
		l.st.txPackets.Add(1)
		l.st.txBytes.Add(uint64(n))
		return nil
	case unix.ENOBUFS, unix.EAGAIN:
		l.st.txDropped.Add(1)
		return nil
	default:
		l.st.txErrors.Add(1)
		return fmt.Errorf("rawlink: send: %w", e)
	}
}

func sendto(fd int, pkt []byte, sa *unix.RawSockaddrInet4) syscall.Errno {
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
			0, uintptr(unsafe.Pointer(sa)), unix.SizeofSockaddrInet4)
		if e != unix.EINTR {
			return e
		}
	}
}

// SetReceiver installs the function called, from the link's reader
// goroutine, with every IPv4 TCP packet addressed to LocalAddr. pkt is valid
// only during the call; calls are serialized. Packets arriving before a
// receiver is set are dropped. recv must not call Close (Close waits for the
// reader goroutine, which is running recv).
func (l *Link) SetReceiver(recv func(pkt []byte)) {
	l.recv.Store(&recv)
}

// SetBatchEnd installs the function called, from the reader goroutine,
// after the packets of each recvmmsg batch have been passed to the receiver
// (link.BatchReceiver). The same rules as for the receiver apply.
func (l *Link) SetBatchEnd(end func()) {
	l.end.Store(&end)
}

// MTU returns the largest packet Send accepts.
func (l *Link) MTU() int { return l.mtu }

// LocalAddr returns the address the link delivers packets for.
func (l *Link) LocalAddr() netip.Addr { return netip.AddrFrom4(l.local) }

// Stats returns a snapshot of the link's counters.
func (l *Link) Stats() Stats {
	return Stats{
		RxPackets:   l.st.rxPackets.Load(),
		RxBytes:     l.st.rxBytes.Load(),
		RxFiltered:  l.st.rxFiltered.Load(),
		RxTruncated: l.st.rxTruncated.Load(),
		RxNoRecv:    l.st.rxNoRecv.Load(),
		RxErrors:    l.st.rxErrors.Load(),
		RxOverflow:  l.st.rxOverflow.Load(),
		TxPackets:   l.st.txPackets.Load(),
		TxBytes:     l.st.txBytes.Load(),
		TxDropped:   l.st.txDropped.Load(),
		TxErrors:    l.st.txErrors.Load(),
		TxFrames:    l.st.txFrames.Load(),
		TxGSO:       l.st.txGSO.Load(),
	}
}

// Close stops delivery, closes the socket and waits for the reader goroutine
// to exit: once Close returns the receiver is not running and will not be
// called again. Later Sends return link.ErrClosed. Close must not be called
// from the receiver. Closing twice is harmless.
func (l *Link) Close() error {
	if l.closed.Swap(true) {
		<-l.done
		return nil
	}
	l.mu.Lock() // wait for in-flight sends
	err := unix.Close(l.wfd)
	if l.off != nil {
		if cerr := l.off.close(); err == nil {
			err = cerr
		}
	}
	l.mu.Unlock()
	l.res.close()
	if cerr := l.file.Close(); err == nil {
		err = cerr
	}
	<-l.done
	return err
}
