package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A stack under test: its name (the sub-benchmark name) and constructor.
type peer struct {
	name string
	new  func(Config) (*Env, error)
}

var (
	fsmgenPeer   = peer{"fsmgen", NewFsmgen}
	netstackPeer = peer{"netstack", NewNetstack}
	kernelPeer   = peer{"kernel", func(Config) (*Env, error) { return NewKernel() }}
)

var mtus = []int{1500, 65535}

// runMTUs runs fn for fsmgen and netstack at each MTU and once for the kernel
// (loopback has its own MTU).
func runMTUs(b *testing.B, cfg Config, fn func(*testing.B, *Env)) {
	for _, p := range []peer{fsmgenPeer, netstackPeer} {
		for _, mtu := range mtus {
			c := cfg
			c.MTU = mtu
			b.Run(fmt.Sprintf("%s/mtu%d", p.name, mtu), func(b *testing.B) { withEnv(b, p, c, fn) })
		}
	}
	b.Run(kernelPeer.name, func(b *testing.B) { withEnv(b, kernelPeer, cfg, fn) })
}

func withEnv(b *testing.B, p peer, cfg Config, fn func(*testing.B, *Env)) {
	e, err := p.new(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	fn(b, e)
}

func dialTimeout(e *Env) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Dial(ctx)
}

type closeWriter interface{ CloseWrite() error }

const chunk = 64 << 10

// bulk sends b.N 64 KiB writes over one connection and waits until the
// receiver has read every byte.
func bulk(b *testing.B, e *Env) {
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := e.Listener.Accept()
		if err != nil {
			done <- result{0, err}
			return
		}
		defer c.Close()
		buf := make([]byte, chunk)
		var n int64
		for {
			m, err := c.Read(buf)
			n += int64(m)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- result{n, err}
				return
			}
		}
	}()
	c, err := dialTimeout(e)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	const warmup = 64 // 4 MiB: past slow start and first-use allocations
	for range warmup {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.(closeWriter).CloseWrite(); err != nil {
		b.Fatal(err)
	}
	r := <-done
	b.StopTimer()
	if r.err != nil {
		b.Fatal(r.err)
	}
	if want := int64(b.N+warmup) * chunk; r.n != want {
		b.Fatalf("received %d bytes, want %d", r.n, want)
	}
	if e.Client != nil {
		b.ReportMetric(float64(e.Client.Stats().Retransmits)/float64(b.N), "rexmit/op")
	}
}

// BenchmarkBulk: one connection, 64 KiB writes.
func BenchmarkBulk(b *testing.B) { runMTUs(b, Config{}, bulk) }

// BenchmarkLossyBulk: as Bulk with 1% of data packets lost (fsmgen and
// netstack only; the link drops them with a seeded generator).
func BenchmarkLossyBulk(b *testing.B) {
	for _, p := range []peer{fsmgenPeer, netstackPeer} {
		b.Run(p.name+"/mtu1500", func(b *testing.B) {
			withEnv(b, p, Config{MTU: 1500, Loss: 0.01, Seed: 1}, bulk)
		})
	}
}

// handshakeTimeWait is TIME-WAIT (2*MSL) for the user-space stacks in
// BenchmarkHandshake, so closed connections do not pile up.
const handshakeTimeWait = 100 * time.Millisecond

// BenchmarkHandshake: dial, accept, exchange one byte each way, close both
// ends (the client first, so it holds TIME-WAIT). One at a time.
func BenchmarkHandshake(b *testing.B) {
	runMTUs(b, Config{TimeWait: handshakeTimeWait}, func(b *testing.B, e *Env) {
		served := make(chan error, 1)
		go func() {
			var x [1]byte
			for {
				c, err := e.Listener.Accept()
				if err != nil {
					served <- nil
					return
				}
				if _, err := io.ReadFull(c, x[:]); err != nil {
					served <- err
					return
				}
				if _, err := c.Write(x[:]); err != nil {
					served <- err
					return
				}
				if _, err := c.Read(x[:]); !errors.Is(err, io.EOF) {
					served <- fmt.Errorf("server: want EOF, got %v", err)
					return
				}
				c.Close()
			}
		}()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var x [1]byte
		for range b.N {
			c, err := dialTimeout(e)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write([]byte{1}); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, x[:]); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "handshakes/s")
		if e.Client != nil {
			b.ReportMetric(float64(e.Client.Stats().Conns), "timewait-conns")
		}
		e.Listener.Close()
		if err := <-served; err != nil {
			b.Fatal(err)
		}
	})
}

