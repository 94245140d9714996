//go:build linux

package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/link/tunlink"
)

// EnvRequireRoot is the environment variable that turns RequireRoot's skip
// into a failure when set to "1" (for CI that must run the network tests).
const EnvRequireRoot = "FSMTCP_REQUIRE_ROOT_TESTS"

// NetnsDir is where named network namespaces are bind-mounted (as by
// "ip netns add").
const NetnsDir = "/run/netns"

// NamePrefix starts the name of every namespace this package creates.
const NamePrefix = "fsmt-"

// lockPath serializes the choice of N across test processes.
const lockPath = "/run/fsmt-netnstest.lock"

// RequireRoot skips the test unless it runs as root (euid 0), which the
// network namespace tests need. If FSMTCP_REQUIRE_ROOT_TESTS=1 it fails the
// test instead of skipping it.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := fmt.Sprintf("test needs root (network namespaces, veth, TUN, raw sockets, nftables); euid=%d", os.Geteuid())
	if os.Getenv(EnvRequireRoot) == "1" {
		t.Fatal(msg + " and " + EnvRequireRoot + "=1")
	}
	t.Skip(msg + "; set " + EnvRequireRoot + "=1 to make this a failure")
}

// Options configures New.
type Options struct {
	// MTU of the veth pair and of TUN devices added with AddTUN (default 1500).
	MTU int
	// KeepOffloads leaves the veth's checksum/segmentation offloads on. By
	// default tx checksumming, scatter-gather, TSO and GRO are turned off so
	// the veth behaves like a wire: raw sockets then see complete checksums
	// and MTU-sized packets (with offloads on, packets from a kernel in the
	// other namespace carry only a pseudo-header checksum and TCP segments
	// can be up to 64 KiB).
	KeepOffloads bool
}

// Topology is two network namespaces, A and B, joined by a veth pair.
type Topology struct {
	// A and B are the two namespaces.
	A, B *NS
	// N is the topology's number: the veth subnet is 10.201.N.0/24.
	N int
	// Prefix is the veth subnet, 10.201.N.0/24.
	Prefix netip.Prefix
	// AddrA (10.201.N.1) and AddrB (10.201.N.2) are the veth addresses.
	AddrA, AddrB netip.Addr
	// VethA and VethB are the veth interface names in A and B.
	VethA, VethB string
	// MTU is the veth MTU.
	MTU int
}

// NS is a network namespace created by New.
type NS struct {
	// Name is the namespace's name under /run/netns ("ip netns exec NAME"
	// works while the test runs).
	Name string

	t     testing.TB
	h     netns.NsHandle
	nl    *netlink.Handle
	mtu   int
	rstOn bool
}

// AuxPrefix returns 10.201.(N+128).0/24, a second subnet private to this
// topology (for a TUN device, say).
func (tp *Topology) AuxPrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 201, byte(tp.N + 128), 0}), 24)
}

// New creates a Topology and registers its removal with t.Cleanup: the veth
// is deleted and both namespaces are unmounted and closed (which also
// removes TUN devices and nftables rules in them). It calls t.Fatal on
// error, and RequireRoot first.
func New(t testing.TB, opts Options) *Topology {
	t.Helper()
	RequireRoot(t)
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	tp := &Topology{VethA: "veth-a", VethB: "veth-b", MTU: opts.MTU}
	t.Cleanup(func() {
		for _, err := range tp.destroy() {
			t.Errorf("netnstest: cleanup: %v", err)
		}
	})
	if err := tp.create(t, opts); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	return tp
}

