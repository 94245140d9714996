package link

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/wire"
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
	a, _ := Pair(clock.NewVirtual(), PairConfig{GSOMaxSize: 65535})
	tap := NewTap(a, failWriter{})
	if err := tap.Send(pkt(0, 40)); err != nil {
		t.Fatal("capture failure must not fail traffic")
	}
	big, _ := tcpPacket(t, 0xffff-40) // its segments overflow the buffer
	if err := tap.SendGSO(big, 1460); err != nil {
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

// readPcap returns the records of the pcap stream in r, checking that none
// is truncated and that all are stamped at.
func readPcap(t *testing.T, r io.Reader, at time.Duration) [][]byte {
	t.Helper()
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for {
		data, ci, err := pr.ReadPacketData()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.Length != len(data) || ci.CaptureLength != len(data) {
			t.Fatalf("record %d: %d of %d bytes captured", len(recs), ci.CaptureLength, ci.Length)
		}
		if got := ci.Timestamp.Sub(time.Unix(0, 0)); got != at {
			t.Fatalf("record %d at %v, want %v", len(recs), got, at)
		}
		recs = append(recs, data)
	}
}

// TestTapSendGSO checks that a 64 KiB packet sent through a Tap's SendGSO is
// recorded as the 45 segments the peer receives, not as one packet longer
// than the MTU, and that packets SplitTCP rejects are recorded whole.
func TestTapSendGSO(t *testing.T) {
	v := clock.NewVirtual()
	v.Advance(time.Second)
	a, b := Pair(v, PairConfig{GSOMaxSize: 65535})
	got := collect(b, v)
	var buf bytes.Buffer
	tap := NewTapClock(a, &buf, v)
	pkt, seg := tcpPacket(t, 0xffff-40)
	if err := tap.SendGSO(pkt, 1460); err != nil {
		t.Fatal(err)
	}
	v.Advance(0)
	if err := tap.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := readPcap(t, &buf, time.Second)
	if len(recs) != 45 || len(*got) != 45 {
		t.Fatalf("%d records, %d segments delivered; want 45", len(recs), len(*got))
	}
	checkSegments(t, recs, &seg, DefaultMTU)
	for i, d := range *got {
		if !bytes.Equal(recs[i], d.buf) {
			t.Fatalf("record %d differs from the segment delivered", i)
		}
	}
	if st := a.Stats(); st.GSO != 1 || st.Sent != 45 {
		t.Fatalf("stats %+v", st)
	}

	// A packet not needing a cut is recorded as is; one SplitTCP rejects
	// is recorded whole, and the link's error returned.
	small, _ := tcpPacket(t, 1000)
	if err := tap.SendGSO(small, 1460); err != nil {
		t.Fatal(err)
	}
	if err := tap.SendGSO(pkt, 0); !errors.Is(err, wire.ErrBadMSS) {
		t.Fatalf("SendGSO with mss 0: %v", err)
	}
	if err := tap.Flush(); err != nil {
		t.Fatal(err)
	}
	recs = readPcap(t, io.MultiReader(bytes.NewReader(pcapHeader(t)), &buf), time.Second)
	if len(recs) != 2 || !bytes.Equal(recs[0], small) || !bytes.Equal(recs[1], pkt) {
		t.Fatalf("%d records after rejected SendGSO", len(recs))
	}

	// After Close nothing is recorded and the link's error comes back.
	tap.Close()
	if err := tap.SendGSO(pkt, 1460); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendGSO after Close: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes recorded after Close", buf.Len())
	}
}

