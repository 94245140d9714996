//go:build !linux

// Tcpcat is netcat over fsmgen's user-space TCP stack; it needs Linux (raw
// IPv4 sockets or TUN devices).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "tcpcat: raw sockets and TUN devices need Linux")
	os.Exit(1)
}
