//go:build linux

package tunlink

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/link"
)

// DefaultMTU is the device MTU when Config.MTU is zero and the device's MTU
// cannot be read.
const DefaultMTU = 1500

// maxPacket is the read buffer size: the largest IPv4 packet.
const maxPacket = 65535

// Config configures Open.
type Config struct {
	// Name is the interface name (at most 15 bytes). Empty, or a pattern
	// with %d such as "fsm%d", lets the kernel choose; Link.Name reports it.
	Name string
	// MTU, if non-zero, is set on the device; otherwise the device's current
	// MTU (1500 for a new device) is used.
	MTU int
}

// Stats are a Link's packet counters.
type Stats struct {
	RxPackets  uint64 // packets delivered to the receiver
	RxBytes    uint64 // bytes delivered to the receiver
	RxNotIPv4  uint64 // packets read that were not IPv4, dropped
	RxNoRecv   uint64 // packets dropped because no receiver was set
	TxPackets  uint64 // packets written to the device
	TxBytes    uint64 // bytes written to the device
	TxErrors   uint64 // writes that failed
	ReadErrors uint64 // reads that failed (the reader stops on the first)
}

// ErrBadPacket is returned by Send for a packet that is not IPv4.
var ErrBadPacket = errors.New("tunlink: not an IPv4 packet")

// ErrTooBig is returned by Send for a packet larger than the link's MTU.
var ErrTooBig = errors.New("tunlink: packet larger than MTU")

// Link is a link.Link over a TUN device. It is safe for concurrent use.
type Link struct {
	name   string
	mtu    int
	file   *os.File
	closed atomic.Bool
	recv   atomic.Pointer[func([]byte)]
	done   chan struct{}
	buf    []byte // owned by the reader goroutine

	st struct {
		rxPackets, rxBytes, rxNotIPv4, rxNoRecv atomic.Uint64
		txPackets, txBytes, txErrors, readErrs  atomic.Uint64
	}
}

var _ link.Link = (*Link)(nil)

// Open creates (or attaches to) the TUN device in the calling thread's
// network namespace and starts the reader goroutine. Call it inside
// netnstest.NS.Do to create the device in another namespace. Requires
// CAP_NET_ADMIN.
func Open(cfg Config) (*Link, error) {
	if cfg.MTU < 0 || cfg.MTU > maxPacket || (cfg.MTU != 0 && cfg.MTU < 68) {
		return nil, fmt.Errorf("tunlink: MTU %d out of range [68, %d]", cfg.MTU, maxPacket)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tunlink: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tunlink: interface name %q: %w", cfg.Name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tunlink: TUNSETIFF %q: %w", cfg.Name, err)
	}
	l := &Link{name: ifr.Name(), done: make(chan struct{}), buf: make([]byte, maxPacket)}
	if l.mtu, err = deviceMTU(l.name, cfg.MTU); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The fd is non-blocking, so os.NewFile registers it with the runtime
	// poller: Read parks in the poller and Close wakes it up.
	l.file = os.NewFile(uintptr(fd), "/dev/net/tun:"+l.name)
	go l.readLoop()
	return l, nil
}

// deviceMTU sets the device MTU to mtu if non-zero, and returns the MTU.
func deviceMTU(name string, mtu int) (int, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("tunlink: socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if mtu != 0 {
		ifr.SetUint32(uint32(mtu))
		if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
			return 0, fmt.Errorf("tunlink: set MTU %d on %s: %w", mtu, name, err)
		}
		return mtu, nil
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFMTU, ifr); err != nil {
		return DefaultMTU, nil
	}
	return int(ifr.Uint32()), nil
}

func (l *Link) readLoop() {
	defer close(l.done)
	for {
		n, err := l.file.Read(l.buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				l.st.readErrs.Add(1)
			}
			return
		}
		pkt := l.buf[:n]
		if n < 20 || pkt[0]>>4 != 4 {
			l.st.rxNotIPv4.Add(1)
			continue
		}
		recv := l.recv.Load()
		if recv == nil {
			l.st.rxNoRecv.Add(1)
			continue
		}
		if l.closed.Load() {
			return
		}
		l.st.rxPackets.Add(1)
		l.st.rxBytes.Add(uint64(n))
		(*recv)(pkt)
	}
}

// Send writes one IPv4 packet to the device, i.e. hands it to the kernel as
// if it had arrived on that interface. The packet must be complete (both
// checksums filled in). Send does not retain pkt and never calls the
// receiver.
func (l *Link) Send(pkt []byte) error {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return ErrBadPacket
	}
	if len(pkt) > l.mtu {
		return ErrTooBig
	}
	if l.closed.Load() {
		return link.ErrClosed
	}
	if _, err := l.file.Write(pkt); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return link.ErrClosed
		}
		l.st.txErrors.Add(1)
		return fmt.Errorf("tunlink: write: %w", err)
	}
	l.st.txPackets.Add(1)
	l.st.txBytes.Add(uint64(len(pkt)))
	return nil
}

// SetReceiver installs the function called, from the link's reader
// goroutine, with every IPv4 packet the kernel routes to the device. pkt is
// valid only during the call; calls are serialized. Packets arriving before
// a receiver is set are dropped. recv must not call Close.
func (l *Link) SetReceiver(recv func(pkt []byte)) {
	l.recv.Store(&recv)
}

// MTU returns the device MTU, the largest packet Send accepts.
func (l *Link) MTU() int { return l.mtu }

// Name returns the interface name of the device.
func (l *Link) Name() string { return l.name }

// Stats returns a snapshot of the link's counters.
func (l *Link) Stats() Stats {
	return Stats{
		RxPackets:  l.st.rxPackets.Load(),
		RxBytes:    l.st.rxBytes.Load(),
		RxNotIPv4:  l.st.rxNotIPv4.Load(),
		RxNoRecv:   l.st.rxNoRecv.Load(),
		TxPackets:  l.st.txPackets.Load(),
		TxBytes:    l.st.txBytes.Load(),
		TxErrors:   l.st.txErrors.Load(),
		ReadErrors: l.st.readErrs.Load(),
	}
}

// Close stops delivery, closes the device (removing it unless persistent)
// and waits for the reader goroutine to exit: once Close returns the
// receiver is not running and will not be called again. Later Sends return
// link.ErrClosed. Close must not be called from the receiver. Closing twice
// is harmless.
func (l *Link) Close() error {
	if l.closed.Swap(true) {
		<-l.done
		return nil
	}
	err := l.file.Close()
	<-l.done
	return err
}
