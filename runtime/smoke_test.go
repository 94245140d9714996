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
