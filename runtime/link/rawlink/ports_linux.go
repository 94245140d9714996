//go:build linux

package rawlink

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/link"
)

// reserver creates the kernel sockets behind ReservePort. A socket belongs
// to the network namespace of the thread that creates it, so one goroutine,
// locked to a thread switched into the link's namespace, creates them all.
type reserver struct {
	reqs chan reserveReq
	quit chan struct{}
	done chan struct{} // closed when the worker has exited

	mu   sync.Mutex
	held map[int]struct{} // reservation sockets not yet released
}

type reserveReq struct {
	addr  [4]byte
	port  uint16
	reply chan reserveResult
}

type reserveResult struct {
	fd  int
	err error
}

// startReserver starts the worker in the calling thread's namespace.
func startReserver() (*reserver, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("rawlink: network namespace: %w", err)
	}
	r := &reserver{reqs: make(chan reserveReq), quit: make(chan struct{}), done: make(chan struct{}), held: make(map[int]struct{})}
	started := make(chan error)
	go func() {
		defer close(r.done)
		defer ns.Close()
		// The thread stays locked to the end: a goroutine that exits locked
		// takes its thread (and its namespace) with it.
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			started <- fmt.Errorf("rawlink: enter network namespace: %w", err)
			return
		}
		close(started)
		for {
			select {
			case q := <-r.reqs:
				fd, err := reserveSocket(q.addr, q.port)
				q.reply <- reserveResult{fd, err}
			case <-r.quit:
				return
			}
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return r, nil
}

// reserveSocket returns a kernel TCP socket listening on addr:port whose
// socket filter drops every packet. The kernel's lookup for a segment of
// the stack's connection on that port finds it (no established socket
// matches), and tcp_v4_rcv discards the segment at the filter, before it
// could answer with an RST; the raw socket has had its copy already.
func reserveSocket(addr [4]byte, port uint16) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	none := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &none[0]}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: addr}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ReservePort claims port on LocalAddr in the host's TCP (link.PortReserver):
// a kernel socket bound to it listens with a socket filter that drops every
// packet, so the host neither answers the stack's segments for that port
// with RSTs nor hands the port to a program of its own. It fails with an
// error wrapping EADDRINUSE if a host socket holds the port already.
func (l *Link) ReservePort(port uint16) (release func(), err error) {
	reply := make(chan reserveResult, 1)
	select {
	case l.res.reqs <- reserveReq{addr: l.local, port: port, reply: reply}:
	case <-l.res.quit:
		return nil, fmt.Errorf("rawlink: reserve port %d: %w", port, link.ErrClosed)
	}
	res := <-reply
	if res.err != nil {
		return nil, fmt.Errorf("rawlink: reserve port %d: %w", port, res.err)
	}
	l.res.mu.Lock()
	l.res.held[res.fd] = struct{}{}
	l.res.mu.Unlock()
	return func() { l.res.release(res.fd) }, nil
}

func (r *reserver) release(fd int) {
	r.mu.Lock()
	_, ok := r.held[fd]
	delete(r.held, fd)
	r.mu.Unlock()
	if ok {
		unix.Close(fd)
	}
}

// close stops the worker, waits for it to exit, and releases every
// reservation.
func (r *reserver) close() {
	close(r.quit)
	<-r.done
	r.mu.Lock()
	for fd := range r.held {
		unix.Close(fd)
	}
	clear(r.held)
	r.mu.Unlock()
}
