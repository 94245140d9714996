//go:build linux

package tests

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// BenchmarkInteropThroughput measures bulk TCP throughput across the veth
// between the namespaces (offloads off, as the raw link needs), b.N MiB per
// run with b.SetBytes(1 MiB), so MB/s is the throughput and the
// sub-benchmarks compare directly:
//
//   - stack-kernel: the user-space stack in A (raw link, kernel RSTs
//     dropped) writes to a kernel sink in B;
//   - stack-kernel-hdrincl: the same with rawlink.Config.NoOffload: every
//     segment its own sendto on the IP_HDRINCL socket;
//   - kernel-stack: a kernel client in B writes to a sink on the stack in A;
//   - kernel-kernel: Go net in A writes to the kernel sink in B (the
//     baseline).
//
// Each run builds its own topology; the timer covers the writes and the
// wait until the sink has received everything.
//
// Run: go test ./tests/ -run '^$' -bench InteropThroughput -benchtime 64x -count 6
func BenchmarkInteropThroughput(b *testing.B) {
	netnstest.RequireRoot(b)
	// setup returns the writing end and the sink's byte count.
	type setup func(b *testing.B, ctx context.Context, tp *netnstest.Topology) (net.Conn, func() int64)
	kernelSink := func(b *testing.B, tp *netnstest.Topology) (netip.AddrPort, func() int64) {
		sink, err := tp.B.StartSink(netip.AddrPortFrom(tp.AddrB, 5001))
		if err != nil {
			b.Fatal(err)
		}
		return sink.Addr(), sink.Received
	}
	stackWriter := func(cfg rawlink.Config) setup {
		return func(b *testing.B, ctx context.Context, tp *netnstest.Topology) (net.Conn, func() int64) {
			to, received := kernelSink(b, tp)
			st := iopNewStack(b, iopRawLinkConfig(b, tp, cfg), iopOpts(tp.AddrA))
			c, err := st.DialContext(ctx, "tcp", to.String())
			if err != nil {
				b.Fatal(err)
			}
			return c, received
		}
	}
	const chunk = 1 << 20
	run := func(b *testing.B, start setup) {
		tp := netnstest.New(b, netnstest.Options{})
		// Bound the run: at least 10 MB/s or fail.
		limit := 10*time.Second + time.Duration(b.N)*100*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		c, received := start(b, ctx, tp)
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
		deadline := time.Now().Add(limit)
		for received() < int64(b.N)*chunk {
			if time.Now().After(deadline) {
				b.Fatalf("sink got %d of %d bytes in %v", received(), int64(b.N)*chunk, limit)
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
	}
	b.Run("stack-kernel", func(b *testing.B) { run(b, stackWriter(rawlink.Config{})) })
	b.Run("stack-kernel-hdrincl", func(b *testing.B) { run(b, stackWriter(rawlink.Config{NoOffload: true})) })
	b.Run("kernel-stack", func(b *testing.B) {
		run(b, func(b *testing.B, ctx context.Context, tp *netnstest.Topology) (net.Conn, func() int64) {
			st := iopNewStack(b, iopRawLink(b, tp), iopOpts(tp.AddrA))
			ln, err := st.Listen("tcp", ":5001")
			if err != nil {
				b.Fatal(err)
			}
			var total atomic.Int64
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 256<<10)
				// An error ends the count; a short count fails the run.
				for {
					n, err := c.Read(buf)
					total.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
			c, err := iopDial(ctx, tp.B, netip.AddrPortFrom(tp.AddrA, 5001).String())
			if err != nil {
				b.Fatal(err)
			}
			return c, total.Load
		})
	})
	b.Run("kernel-kernel", func(b *testing.B) {
		run(b, func(b *testing.B, ctx context.Context, tp *netnstest.Topology) (net.Conn, func() int64) {
			to, received := kernelSink(b, tp)
			c, err := iopDial(ctx, tp.A, to.String())
			if err != nil {
				b.Fatal(err)
			}
			return c, received
		})
	})
}
