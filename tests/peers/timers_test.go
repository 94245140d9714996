package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// idleTimerConns is how many connections BenchmarkIdleTimerCPU parks in
// TIME-WAIT (PEERS_TIMER_CONNS overrides).
func idleTimerConns() int {
	if n, err := strconv.Atoi(os.Getenv("PEERS_TIMER_CONNS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// cpuTime is the process's user+system CPU time (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleTimerCPU parks 0 or idleTimerConns() fsmgen connections in
// TIME-WAIT, each with its 2*MSL timer armed (MSL one hour), and measures
// the CPU time the whole process uses while they sit there for a few
// seconds. Timer cost must not grow with the number of armed timers.
func BenchmarkIdleTimerCPU(b *testing.B) {
	for _, n := range []int{0, idleTimerConns()} {
		b.Run(fmt.Sprintf("fsmgen/conns%d", n), func(b *testing.B) {
			withEnv(b, fsmgenPeer, Config{MTU: 1500, TimeWait: 2 * time.Hour}, func(b *testing.B, e *Env) {
				parkTimeWait(b, e, n)
				const idle = 3 * time.Second
				heapInUse() // collect now, not during the measurement
				b.ResetTimer()
				var cpu time.Duration
				for range b.N {
					c0 := cpuTime()
					time.Sleep(idle)
					cpu += cpuTime() - c0
				}
				b.StopTimer()
				st := e.Client.Stats()
				b.ReportMetric(float64(cpu.Microseconds())/1e3/(idle.Seconds()*float64(b.N)), "cpu-ms/s")
				b.ReportMetric(float64(st.ArmedTimers), "armed-timers")
				b.ReportMetric(float64(st.Conns), "timewait-conns")
			})
		})
	}
}

// parkTimeWait opens n connections and closes them client first, so each
// client end waits in TIME-WAIT. Ports: at most 25,000 per server port.
func parkTimeWait(b *testing.B, e *Env, n int) {
	const perPort = 25000
	ctx := context.Background()
	var ln net.Listener
	var x [1]byte
	for i := range n {
		if i%perPort == 0 {
			if ln != nil {
				ln.Close()
			}
			var err error
			if ln, err = e.Listen(serverPort + 1 + i/perPort); err != nil {
				b.Fatal(err)
			}
		}
		c, err := e.DialAddr(ctx, ln.Addr())
		if err != nil {
			b.Fatalf("dial %d: %v", i, err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		if _, err := s.Read(x[:]); !errors.Is(err, io.EOF) {
			b.Fatalf("server read: %v, want EOF", err)
		}
		s.Close()
	}
	if ln != nil {
		ln.Close()
	}
	// Wait for the last FINs and ACKs: every client end in TIME-WAIT, every
	// server end gone.
	deadline := time.Now().Add(30 * time.Second)
	for e.Client.Stats().Conns != n || e.Server.Stats().Conns != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("client conns %d (want %d), server conns %d (want 0)", e.Client.Stats().Conns, n, e.Server.Stats().Conns)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
