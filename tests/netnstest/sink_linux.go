//go:build linux

package netnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is a kernel TCP server in a namespace that reads and discards
// everything its clients send, counting the bytes: the receiving end of
// throughput measurements.
type Sink struct {
	ln    net.Listener
	total atomic.Int64
	conns atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]struct{}
}

// StartSink listens on addr inside the namespace and serves until Close
// (called by t.Cleanup at the latest).
func (ns *NS) StartSink(addr netip.AddrPort) (*Sink, error) {
	s := &Sink{open: map[net.Conn]struct{}{}}
	err := ns.Do(func() (err error) {
		s.ln, err = net.Listen("tcp4", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netnstest: sink in %s: %w", ns.Name, err)
	}
	ns.t.Cleanup(func() { s.Close() })
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *Sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.open == nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.conns.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				s.total.Add(int64(n))
				if err != nil {
					break
				}
			}
			c.Close()
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
		}()
	}
}

// Addr returns the listening address.
func (s *Sink) Addr() netip.AddrPort {
	return s.ln.Addr().(*net.TCPAddr).AddrPort()
}

// Received returns the number of bytes received so far, over all
// connections.
func (s *Sink) Received() int64 { return s.total.Load() }

// Accepted returns the number of connections accepted so far.
func (s *Sink) Accepted() int64 { return s.conns.Load() }

// WaitReceived waits until at least n bytes have been received, or fails
// after timeout.
func (s *Sink) WaitReceived(n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for s.Received() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("netnstest: sink received %d of %d bytes in %v", s.Received(), n, timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Close stops the listener, closes open connections and waits for the
// sink's goroutines. Closing twice is harmless.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.open = nil
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
