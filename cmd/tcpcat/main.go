//go:build linux

// Tcpcat is netcat over fsmgen's user-space TCP stack, talking to real peers
// through a raw IPv4 socket or a TUN device.
//
// Usage:
//
//	tcpcat [flags] HOST:PORT        dial; stdin → connection, connection → stdout
//	tcpcat -l [flags] HOST:PORT     accept one connection and relay it
//	tcpcat -l -echo [flags] HOST:PORT  echo on every connection until SIGINT/SIGTERM
//
// At stdin EOF tcpcat half-closes (sends FIN) and keeps copying the peer's
// data to stdout until the peer's FIN. It exits 0 after an orderly close and
// non-zero with a message on reset, refusal or timeout.
//
// With -link raw (the default) the stack shares the namespace's address with
// the kernel, whose TCP answers our peer's segments with RSTs; drop them with
//
//	nft add table inet fsmtcp
//	nft add chain inet fsmtcp out '{ type filter hook output priority 0; }'
//	nft add rule inet fsmtcp out tcp flags rst meta mark != 0x7463 drop
//
// (tcpcat marks its own packets with fwmark 0x7463). With -link tun the
// stack owns an address routed to a TUN device and no rule is needed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/link"
	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
	"github.com/fsmgen/fsmgen/runtime/link/tunlink"
)

func main() {
	os.Exit(run())
}

type config struct {
	listen, echo, verbose bool
	linkKind, source      string
	tunName, tunAddr      string
	msl, timeout          time.Duration
	pcap                  string
	target                netip.AddrPort
}

func run() int {
	var cfg config
	flag.BoolVar(&cfg.listen, "l", false, "listen on HOST:PORT instead of dialing it")
	flag.BoolVar(&cfg.echo, "echo", false, "with -l: echo every byte on every connection until SIGINT/SIGTERM")
	flag.StringVar(&cfg.linkKind, "link", "raw", "link: `raw` (raw IPv4 socket) or tun (TUN device)")
	flag.StringVar(&cfg.source, "s", "", "local `address` (default: the listen address, or the address of the interface routing to the destination)")
	flag.StringVar(&cfg.tunName, "tun", "fsm%d", "with -link tun: device `name`")
	flag.StringVar(&cfg.tunAddr, "tunaddr", "", "with -link tun: the kernel's `prefix` on the device, e.g. 10.201.9.1/24 (the stack uses -s)")
	flag.DurationVar(&cfg.msl, "msl", 30*time.Second, "maximum segment lifetime; TIME-WAIT lasts 2*MSL")
	flag.DurationVar(&cfg.timeout, "w", 30*time.Second, "connect timeout")
	flag.BoolVar(&cfg.verbose, "v", false, "print each connection's state transitions to stderr")
	flag.StringVar(&cfg.pcap, "pcap", "", "record the traffic to this pcap `file`")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tcpcat [-l [-echo]] [-link raw|tun] [-s ADDR] [-msl DUR] [-v] [-pcap FILE] HOST:PORT\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (cfg.echo && !cfg.listen) {
		flag.Usage()
		return 2
	}
	ap, err := netip.ParseAddrPort(flag.Arg(0))
	if err != nil || !ap.Addr().Is4() {
		fmt.Fprintf(os.Stderr, "tcpcat: %q is not IPv4:PORT\n", flag.Arg(0))
		return 2
	}
	cfg.target = ap
	if err := cfg.serve(); err != nil {
		fmt.Fprintln(os.Stderr, "tcpcat:", err)
		return 1
	}
	return 0
}