// idleConns is how many connections BenchmarkIdleConns opens
// (PEERS_IDLE_CONNS overrides).
func idleConns() int {
	if n, err := strconv.Atoi(os.Getenv("PEERS_IDLE_CONNS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// heapInUse is the live Go heap after two full collections.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// kernelMem is the kernel's slab memory plus its TCP buffer memory, in
// bytes: /proc/meminfo "Slab: N kB" and /proc/net/sockstat
// "TCP: ... mem N" (pages), which is where the kernel keeps sockets. Both
// are machine-wide, so only a delta over many sockets means anything.
func kernelMem() int64 {
	return procField("/proc/meminfo", "Slab:", "Slab:", 1024) +
		procField("/proc/net/sockstat", "TCP:", "mem", int64(os.Getpagesize()))
}

// procField returns the number after key on the line of path starting with
// prefix, times unit (0 if absent).
func procField(path, prefix, key string, unit int64) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		fs := strings.Fields(line)
		if len(fs) == 0 || fs[0] != prefix {
			continue
		}
		for i := 0; i+1 < len(fs); i++ {
			if fs[i] == key {
				v, _ := strconv.ParseInt(fs[i+1], 10, 64)
				return v * unit
			}
		}
	}
	return 0
}

// BenchmarkIdleConns opens idleConns() established connections and reports
// the Go heap and goroutines they hold, per connection (both ends: client
// and server endpoints live in this process). For the kernel it also reports
// the kernel's TCP memory per connection from /proc/net/sockstat.
func BenchmarkIdleConns(b *testing.B) {
	for _, p := range []peer{fsmgenPeer, netstackPeer, kernelPeer} {
		b.Run(p.name, func(b *testing.B) {
			n := idleConns()
			if p.name == "kernel" {
				n = fitNoFile(b, n)
			}
			withEnv(b, p, Config{MTU: 1500}, func(b *testing.B, e *Env) {
				for i := range b.N {
					idle(b, e, n, serverPort+1+i)
				}
			})
		})
	}
}

func idle(b *testing.B, e *Env, n, port int) {
	accepted := make(chan net.Conn, 128)
	ln, err := e.Listen(port) // a fresh port: netstack holds a closed one a while
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	clients := make([]net.Conn, 0, n)
	servers := make([]net.Conn, 0, n)
	g0 := runtime.NumGoroutine()
	h0 := heapInUse()
	k0 := kernelMem()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for range n {
		c, err := e.DialAddr(ctx, ln.Addr())
		if err != nil {
			b.Fatalf("dial after %d: %v", len(clients), err)
		}
		clients = append(clients, c)
		servers = append(servers, <-accepted)
	}
	time.Sleep(100 * time.Millisecond) // let the last ACKs and delayed ACKs settle
	h1 := heapInUse()
	g1 := runtime.NumGoroutine()
	k1 := kernelMem()
	b.ReportMetric(float64(int64(h1)-int64(h0))/float64(n), "heapB/conn")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/conn")
	b.ReportMetric(float64(n), "conns")
	if e.Name == "kernel" {
		b.ReportMetric(float64(k1-k0)/float64(n), "kernelB/conn")
	}
	for i := range clients {
		clients[i].Close()
		servers[i].Close()
	}
	runtime.KeepAlive(clients)
	runtime.KeepAlive(servers)
	ln.Close()
	for range accepted { // wait for the accept loop to exit
	}
}

// fitNoFile raises RLIMIT_NOFILE so the kernel row can hold n connections
// (2n sockets), or, if the hard limit cannot be raised (no
// CAP_SYS_RESOURCE), returns the n that fits under it.
func fitNoFile(b *testing.B, n int) int {
	const spare = 200
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	want := uint64(2*n + spare)
	if rl.Cur >= want {
		return n
	}
	up := syscall.Rlimit{Cur: want, Max: max(rl.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
		return n
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	fit := int(rl.Max-spare) / 2
	b.Logf("RLIMIT_NOFILE hard limit %d: the kernel row opens %d connections, not %d", rl.Max, fit, n)
	return min(n, fit)
}
