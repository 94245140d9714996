//go:build linux

package netnstest

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue mirrors struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData mirrors struct ifreq with ifr_data set.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [unsafe.Sizeof(unix.Ifreq{}) - unix.IFNAMSIZ - unsafe.Sizeof(uintptr(0))]byte
}

// disableOffloads turns off tx checksumming, scatter-gather, TSO and GRO on
// the interface with the legacy ethtool ioctls (no ethtool binary needed).
// It must run in the interface's namespace (inside NS.Do).
func disableOffloads(ifname string) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	for _, c := range []struct {
		cmd  uint32
		what string
	}{
		{unix.ETHTOOL_STSO, "tso"},
		{unix.ETHTOOL_SSG, "sg"},
		{unix.ETHTOOL_STXCSUM, "tx-checksumming"},
		{unix.ETHTOOL_SGRO, "gro"},
	} {
		if err := ethtoolSet(s, ifname, c.cmd, 0); err != nil && err != unix.EOPNOTSUPP {
			return fmt.Errorf("ethtool %s %s off: %w", ifname, c.what, err)
		}
	}
	return nil
}

func ethtoolSet(s int, ifname string, cmd, value uint32) error {
	ev := ethtoolValue{cmd: cmd, data: value}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = unsafe.Pointer(&ev)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(s), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if e != 0 {
		return e
	}
	return nil
}
