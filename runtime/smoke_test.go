package runtime_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"testing"
	"time"

	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/link"
)

// pair returns two stacks joined by an in-memory link on real time.
func pair(t testing.TB, cfg link.PairConfig, opts fsmrt.Options) (a, b *fsmrt.Stack) {
	t.Helper()
	la, lb := link.Pair(clock.NewReal(), cfg)
	oa, ob := opts, opts
	oa.Addr = netip.MustParseAddr("10.201.0.1")
	ob.Addr = netip.MustParseAddr("10.201.0.2")
	a, err := fsmrt.NewStack(la, oa)
	if err != nil {
		t.Fatal(err)
	}
	b, err = fsmrt.NewStack(lb, ob)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close(); la.Close(); lb.Close() })
	return a, b
}

// echo dials an echo server across the pair and checks size random bytes
// come back exactly, with half-closes in both directions.
func echo(t *testing.T, a, b *fsmrt.Stack, size int) {
	t.Helper()
	ln, err := b.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.(*fsmrt.Conn).CloseWrite()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp", "10.201.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, size)
	rand.Read(data)
	go func() {
		c.Write(data)
		c.(*fsmrt.Conn).CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %d bytes)", err, len(got))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo mismatch: got %d bytes want %d", len(got), len(data))
	}
	t.Logf("dialer stats: %+v", a.Stats())
}

func TestEchoRealTime(t *testing.T) {
	a, b := pair(t, link.PairConfig{}, fsmrt.Options{MinRTO: 20 * time.Millisecond, MSL: 50 * time.Millisecond})
	echo(t, a, b, 1<<20)
}

func TestEchoLossy(t *testing.T) {
	imp := link.Impairments{Loss: 0.05, Duplicate: 0.02, Reorder: 0.05, Corrupt: 0.01}
	a, b := pair(t, link.PairConfig{Seed: 7, AtoB: imp, BtoA: imp}, fsmrt.Options{MinRTO: 10 * time.Millisecond, InitialRTO: 50 * time.Millisecond, MSL: 50 * time.Millisecond})
	echo(t, a, b, 256<<10)
	if a.Stats().Retransmits == 0 {
		t.Error("5% loss but no retransmissions: the impairments did not apply")
	}
}

// TestPingPongWakes bounces one byte 2000 times, so nearly every Read
// blocks before its byte arrives: each must be woken (the wait channel is
// made lazily, under the connection's lock), or the deadline fails it. A
// small send buffer makes the Writes of a final 256 KiB block and wake too.
func TestPingPongWakes(t *testing.T) {
	a, b := pair(t, link.PairConfig{}, fsmrt.Options{SendBuffer: 4 << 10, MSL: 50 * time.Millisecond})
	ln, err := b.Listen("tcp", ":9")
	if err != nil {
		t.Fatal(err)
	}
	const rounds, tail = 2000, 256 << 10
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 1)
		for range rounds {
			if _, err := io.ReadFull(c, buf); err != nil {
				done <- err
				return
			}
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
		_, err = c.Write(make([]byte, tail))
		done <- err
	}()
	c, err := a.Dial("tcp", "10.201.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := []byte{0}
	for i := range rounds {
		buf[0] = byte(i)
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("round %d: %v, got %d", i, err, buf[0])
		}
	}
	time.Sleep(10 * time.Millisecond) // let the peer's Write fill its buffer and block
	if n, err := io.ReadFull(c, make([]byte, tail)); err != nil {
		t.Fatalf("tail: %d bytes, %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
