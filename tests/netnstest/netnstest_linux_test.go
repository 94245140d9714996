//go:build linux

package netnstest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// nsInode returns the inode of the namespace behind h.
func nsInode(t testing.TB, h netns.NsHandle) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func dial(ctx context.Context, ns *netnstest.NS, to netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", to.String())
		return err
	})
	return c, err
}

// TestTopologyLifecycle checks that a topology works (kernel TCP across the
// veth, rules, a TUN) and that its cleanup leaves no namespace, mount or
// namespace file descriptor behind.
func TestTopologyLifecycle(t *testing.T) {
	netnstest.RequireRoot(t)
	var names []string
	var inodes []uint64
	t.Run("use", func(t *testing.T) {
		tp := netnstest.New(t, netnstest.Options{})
		t.Logf("topology N=%d A=%s (%v) B=%s (%v)", tp.N, tp.A.Name, tp.AddrA, tp.B.Name, tp.AddrB)
		for _, ns := range []*netnstest.NS{tp.A, tp.B} {
			names = append(names, ns.Name)
			inodes = append(inodes, nsInode(t, ns.Handle()))
			if _, err := os.Stat(filepath.Join(netnstest.NetnsDir, ns.Name)); err != nil {
				t.Fatalf("namespace not mounted: %v", err)
			}
		}
		if !strings.HasPrefix(tp.A.Name, "fsmt-") || !tp.Prefix.Contains(tp.AddrB) {
			t.Fatalf("bad names/addresses: %s %v %v", tp.A.Name, tp.Prefix, tp.AddrB)
		}
		sink, err := tp.B.StartSink(netip.AddrPortFrom(tp.AddrB, 0))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := dial(ctx, tp.A, sink.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := sink.WaitReceived(100000, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := tp.A.DropKernelRSTs(); err != nil {
			t.Fatal(err)
		}
		if err := tp.A.DropKernelRSTs(); err != nil { // idempotent
			t.Fatal(err)
		}
		if err := tp.B.RandomLoss(10); err != nil {
			t.Fatal(err)
		}
		if err := tp.B.RandomLoss(0); err != nil {
			t.Fatal(err)
		}
		tun, err := tp.A.AddTUN("fsmtun0", netip.PrefixFrom(tp.AuxPrefix().Addr().Next(), 24))
		if err != nil {
			t.Fatal(err)
		}
		if tun.Name() != "fsmtun0" || tun.MTU() != 1500 {
			t.Fatalf("tun %q mtu %d", tun.Name(), tun.MTU())
		}
	})
	for i, name := range names {
		if _, err := os.Stat(filepath.Join(netnstest.NetnsDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left behind (stat: %v)", name, err)
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), name) {
			t.Errorf("mount of %s left behind", name)
		}
		want := fmt.Sprintf("net:[%d]", inodes[i])
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			if l, _ := os.Readlink("/proc/self/fd/" + fd.Name()); l == want {
				t.Errorf("fd %s still refers to namespace %s", fd.Name(), name)
			}
		}
	}
}

// TestDoRestoresNamespace checks that Do switches the thread into the
// namespace and back.
func TestDoRestoresNamespace(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	origIno, aIno := nsInode(t, orig), nsInode(t, tp.A.Handle())
	err = tp.A.Do(func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		if got := nsInode(t, cur); got != aIno {
			return fmt.Errorf("inside Do: namespace inode %d, want %d", got, aIno)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if got := nsInode(t, cur); got != origIno {
		t.Fatalf("after Do: namespace inode %d, want original %d", got, origIno)
	}
	if want := errors.New("boom"); !errors.Is(tp.B.Do(func() error { return want }), want) {
		t.Fatal("Do did not return fn's error")
	}
}

// TestRandomLoss sends bursts of SYNs from a raw link in A to a closed port
// in B; B's kernel answers each SYN that gets through RandomLoss with a RST.
func TestRandomLoss(t *testing.T) {
	tp := netnstest.New(t, netnstest.Options{})
	var l *rawlink.Link
	if err := tp.A.Do(func() (err error) { l, err = rawlink.Open(rawlink.Config{LocalAddr: tp.AddrA}); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	capt := netnstest.NewCapture(1024)
	l.SetReceiver(capt.Receive)
	const n = 300
	burst := func(port uint16) int {
		for i := range n {
			p := netnstest.BuildTCP(netnstest.Segment{
				Src:   netip.AddrPortFrom(tp.AddrA, 41000+uint16(i)),
				Dst:   netip.AddrPortFrom(tp.AddrB, port),
				Seq:   uint32(i) * 1000,
				Flags: netnstest.FlagSYN,
			})
			if err := l.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		rsts := 0
		for {
			// All answers come back within milliseconds; 300 ms of
			// silence ends the count.
			_, _, ok := capt.WaitTCP(300*time.Millisecond, func(s netnstest.Segment) bool {
				return s.Src.Port() == port && s.Flags&netnstest.FlagRST != 0
			})
			if !ok {
				return rsts
			}
			rsts++
		}
	}
	for _, tc := range []struct {
		percent  int
		min, max int
	}{{0, n, n}, {100, 0, 0}, {50, n * 30 / 100, n * 70 / 100}} {
		if err := tp.B.RandomLoss(tc.percent); err != nil {
			t.Fatal(err)
		}
		_, before, err := tp.B.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		got := burst(9 + uint16(tc.percent))
		_, after, err := tp.B.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("loss %d%%: %d of %d SYNs answered, nft counter dropped %d", tc.percent, got, n, after-before)
		if got < tc.min || got > tc.max {
			t.Errorf("loss %d%%: %d answers, want [%d, %d]", tc.percent, got, tc.min, tc.max)
		}
		if tc.percent > 0 && int(after-before)+got != n {
			t.Errorf("loss %d%%: dropped %d + answered %d != %d", tc.percent, after-before, got, n)
		}
	}
	if capt.Dropped() != 0 {
		t.Fatalf("capture overflowed")
	}
}

func TestRequireRootEnv(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RequireRoot's pass-through is only observable as root")
	}
	netnstest.RequireRoot(t) // must not skip or fail as root
}