// localAddr picks the stack's address.
func (cfg *config) localAddr() (netip.Addr, error) {
	if cfg.source != "" {
		return netip.ParseAddr(cfg.source)
	}
	if cfg.listen {
		if cfg.target.Addr().IsUnspecified() {
			return netip.Addr{}, errors.New("listening on 0.0.0.0: give the stack's address with -s")
		}
		return cfg.target.Addr(), nil
	}
	// The kernel's route to the destination tells the source address; a
	// connected UDP socket asks it without sending anything.
	u, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(cfg.target))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %v: %w", cfg.target.Addr(), err)
	}
	defer u.Close()
	return u.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func (cfg *config) openLink(local netip.Addr) (link.Link, func(), error) {
	switch cfg.linkKind {
	case "raw":
		l, err := rawlink.Open(rawlink.Config{LocalAddr: local})
		if err != nil {
			return nil, nil, err
		}
		return l, func() { l.Close() }, nil
	case "tun":
		l, err := tunlink.Open(tunlink.Config{Name: cfg.tunName})
		if err != nil {
			return nil, nil, err
		}
		if err := cfg.configureTUN(l.Name()); err != nil {
			l.Close()
			return nil, nil, err
		}
		return l, func() { l.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown link %q (want raw or tun)", cfg.linkKind)
}

// configureTUN gives the kernel its address on the device and brings it up,
// so the kernel routes the stack's address to us.
func (cfg *config) configureTUN(name string) error {
	dev, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if cfg.tunAddr != "" {
		a, err := netlink.ParseAddr(cfg.tunAddr)
		if err != nil {
			return fmt.Errorf("-tunaddr: %w", err)
		}
		if err := netlink.AddrAdd(dev, a); err != nil {
			return fmt.Errorf("address %s on %s: %w", cfg.tunAddr, name, err)
		}
	}
	return netlink.LinkSetUp(dev)
}

func (cfg *config) serve() error {
	local, err := cfg.localAddr()
	if err != nil {
		return err
	}
	lnk, closeLink, err := cfg.openLink(local)
	if err != nil {
		return err
	}
	defer closeLink()
	if cfg.pcap != "" {
		f, err := os.Create(cfg.pcap)
		if err != nil {
			return err
		}
		tap := link.NewTap(lnk, f)
		defer func() { tap.Flush(); f.Close() }()
		lnk = tap
	}
	opts := fsmrt.Options{Addr: local, MSL: cfg.msl}
	if cfg.verbose {
		opts.Trace = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st, err := fsmrt.NewStack(lnk, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	if !cfg.listen {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
		defer cancel()
		c, err := st.DialContext(ctx, "tcp", cfg.target.String())
		if err != nil {
			return err
		}
		return cfg.relay(c.(*fsmrt.Conn), os.Stdin, os.Stdout)
	}
	ln, err := st.Listen("tcp", netip.AddrPortFrom(local, cfg.target.Port()).String())
	if err != nil {
		return err
	}
	if !cfg.echo {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return err
		}
		return cfg.relay(c.(*fsmrt.Conn), os.Stdin, os.Stdout)
	}
	return cfg.echoUntilSignal(ln)
}

// relay copies in → c (then half-closes) and c → out until the peer's FIN,
// then waits for the connection to finish closing (TIME-WAIT included).
func (cfg *config) relay(c *fsmrt.Conn, in io.Reader, out io.Writer) error {
	sendErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, in)
		if err == nil {
			err = c.CloseWrite()
		}
		sendErr <- err
	}()
	_, recvErr := io.Copy(out, c)
	if recvErr != nil {
		c.Close()
		return recvErr
	}
	// The peer finished; our side may still be sending.
	if err := <-sendErr; err != nil {
		c.Close()
		return err
	}
	c.Close()
	cfg.awaitClosed(c)
	return nil
}

// awaitClosed waits (bounded) until the connection reaches CLOSED, so the
// stack honours TIME-WAIT and retransmits our FIN if needed.
func (cfg *config) awaitClosed(c *fsmrt.Conn) {
	deadline := time.Now().Add(2*cfg.msl + 5*time.Second)
	for c.State() != tcpfsm.StateClosed && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (cfg *config) echoUntilSignal(ln net.Listener) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var (
		mu    sync.Mutex
		conns = map[*fsmrt.Conn]bool{}
		wg    sync.WaitGroup
	)
	go func() {
		<-sig
		ln.Close()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			break
		}
		c := nc.(*fsmrt.Conn)
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(c, c)
			c.CloseWrite()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			cfg.awaitClosed(c)
		}()
	}
	// Signalled: close what is still open cleanly (FIN) and wait a little.
	mu.Lock()
	for c := range conns {
		c.CloseWrite()
	}
	mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2*cfg.msl + 5*time.Second):
	}
	return nil
}