// pcapHeader returns the file header a Tap writes.
func pcapHeader(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	a, _ := Pair(clock.NewVirtual(), PairConfig{})
	if err := NewTap(a, &buf).Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// plainLink is a Link with none of the optional interfaces.
type plainLink struct{ Link }

// fakeLink records the optional interface calls a Tap forwards.
type fakeLink struct {
	plainLink
	recv     func([]byte)
	end      func()
	reserved []uint16
	released int
}

func (f *fakeLink) SetReceiver(recv func([]byte)) { f.recv = recv }
func (f *fakeLink) SetBatchEnd(end func())        { f.end = end }

var errInUse = errors.New("port in use")

func (f *fakeLink) ReservePort(port uint16) (func(), error) {
	f.reserved = append(f.reserved, port)
	if port == 22 {
		return nil, errInUse
	}
	return func() { f.released++ }, nil
}

func TestTapGSOMaxSize(t *testing.T) {
	v := clock.NewVirtual()
	gso, _ := Pair(v, PairConfig{GSOMaxSize: 65535})
	noGSO, _ := Pair(v, PairConfig{})
	for _, tc := range []struct {
		name string
		l    Link
		want int
	}{{"GSO", gso, 65535}, {"no GSO", noGSO, 0}, {"no Segmenter", plainLink{noGSO}, 0}} {
		if got := NewTap(tc.l, io.Discard).GSOMaxSize(); got != tc.want {
			t.Errorf("%s: GSOMaxSize %d, want %d", tc.name, got, tc.want)
		}
	}

	// SendGSO over a link without segmentation is Send, refusing a packet
	// longer than the MTU the way Send does.
	var buf bytes.Buffer
	tap := NewTapClock(plainLink{noGSO}, &buf, v)
	big, _ := tcpPacket(t, DefaultMTU-40+1)
	if err, want := tap.SendGSO(big, 1460), noGSO.Send(big); err == nil || err != want {
		t.Fatalf("SendGSO over a plain link: %v, want %v", err, want)
	}
}

func TestTapBatchEndAndPorts(t *testing.T) {
	// Forwarded to a link that implements them.
	f := new(fakeLink)
	tap := NewTap(f, io.Discard)
	var ends, recvs int
	tap.SetBatchEnd(func() { ends++ })
	tap.SetReceiver(func([]byte) { recvs++ })
	f.recv(pkt(0, 40))
	f.recv(pkt(1, 40))
	if f.end == nil {
		t.Fatal("SetBatchEnd not forwarded")
	}
	f.end()
	if recvs != 2 || ends != 1 {
		t.Fatalf("%d packets, %d batch ends; want 2, 1", recvs, ends)
	}
	release, err := tap.ReservePort(80)
	if err != nil || release == nil {
		t.Fatalf("ReservePort: %v", err)
	}
	release()
	if _, err := tap.ReservePort(22); err != errInUse {
		t.Fatalf("ReservePort(22): %v", err)
	}
	if len(f.reserved) != 2 || f.reserved[0] != 80 || f.reserved[1] != 22 || f.released != 1 {
		t.Fatalf("reserved %v, released %d", f.reserved, f.released)
	}

	// Over a link without them: no reservation, and every packet is a
	// batch of one.
	v := clock.NewVirtual()
	a, b := Pair(v, PairConfig{})
	tap = NewTapClock(plainLink{a}, io.Discard, v)
	if release, err := tap.ReservePort(80); release != nil || err != nil {
		t.Fatalf("ReservePort over a plain link: %v", err)
	}
	var calls []string
	tap.SetBatchEnd(func() { calls = append(calls, "end") })
	tap.SetReceiver(func([]byte) { calls = append(calls, "recv") })
	for i := range 3 {
		b.Send(pkt(i, 40))
	}
	v.Advance(0)
	if fmt.Sprint(calls) != "[recv end recv end recv end]" {
		t.Fatalf("calls %v", calls)
	}
}

func TestTapSendGSOZeroAllocs(t *testing.T) {
	a, b := Pair(clock.NewReal(), PairConfig{GSOMaxSize: 65535})
	defer a.Close()
	var n atomic.Int64
	b.SetReceiver(func([]byte) { n.Add(1) })
	tap := NewTap(a, io.Discard)
	pkt, _ := tcpPacket(t, 0xffff-40)
	sent := int64(0)
	send := func() {
		if err := tap.SendGSO(pkt, 1460); err != nil {
			t.Fatal(err)
		}
		sent += 45
		for sent-n.Load()-int64(a.Stats().QueueDropped) > 90 {
			runtime.Gosched()
		}
	}
	send() // allocates the scratch
	if allocs := testing.AllocsPerRun(1000, send); allocs != 0 {
		t.Fatalf("%v allocs per SendGSO", allocs)
	}
}

func BenchmarkTapSendGSO(b *testing.B) {
	a, bb := Pair(clock.NewReal(), PairConfig{GSOMaxSize: 65535})
	defer a.Close()
	var n atomic.Int64
	bb.SetReceiver(func([]byte) { n.Add(1) })
	tap := NewTap(a, io.Discard)
	pkt, _ := tcpPacket(b, 0xffff-40)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	sent := int64(0)
	for b.Loop() {
		for sent-n.Load() >= 256 {
			runtime.Gosched()
		}
		if err := tap.SendGSO(pkt, 1460); err != nil {
			b.Fatal(err)
		}
		sent += 45
	}
	for n.Load() < sent {
		runtime.Gosched()
	}
}