func (tp *Topology) create(t testing.TB, opts Options) error {
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close() // releases the flock
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("flock %s: %w", lockPath, err)
	}
	used := reapAndListUsed()
	var rnd [4]byte
	rand.Read(rnd[:])
	start := int(rnd[0]) % 126
	for i := range 126 {
		if n := 1 + (start+i)%126; !used[n] {
			tp.N = n
			break
		}
	}
	if tp.N == 0 {
		return errors.New("all 126 topology numbers are in use")
	}
	base := fmt.Sprintf("%s%s-n%d-p%d-", NamePrefix, hex.EncodeToString(rnd[1:]), tp.N, os.Getpid())
	tp.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 201, byte(tp.N), 0}), 24)
	tp.AddrA = netip.AddrFrom4([4]byte{10, 201, byte(tp.N), 1})
	tp.AddrB = netip.AddrFrom4([4]byte{10, 201, byte(tp.N), 2})
	if tp.A, err = newNS(t, base+"a", opts.MTU); err != nil {
		return err
	}
	if tp.B, err = newNS(t, base+"b", opts.MTU); err != nil {
		return err
	}
	lock.Close() // the names are taken; others may go ahead

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: tp.VethA, MTU: opts.MTU},
		PeerName:      tp.VethB,
		PeerNamespace: netlink.NsFd(tp.B.h),
	}
	if err := tp.A.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	if err := tp.A.nl.LinkSetMTU(veth, opts.MTU); err != nil {
		return fmt.Errorf("veth MTU: %w", err)
	}
	for _, side := range []struct {
		ns   *NS
		name string
		addr netip.Addr
	}{{tp.A, tp.VethA, tp.AddrA}, {tp.B, tp.VethB, tp.AddrB}} {
		l, err := side.ns.nl.LinkByName(side.name)
		if err != nil {
			return fmt.Errorf("%s: %w", side.ns.Name, err)
		}
		if err := side.ns.nl.LinkSetMTU(l, opts.MTU); err != nil {
			return fmt.Errorf("%s: MTU: %w", side.ns.Name, err)
		}
		if err := side.ns.nl.AddrAdd(l, nlAddr(netip.PrefixFrom(side.addr, 24))); err != nil {
			return fmt.Errorf("%s: add address: %w", side.ns.Name, err)
		}
		if !opts.KeepOffloads {
			if err := side.ns.Do(func() error { return disableOffloads(side.name) }); err != nil {
				return fmt.Errorf("%s: %w", side.ns.Name, err)
			}
		}
		if err := side.ns.nl.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s: link up: %w", side.ns.Name, err)
		}
	}
	if err := tp.staticNeighbors(); err != nil {
		return err
	}
	// Carrier-on is applied asynchronously (linkwatch); until then the veth
	// drops what it is given.
	for _, side := range []struct {
		ns   *NS
		name string
	}{{tp.A, tp.VethA}, {tp.B, tp.VethB}} {
		if err := side.ns.waitOperUp(side.name, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitOperUp waits until the interface's operational state is up.
func (ns *NS) waitOperUp(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := ns.nl.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s: %w", ns.Name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not operationally up after %v (state %v)", ns.Name, name, timeout, l.Attrs().OperState)
		}
		time.Sleep(time.Millisecond)
	}
}

// staticNeighbors adds permanent ARP entries on both sides, so no packet
// waits for (or is dropped during) neighbor resolution: the kernel queues at
// most unres_qlen_bytes (about 200 KiB of skbs) per unresolved neighbor and
// drops the rest of a burst.
func (tp *Topology) staticNeighbors() error {
	la, err := tp.A.nl.LinkByName(tp.VethA)
	if err != nil {
		return err
	}
	lb, err := tp.B.nl.LinkByName(tp.VethB)
	if err != nil {
		return err
	}
	for _, n := range []struct {
		ns   *NS
		dev  netlink.Link
		peer netip.Addr
		mac  net.HardwareAddr
	}{{tp.A, la, tp.AddrB, lb.Attrs().HardwareAddr}, {tp.B, lb, tp.AddrA, la.Attrs().HardwareAddr}} {
		err := n.ns.nl.NeighSet(&netlink.Neigh{
			LinkIndex:    n.dev.Attrs().Index,
			Family:       unix.AF_INET,
			State:        netlink.NUD_PERMANENT,
			IP:           n.peer.AsSlice(),
			HardwareAddr: n.mac,
		})
		if err != nil {
			return fmt.Errorf("%s: static neighbor %v: %w", n.ns.Name, n.peer, err)
		}
	}
	return nil
}

