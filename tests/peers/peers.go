// Package peers benchmarks the fsmgen TCP stack (package runtime) against
// gVisor's netstack and the kernel's TCP over loopback, doing the same work
// through the same net.Conn/net.Listener interfaces. It is a separate module
// so that users of fsmgen never inherit gVisor.
//
// Both user-space stacks run two stacks in one process joined by in-memory
// links of comparable cost: fsmgen by runtime/link.Pair (one goroutine per
// direction draining a bounded queue), netstack by two gVisor channel link
// endpoints and one goroutine per direction moving packets between them.
// Neither link adds delay. See README.md and cmd/compare.
package peers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/link"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Env is one client/server setup: Dial connects to Listener.
type Env struct {
	Name     string
	Listener net.Listener
	Dial     func(ctx context.Context) (net.Conn, error)
	Close    func()
	// Listen opens another listener (port > 0); used to spread many
	// connections over several server ports.
	Listen func(port int) (net.Listener, error)
	// DialAddr dials a listener of this environment (Listener.Addr()).
	DialAddr func(ctx context.Context, addr net.Addr) (net.Conn, error)

	// Fsmgen is set for fsmgen environments: the client and server stacks.
	Client, Server *fsmrt.Stack
}

// Config selects what an environment looks like.
type Config struct {
	MTU  int     // link MTU (user-space stacks only); 0 means 1500
	Loss float64 // per-packet loss on the client→server (data) direction
	Seed int64
	// TimeWait is how long TIME-WAIT lasts (2*MSL); 0 leaves each stack's
	// default (fsmgen 60s, netstack 60s).
	TimeWait time.Duration
	// Fsmgen, if set, adjusts the options of both fsmgen stacks.
	Fsmgen func(*fsmrt.Options)
}

var (
	clientAddr = netip.MustParseAddr("10.0.0.1")
	serverAddr = netip.MustParseAddr("10.0.0.2")
)

const serverPort = 80

// NewFsmgen returns two fsmgen stacks joined by a link.Pair.
func NewFsmgen(cfg Config) (*Env, error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	a, b := link.Pair(clock.NewReal(), link.PairConfig{
		MTU: cfg.MTU, Seed: cfg.Seed, AtoB: link.Impairments{Loss: cfg.Loss},
	})
	opts := func(addr netip.Addr) fsmrt.Options {
		o := fsmrt.Options{Addr: addr}
		if cfg.TimeWait > 0 {
			o.MSL = cfg.TimeWait / 2
		}
		if cfg.Fsmgen != nil {
			cfg.Fsmgen(&o)
		}
		return o
	}
	cs, err := fsmrt.NewStack(a, opts(clientAddr))
	if err != nil {
		return nil, err
	}
	ss, err := fsmrt.NewStack(b, opts(serverAddr))
	if err != nil {
		return nil, err
	}
	ln, err := ss.Listen("tcp", fmt.Sprintf(":%d", serverPort))
	if err != nil {
		return nil, err
	}
	return &Env{
		Name:     "fsmgen",
		Listener: ln,
		Client:   cs,
		Server:   ss,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return cs.DialContext(ctx, "tcp", netip.AddrPortFrom(serverAddr, serverPort).String())
		},
		Listen: func(port int) (net.Listener, error) { return ss.Listen("tcp", fmt.Sprintf(":%d", port)) },
		DialAddr: func(ctx context.Context, addr net.Addr) (net.Conn, error) {
			return cs.DialContext(ctx, "tcp", addr.String())
		},
		Close: func() {
			ln.Close()
			cs.Close()
			ss.Close()
			a.Close()
			b.Close()
		},
	}, nil
}

// NewNetstack returns two gVisor stacks, each with one NIC on a channel
// link endpoint, and a goroutine per direction shuttling packets.
func NewNetstack(cfg Config) (*Env, error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	newStack := func(addr netip.Addr) (*stack.Stack, *channel.Endpoint, error) {
		s := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		})
		if cfg.TimeWait > 0 {
			opt := tcpip.TCPTimeWaitTimeoutOption(cfg.TimeWait)
			if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
				return nil, nil, fmt.Errorf("TCPTimeWaitTimeoutOption: %s", err)
			}
		}
		// Queue length as fsmgen's link (link.DefaultQueueLimit).
		ep := channel.New(link.DefaultQueueLimit, uint32(cfg.MTU), "")
		if err := s.CreateNIC(1, ep); err != nil {
			return nil, nil, fmt.Errorf("CreateNIC: %s", err)
		}
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFrom4(addr.As4()).WithPrefix()}
		if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
			return nil, nil, fmt.Errorf("AddProtocolAddress: %s", err)
		}
		s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}})
		return s, ep, nil
	}
	cs, cep, err := newStack(clientAddr)
	if err != nil {
		return nil, err
	}
	ss, sep, err := newStack(serverAddr)
	if err != nil {
		return nil, err
	}
	full := func(port int) tcpip.FullAddress {
		return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(serverAddr.As4()), Port: uint16(port)}
	}
	listen := func(port int) (net.Listener, error) {
		return gonet.ListenTCP(ss, full(port), ipv4.ProtocolNumber)
	}
	ln, err := listen(serverPort)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); shuttle(ctx, cep, sep, cfg.Loss, uint64(cfg.Seed)) }()
	go func() { defer wg.Done(); shuttle(ctx, sep, cep, 0, uint64(cfg.Seed)) }()

	return &Env{
		Name:     "netstack",
		Listener: ln,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, cs, full(serverPort), ipv4.ProtocolNumber)
		},
		Listen: listen,
		DialAddr: func(ctx context.Context, addr net.Addr) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, cs, full(addr.(*net.TCPAddr).Port), ipv4.ProtocolNumber)
		},
		Close: func() {
			ln.Close()
			cs.Close()
			ss.Close()
			cancel()
			wg.Wait()
			cs.Wait()
			ss.Wait()
		},
	}, nil
}

// shuttle moves every packet src's stack sends into dst's stack, dropping a
// seeded random fraction loss of them.
func shuttle(ctx context.Context, src, dst *channel.Endpoint, loss float64, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xa2b))
	for {
		pkt := src.ReadContext(ctx)
		if pkt == nil {
			return
		}
		if loss > 0 && rng.Float64() < loss {
			pkt.DecRef()
			continue
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
		pkt.DecRef()
		dst.InjectInbound(ipv4.ProtocolNumber, in)
		in.DecRef()
	}
}

// NewKernel returns the kernel's TCP over 127.0.0.1.
func NewKernel() (*Env, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	var d net.Dialer
	var mu sync.Mutex
	var extra []net.Listener
	return &Env{
		Name:     "kernel",
		Listener: ln,
		Dial:     func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		DialAddr: func(ctx context.Context, a net.Addr) (net.Conn, error) { return d.DialContext(ctx, "tcp", a.String()) },
		Listen: func(port int) (net.Listener, error) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err == nil {
				mu.Lock()
				extra = append(extra, l)
				mu.Unlock()
			}
			return l, err
		},
		Close: func() {
			ln.Close()
			mu.Lock()
			for _, l := range extra {
				l.Close()
			}
			mu.Unlock()
		},
	}, nil
}
