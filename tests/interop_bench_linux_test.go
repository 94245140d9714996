//go:build linux

package tests

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// BenchmarkInteropThroughput measures bulk TCP throughput into a kernel
// Sink in namespace B across the veth (offloads off, as the raw link
// needs), b.N MiB per run with b.SetBytes(1 MiB), so MB/s is the
// throughput and the two sub-benchmarks compare directly:
//
//   - stack-kernel: the user-space stack in A (raw link, kernel RSTs
//     dropped) writes to the Sink;
//   - kernel-kernel: Go net in A writes to the Sink (the baseline).
//
// Each run builds its own topology; the timer covers the writes and the
// wait until the Sink has received everything.
//
// Run: go test ./tests/ -run '^$' -bench InteropThroughput -benchtime 64x -count 3
func BenchmarkInteropThroughput(b *testing.B) {
	netnstest.RequireRoot(b)
	const chunk = 1 << 20
	run := func(b *testing.B, dial func(ctx context.Context, tp *netnstest.Topology, to netip.AddrPort) (net.Conn, error)) {
		tp := netnstest.New(b, netnstest.Options{})
		sink, err := tp.B.StartSink(netip.AddrPortFrom(tp.AddrB, 5001))
		if err != nil {
			b.Fatal(err)
		}
		// Bound the run: at least 10 MB/s or fail.
		limit := 10*time.Second + time.Duration(b.N)*100*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		c, err := dial(ctx, tp, sink.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(limit))
		buf := iopData(uint64(b.N), chunk)
		b.SetBytes(chunk)
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := sink.WaitReceived(int64(b.N)*chunk, limit); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
	b.Run("stack-kernel", func(b *testing.B) {
		run(b, func(ctx context.Context, tp *netnstest.Topology, to netip.AddrPort) (net.Conn, error) {
			st := iopNewStack(b, iopRawLink(b, tp), iopOpts(tp.AddrA))
			return st.DialContext(ctx, "tcp", to.String())
		})
	})
	b.Run("kernel-kernel", func(b *testing.B) {
		run(b, func(ctx context.Context, tp *netnstest.Topology, to netip.AddrPort) (net.Conn, error) {
			return iopDial(ctx, tp.A, to.String())
		})
	})
}