func newNS(t testing.TB, name string, mtu int) (*NS, error) {
	if err := createNamed(name); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	ns := &NS{Name: name, t: t, h: -1, mtu: mtu}
	var err error
	if ns.h, err = netns.GetFromName(name); err != nil {
		netns.DeleteNamed(name)
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	if ns.nl, err = netlink.NewHandleAt(ns.h); err != nil {
		ns.destroy()
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	lo, err := ns.nl.LinkByName("lo")
	if err == nil {
		err = ns.nl.LinkSetUp(lo)
	}
	if err != nil {
		ns.destroy()
		return nil, fmt.Errorf("%s: loopback up: %w", name, err)
	}
	return ns, nil
}

// createNamed creates a named network namespace from a throwaway thread:
// the goroutine stays locked to its thread and exits, so the runtime
// discards the thread together with its changed namespace.
func createNamed(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		h, err := netns.NewNamed(name)
		if err != nil {
			os.Remove(filepath.Join(NetnsDir, name)) // NewNamed may leave the file
		} else {
			h.Close()
		}
		errc <- err
	}()
	return <-errc
}

// reapAndListUsed deletes namespaces left behind by dead processes and
// returns the topology numbers of the live ones. Called under the lock.
func reapAndListUsed() map[int]bool {
	used := map[int]bool{}
	ents, _ := os.ReadDir(NetnsDir)
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, NamePrefix) {
			continue
		}
		n, pid := parseName(name)
		if pid > 0 && unix.Kill(pid, 0) == unix.ESRCH {
			destroyNamed(name)
			continue
		}
		used[n] = true
	}
	return used
}

// destroyNamed unmounts and removes a named namespace.
func destroyNamed(name string) error { return netns.DeleteNamed(name) }

// parseName extracts N and the pid from "fsmt-<rand>-n<N>-p<pid>-<a|b>".
func parseName(name string) (n, pid int) {
	for _, f := range strings.Split(name, "-") {
		if v, err := strconv.Atoi(f[min(1, len(f)):]); err == nil && len(f) > 1 {
			switch f[0] {
			case 'n':
				n = v
			case 'p':
				pid = v
			}
		}
	}
	return n, pid
}

func (tp *Topology) destroy() []error {
	var errs []error
	if tp.A != nil && tp.A.nl != nil {
		if l, err := tp.A.nl.LinkByName(tp.VethA); err == nil {
			if err := tp.A.nl.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete veth: %w", err))
			}
		}
	}
	for _, ns := range []*NS{tp.A, tp.B} {
		if ns != nil {
			errs = append(errs, ns.destroy()...)
		}
	}
	return errs
}

func (ns *NS) destroy() []error {
	var errs []error
	if ns.nl != nil {
		ns.nl.Close()
		ns.nl = nil
	}
	if ns.h >= 0 {
		ns.h.Close()
		ns.h = -1
	}
	if err := netns.DeleteNamed(ns.Name); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns.Name, err))
	}
	return errs
}

// Do runs fn on the calling goroutine, locked to its OS thread, with the
// thread switched into the namespace; afterwards it switches the thread back
// and unlocks it. Sockets, listeners and devices created in fn belong to the
// namespace for life and can be used from any goroutine afterwards;
// goroutines started in fn do not run in the namespace. fn may call
// t.FailNow (the thread is restored by a deferred call). If the original
// namespace cannot be restored, Do panics and leaves the goroutine locked,
// so the tainted thread dies with the goroutine.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netnstest: current namespace: %w", err)
	}
	if err := netns.Set(ns.h); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return fmt.Errorf("netnstest: enter %s: %w", ns.Name, err)
	}
	defer func() {
		err := netns.Set(orig)
		orig.Close()
		if err != nil {
			panic(fmt.Sprintf("netnstest: cannot leave namespace %s: %v", ns.Name, err))
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Handle returns the namespace's handle (an open nsfs file descriptor),
// valid until the test's cleanup.
func (ns *NS) Handle() netns.NsHandle { return ns.h }

// Netlink returns a netlink handle operating in the namespace (for links,
// addresses and routes), valid until the test's cleanup.
func (ns *NS) Netlink() *netlink.Handle { return ns.nl }

// AddTUN creates a TUN device named name in the namespace (with the MTU of
// the topology), assigns it addr (e.g. 10.201.M.1/24, which also routes
// 10.201.M.0/24 to the device), brings it up and returns the open link. The
// link is closed, and so the device removed, by t.Cleanup; closing it
// earlier is fine.
func (ns *NS) AddTUN(name string, addr netip.Prefix) (*tunlink.Link, error) {
	var l *tunlink.Link
	err := ns.Do(func() (err error) {
		l, err = tunlink.Open(tunlink.Config{Name: name, MTU: ns.mtu})
		return err
	})
	if err != nil {
		return nil, err
	}
	ns.t.Cleanup(func() { l.Close() })
	dev, err := ns.nl.LinkByName(l.Name())
	if err == nil {
		err = ns.nl.AddrAdd(dev, nlAddr(addr))
	}
	if err == nil {
		err = ns.nl.LinkSetUp(dev)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("netnstest: configure TUN %s in %s: %w", name, ns.Name, err)
	}
	return l, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}
