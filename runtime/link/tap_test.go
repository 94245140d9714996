package link

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func TestTapPcap(t *testing.T) {
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{AtoB: Impairments{Delay: time.Millisecond}, BtoA: Impairments{Delay: 2 * time.Millisecond}})
	path := filepath.Join(t.TempDir(), "a.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tap := NewTapClock(a, f, v)
	var ta Link = tap
	var recvd int
	ta.SetReceiver(func([]byte) { recvd++ })
	b.SetReceiver(func(p []byte) { b.Send(p[:len(p)/2]) }) // echo half back
	var want [][]byte
	var wantAt []time.Duration
	for i := 0; i < 20; i++ {
		p := pkt(i, 40+i*10)
		if err := ta.Send(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
		wantAt = append(wantAt, v.Now())
		v.Advance(10 * time.Millisecond) // echo arrives 3ms after the send
		want = append(want, p[:len(p)/2])
		wantAt = append(wantAt, v.Now()-7*time.Millisecond)
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Send(pkt(0, 40)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	f.Close()

	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeRaw || r.Resolution().ToDuration() != time.Nanosecond {
		t.Fatalf("link type %v resolution %v", r.LinkType(), r.Resolution())
	}
	var n int
	for ; ; n++ {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n >= len(want) {
			t.Fatalf("extra packet %d", n)
		}
		if !bytes.Equal(data, want[n]) || ci.Length != len(want[n]) || ci.CaptureLength != len(want[n]) {
			t.Fatalf("packet %d differs", n)
		}
		if got := ci.Timestamp.Sub(time.Unix(0, 0)); got != wantAt[n] {
			t.Fatalf("packet %d at %v, want %v", n, got, wantAt[n])
		}
	}
	if n != len(want) || recvd != 20 {
		t.Fatalf("read %d packets want %d; received %d", n, len(want), recvd)
	}
}

func TestTapRealClockZeroAllocs(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{})
	defer b.Close()
	var buf bytes.Buffer
	tap := NewTap(a, &buf)
	p := pkt(0, 1400)
	before := time.Now()
	if err := tap.Send(p); err != nil {
		t.Fatal(err)
	}
	tap.Flush()
	buf.Grow(1 << 20)
	allocs := testing.AllocsPerRun(100, func() { tap.record(p) })
	if allocs != 0 {
		t.Fatalf("%v allocs per record", allocs)
	}
	if err := tap.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	_, ci, err := r.ReadPacketData()
	if err != nil || ci.Timestamp.Before(before.Add(-time.Second)) || ci.Timestamp.After(time.Now()) {
		t.Fatalf("wall timestamp %v (%v)", ci.Timestamp, err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTapWriteError(t *testing.T) {
	a, _ := Pair(clock.NewVirtual(), PairConfig{})
	tap := NewTap(a, failWriter{})
	if err := tap.Send(pkt(0, 40)); err != nil {
		t.Fatal("capture failure must not fail traffic")
	}
	if err := tap.Close(); err == nil {
		t.Fatal("write error not reported")
	}
}

func BenchmarkTapFastPath(b *testing.B) {
	a, bb := Pair(clock.NewReal(), PairConfig{})
	defer a.Close()
	bb.SetReceiver(func([]byte) {})
	tap := NewTap(a, io.Discard)
	p := pkt(0, 1400)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		tap.Send(p)
	}
}
