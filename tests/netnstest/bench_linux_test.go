//go:build linux

package netnstest_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// BenchmarkKernelVeth measures kernel↔kernel TCP throughput over the veth:
// a Go net client in A writes b.N MiB to a Sink in B (b.SetBytes(1 MiB), so
// the MB/s column is the throughput). It is the baseline for stack↔kernel.
// "wire" is the default topology (tx checksum/TSO/SG/GRO off on the veth, as
// the raw link needs); "offload" keeps the veth's offloads.
// Run e.g.: go test -run '^$' -bench KernelVeth -benchtime 256x ./tests/netnstest/
func BenchmarkKernelVeth(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts netnstest.Options
	}{
		{"wire", netnstest.Options{}},
		{"offload", netnstest.Options{KeepOffloads: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const chunk = 1 << 20
			tp := netnstest.New(b, tc.opts)
			sink, err := tp.B.StartSink(netip.AddrPortFrom(tp.AddrB, 5001))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := dial(ctx, tp.A, sink.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, chunk)
			// Bound the run: at least 10 MB/s or fail.
			c.SetWriteDeadline(time.Now().Add(10*time.Second + time.Duration(b.N)*100*time.Millisecond))
			b.SetBytes(chunk)
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := sink.WaitReceived(int64(b.N)*chunk, 30*time.Second); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}
