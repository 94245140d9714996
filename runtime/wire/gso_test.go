package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"pgregory.net/rapid"
)

// gsoSegment is a bulk-data segment with timestamps whose sequence numbers
// wrap around 2^32 part way through.
func gsoSegment(payload int) Segment {
	s := benchSegment(payload)
	s.Seq = 0xffffff00
	return s
}

// hdrLenOf is the IPv4 plus TCP header length of a well-formed packet.
func hdrLenOf(pkt []byte) int {
	ihl := int(pkt[0]&0x0f) * 4
	return ihl + int(pkt[ihl+12]>>4)*4
}

// splitCollect splits pkt with a scratch buffer of exactly the documented
// size and returns copies of the pieces.
func splitCollect(tb fataler, pkt []byte, mss int) [][]byte {
	tb.Helper()
	var pieces [][]byte
	err := SplitTCP(pkt, mss, make([]byte, hdrLenOf(pkt)+mss), func(seg []byte) error {
		pieces = append(pieces, bytes.Clone(seg))
		return nil
	})
	if err != nil {
		tb.Fatalf("SplitTCP(mss %d): %v", mss, err)
	}
	return pieces
}

// withIPOptions returns pkt with the IPv4 option bytes opts (a multiple of
// 4 long) inserted after the fixed header, and the IPv4 checksum fixed.
func withIPOptions(pkt, opts []byte) []byte {
	out := append(append(append([]byte(nil), pkt[:IPv4HeaderLen]...), opts...), pkt[IPv4HeaderLen:]...)
	out[0] = 4<<4 | byte((IPv4HeaderLen+len(opts))/4)
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
	fixIPChecksum(out)
	return out
}

// withoutDF returns pkt with Don't Fragment cleared and IPv4 ID id.
func withoutDF(pkt []byte, id uint16) []byte {
	out := bytes.Clone(pkt)
	binary.BigEndian.PutUint16(out[4:6], id)
	binary.BigEndian.PutUint16(out[6:8], 0)
	fixIPChecksum(out)
	return out
}

// checkSplit checks pieces, the output of SplitTCP(pkt, mss), against the
// contract. pkt must have valid checksums.
func checkSplit(tb fataler, pkt []byte, mss int, pieces [][]byte) {
	tb.Helper()
	var orig Segment
	if err := Parse(pkt, &orig); err != nil {
		tb.Fatalf("Parse(original): %v", err)
	}
	if len(orig.Payload) <= mss {
		if len(pieces) != 1 || !bytes.Equal(pieces[0], pkt) {
			tb.Fatalf("payload %d <= mss %d: want the packet back unchanged, got %d pieces", len(orig.Payload), mss, len(pieces))
		}
		return
	}
	if want := (len(orig.Payload) + mss - 1) / mss; len(pieces) != want {
		tb.Fatalf("%d pieces, want %d", len(pieces), want)
	}
	ihl := int(pkt[0]&0x0f) * 4
	hdrLen := len(pkt) - len(orig.Payload)
	df := binary.BigEndian.Uint16(pkt[6:8])&ipFlagDF != 0
	id := binary.BigEndian.Uint16(pkt[4:6])
	var payload []byte
	for i, p := range pieces {
		off, last := len(payload), i == len(pieces)-1
		var got Segment
		if err := Parse(p, &got); err != nil {
			tb.Fatalf("piece %d: Parse: %v", i, err)
		}
		n := mss
		if last {
			n = len(orig.Payload) - off
		}
		if len(got.Payload) != n || len(p) != hdrLen+n {
			tb.Fatalf("piece %d: payload %d, packet %d; want %d, %d", i, len(got.Payload), len(p), n, hdrLen+n)
		}

		want := orig
		want.Seq = orig.Seq.Add(seqnum.Size(off))
		if !last {
			want.Flags &^= FIN | PSH
		}
		if i > 0 {
			want.Flags &^= CWR
		}
		if orig.Flags&URG != 0 {
			if int(orig.Urgent) > off {
				want.Urgent = orig.Urgent - uint16(off)
			} else {
				want.Flags &^= URG
				want.Urgent = 0
			}
		}
		if !sameHeader(got, want) {
			tb.Fatalf("piece %d header\n got %+v\nwant %+v", i, got, want)
		}
		wantID := id
		if !df {
			wantID = id + uint16(i)
		}
		if gotID := binary.BigEndian.Uint16(p[4:6]); gotID != wantID {
			tb.Fatalf("piece %d: IP ID %#x, want %#x (DF %v)", i, gotID, wantID, df)
		}

		// Every header byte not rewritten is copied: IPv4 options, TCP
		// options byte for byte, reserved bits.
		a, b := bytes.Clone(p[:hdrLen]), bytes.Clone(pkt[:hdrLen])
		for _, r := range [][2]int{{2, 8}, {10, 12}, {ihl + 4, ihl + 8}, {ihl + 13, ihl + 14}, {ihl + 16, ihl + 20}} {
			clear(a[r[0]:r[1]])
			clear(b[r[0]:r[1]])
		}
		if !bytes.Equal(a, b) {
			tb.Fatalf("piece %d: copied header bytes differ\n got %x\nwant %x", i, a, b)
		}

		// The checksums match RFC 1071's reference algorithm.
		fixed := bytes.Clone(p)
		fixIPChecksum(fixed)
		fixTCPChecksum(fixed)
		if !bytes.Equal(fixed, p) {
			tb.Fatalf("piece %d: checksums differ from the reference", i)
		}
		payload = append(payload, got.Payload...)
	}
	if !bytes.Equal(payload, orig.Payload) {
		tb.Fatalf("concatenated payload differs from the original")
	}
}

// checkGopacket has gopacket decode each piece, checks the TCP flags and
// sequence numbers it sees, and re-serializes the layers with fresh
// checksums, which must reproduce the piece exactly.
func checkGopacket(t *testing.T, pkt []byte, pieces [][]byte) {
	t.Helper()
	var orig Segment
	if err := Parse(pkt, &orig); err != nil {
		t.Fatal(err)
	}
	seq := uint32(orig.Seq)
	for i, p := range pieces {
		gp := gopacket.NewPacket(p, layers.LayerTypeIPv4, gopacket.Default)
		if el := gp.ErrorLayer(); el != nil {
			t.Fatalf("piece %d: gopacket: %v", i, el.Error())
		}
		ip := gp.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp := gp.Layer(layers.LayerTypeTCP).(*layers.TCP)
		first, last := i == 0, i == len(pieces)-1
		f := orig.Flags
		if int(ip.Length) != len(p) || tcp.Seq != seq ||
			tcp.FIN != (last && f.Has(FIN)) || tcp.PSH != (last && f.Has(PSH)) || tcp.CWR != (first && f.Has(CWR)) ||
			tcp.ACK != f.Has(ACK) || tcp.ECE != f.Has(ECE) {
			t.Fatalf("piece %d: gopacket sees IP %+v\nTCP %+v", i, ip, tcp)
		}
		seq += uint32(len(tcp.Payload))

		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		sb := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, ip, tcp, gopacket.Payload(tcp.Payload))
		if err != nil {
			t.Fatalf("gopacket serialize: %v", err)
		}
		if !bytes.Equal(sb.Bytes(), p) {
			t.Fatalf("piece %d: gopacket re-serialization differs\nours %x\ngpkt %x", i, p, sb.Bytes())
		}
	}
	if want := uint32(orig.Seq) + uint32(len(orig.Payload)); seq != want {
		t.Fatalf("pieces end at seq %d, want %d", seq, want)
	}
}

func TestSplitTCP(t *testing.T) {
	allOpts := Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, SACKPermitted: true,
		HasTS: true, TSVal: 1, TSEcr: 2}
	allOpts.AddSACK(SACKBlock{Start: 100, End: 200})
	allOpts.AddSACK(SACKBlock{Start: 300, End: 400})
	maxPayload := 0xffff - HeaderLen(&Options{HasTS: true})
	tests := []struct {
		name    string
		payload int
		mss     int
		edit    func(*Segment)
		raw     func([]byte) []byte // applied to the encoded packet
		noGopkt bool
	}{
		{name: "mss=1", payload: 300, mss: 1},
		{name: "mss=536", payload: 5000, mss: 536},
		{name: "mss=1460/64KiB", payload: maxPayload, mss: 1460},
		{name: "exact-multiple", payload: 4 * 1460, mss: 1460},
		{name: "non-multiple", payload: 4*1460 + 1, mss: 1460},
		{name: "one-over", payload: 1461, mss: 1460},
		{name: "payload=mss", payload: 1460, mss: 1460},
		{name: "payload<mss", payload: 100, mss: 1460},
		{name: "no-payload", payload: 0, mss: 1460},
		{name: "huge-mss", payload: 3000, mss: math.MaxInt},
		{name: "no-options", payload: 3000, mss: 1000, edit: func(s *Segment) { s.Options = Options{} }},
		{name: "all-options", payload: 3000, mss: 1000, edit: func(s *Segment) { s.Options = allOpts }},
		{name: "mss-option", payload: 3000, mss: 1000, edit: func(s *Segment) { s.Options = Options{HasMSS: true, MSS: 536} }},
		{name: "FIN|PSH|CWR|ECE", payload: 3000, mss: 1000, edit: func(s *Segment) { s.Flags = ACK | FIN | PSH | CWR | ECE }},
		{name: "FIN-one-piece", payload: 1000, mss: 1000, edit: func(s *Segment) { s.Flags = ACK | FIN | PSH | CWR }},
		{name: "URG", payload: 5000, mss: 1000, edit: func(s *Segment) { s.Flags |= URG; s.Urgent = 3000 }},
		{name: "URG-past-end", payload: 3000, mss: 1000, edit: func(s *Segment) { s.Flags |= URG; s.Urgent = 40000 }},
		{name: "urgent-field-without-URG", payload: 3000, mss: 1000, edit: func(s *Segment) { s.Urgent = 0x1234 }},
		{name: "ip-options", payload: 3000, mss: 1000, noGopkt: true,
			raw: func(p []byte) []byte { return withIPOptions(p, []byte{0x94, 4, 0, 0, 1, 1, 1, 0}) }},
		{name: "not-DF", payload: 5000, mss: 1000, raw: func(p []byte) []byte { return withoutDF(p, 0xfffe) }},
		{name: "not-DF/64KiB/mss=1", payload: maxPayload, mss: 1, raw: func(p []byte) []byte { return withoutDF(p, 7) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gsoSegment(tt.payload)
			if tt.edit != nil {
				tt.edit(&s)
			}
			pkt := mustEncode(t, &s)
			if tt.raw != nil {
				pkt = tt.raw(pkt)
			}
			orig := bytes.Clone(pkt)
			var pieces [][]byte
			if tt.mss >= len(pkt) {
				// Nothing to split: no scratch is needed and pkt itself is
				// emitted.
				err := SplitTCP(pkt, tt.mss, nil, func(seg []byte) error {
					if &seg[0] != &pkt[0] {
						t.Error("emitted a copy, not pkt")
					}
					pieces = append(pieces, bytes.Clone(seg))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			} else {
				pieces = splitCollect(t, pkt, tt.mss)
			}
			if !bytes.Equal(pkt, orig) {
				t.Fatal("SplitTCP modified its input")
			}
			checkSplit(t, pkt, tt.mss, pieces)
			if !tt.noGopkt && len(pieces) <= 5000 {
				checkGopacket(t, pkt, pieces)
			}
		})
	}
}

// TestSplitTCPRandom splits random segments, with random IP IDs, DF and
// IPv4 options, at random MSS values.
func TestSplitTCPRandom(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSegment(t)
		s.Flags &^= SYN | RST
		pkt := mustEncode(t, &s)
		if rapid.Bool().Draw(t, "noDF") {
			pkt = withoutDF(pkt, rapid.Uint16().Draw(t, "id"))
		}
		if rapid.Bool().Draw(t, "ipOpts") {
			n := 4 * rapid.IntRange(1, 10).Draw(t, "ipOptWords")
			pkt = withIPOptions(pkt, bytes.Repeat([]byte{1}, n)) // NOPs
		}
		mss := rapid.IntRange(1, 2100).Draw(t, "mss")
		checkSplit(t, pkt, mss, splitCollect(t, pkt, mss))
	})
}

func TestSplitTCPErrors(t *testing.T) {
	s := gsoSegment(3000)
	good := mustEncode(t, &s)
	const mss = 1000
	edit := func(f func(p []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name    string
		pkt     []byte
		mss     int
		scratch int // scratch length; 0 means enough
		err     error
		reason  DropReason
	}{
		{name: "mss=0", pkt: good, mss: 0, err: ErrBadMSS},
		{name: "mss<0", pkt: good, mss: -5, err: ErrBadMSS},
		{name: "nil", pkt: nil, mss: mss, reason: TooShort},
		{name: "short-ip", pkt: good[:19], mss: mss, reason: TooShort},
		{name: "ipv6", pkt: edit(func(p []byte) []byte { p[0] = 0x65; return p }), mss: mss, reason: BadVersion},
		{name: "ihl=4", pkt: edit(func(p []byte) []byte { p[0] = 0x44; return p }), mss: mss, reason: BadIHL},
		{name: "ihl>total", pkt: edit(func(p []byte) []byte {
			p[0] = 0x4f
			binary.BigEndian.PutUint16(p[2:4], 40)
			return p[:40]
		}), mss: mss, reason: BadTotalLength},
		{name: "total<len", pkt: append(bytes.Clone(good), 0), mss: mss, reason: BadTotalLength},
		{name: "total>len", pkt: good[:len(good)-1], mss: mss, reason: BadTotalLength},
		{name: "udp", pkt: edit(func(p []byte) []byte { p[9] = 17; return p }), mss: mss, reason: NotTCP},
		{name: "MF", pkt: edit(func(p []byte) []byte { p[6] |= 0x20; return p }), mss: mss, reason: Fragment},
		{name: "frag-offset", pkt: edit(func(p []byte) []byte { p[7] = 1; return p }), mss: mss, reason: Fragment},
		{name: "short-tcp", pkt: edit(func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[2:4], 39)
			return p[:39]
		}), mss: mss, reason: TooShort},
		{name: "doff=4", pkt: edit(func(p []byte) []byte { p[32] = 4 << 4; return p }), mss: mss, reason: BadDataOffset},
		{name: "doff-past-end", pkt: edit(func(p []byte) []byte {
			p[32] = 15 << 4
			binary.BigEndian.PutUint16(p[2:4], 50)
			return p[:50]
		}), mss: mss, reason: BadDataOffset},
		{name: "SYN", pkt: edit(func(p []byte) []byte { p[33] |= byte(SYN); return p }), mss: mss, err: ErrUnsplittable},
		{name: "RST", pkt: edit(func(p []byte) []byte { p[33] |= byte(RST); return p }), mss: mss, err: ErrUnsplittable},
		{name: "scratch-short", pkt: good, mss: mss, scratch: hdrLenOf(good) + mss - 1, err: ErrShortBuffer},
		{name: "scratch-empty", pkt: good, mss: mss, scratch: -1, err: ErrShortBuffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 65536
			switch {
			case tt.scratch > 0:
				n = tt.scratch
			case tt.scratch < 0:
				n = 0
			}
			emitted := 0
			err := SplitTCP(tt.pkt, tt.mss, make([]byte, n), func([]byte) error { emitted++; return nil })
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if tt.err == nil && ReasonOf(err) != tt.reason {
				t.Fatalf("err %v (reason %v), want reason %v", err, ReasonOf(err), tt.reason)
			}
			if emitted != 0 {
				t.Fatalf("emitted %d pieces before failing", emitted)
			}
		})
	}

	t.Run("SYN-unsplit", func(t *testing.T) {
		syn := edit(func(p []byte) []byte { p[33] |= byte(SYN); return p })
		emitted := 0
		if err := SplitTCP(syn, 3000, nil, func([]byte) error { emitted++; return nil }); err != nil || emitted != 1 {
			t.Fatalf("SYN within mss: err %v, %d emitted", err, emitted)
		}
	})

	t.Run("emit-error", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := SplitTCP(good, 100, make([]byte, 1500), func([]byte) error {
			if calls++; calls == 3 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 3 {
			t.Fatalf("err %v after %d calls, want stop after 3", err, calls)
		}
		calls = 0
		if err := SplitTCP(good, 5000, nil, func([]byte) error { calls++; return stop }); err != stop || calls != 1 {
			t.Fatalf("unsplit: err %v after %d calls", err, calls)
		}
	})
}

// checkArbitrary splits arbitrary bytes. Besides not panicking, SplitTCP
// must emit nothing when it fails; when it splits, every piece must parse
// (options are copied unchecked, so BadOption is allowed), carry at most
// mss bytes, and the payloads must add up to pkt's.
func checkArbitrary(t *testing.T, pkt []byte, mss int, scratch []byte) {
	orig := bytes.Clone(pkt)
	var pieces int
	var payload []byte
	split := false
	err := SplitTCP(pkt, mss, scratch, func(seg []byte) error {
		pieces++
		if len(seg) > 0 && len(pkt) > 0 && &seg[0] == &pkt[0] {
			return nil // passed through unchanged
		}
		split = true
		var s Segment
		switch err := Parse(seg, &s); {
		case err == nil:
		case ReasonOf(err) == BadOption:
			s.Payload = seg[hdrLenOf(seg):]
		default:
			t.Fatalf("piece %d does not parse: %v\npkt %x\npiece %x", pieces, err, pkt, seg)
		}
		if len(s.Payload) > mss || len(s.Payload) == 0 {
			t.Fatalf("piece %d carries %d bytes, mss %d", pieces, len(s.Payload), mss)
		}
		payload = append(payload, s.Payload...)
		return nil
	})
	if !bytes.Equal(pkt, orig) {
		t.Fatal("SplitTCP modified its input")
	}
	if err != nil {
		if pieces != 0 {
			t.Fatalf("failed with %v after emitting %d pieces", err, pieces)
		}
		if ReasonOf(err) == NoDrop && !errors.Is(err, ErrBadMSS) && !errors.Is(err, ErrUnsplittable) && !errors.Is(err, ErrShortBuffer) {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	if pieces == 0 {
		t.Fatal("succeeded without emitting")
	}
	if split && !bytes.Equal(payload, pkt[hdrLenOf(pkt):]) {
		t.Fatal("pieces' payloads differ from the original's")
	}
}

// TestSplitTCPMalformed throws random bytes, truncations and mutations of
// valid packets at SplitTCP.
func TestSplitTCPMalformed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := gsoSegment(3000)
	s.Options = Options{HasMSS: true, MSS: 1460, HasTS: true, SACKPermitted: true}
	valid := [][]byte{
		mustEncode(t, &s),
		withIPOptions(mustEncode(t, &s), []byte{1, 1, 1, 1}),
		withoutDF(mustEncode(t, &s), 0xffff),
	}
	scratch := make([]byte, 4096)
	for i := range 50000 {
		var pkt []byte
		v := valid[rng.IntN(len(valid))]
		switch i % 4 {
		case 0: // random bytes, often IPv4-looking
			pkt = make([]byte, rng.IntN(120))
			for j := range pkt {
				pkt[j] = byte(rng.Uint32())
			}
			if len(pkt) >= 20 && rng.IntN(2) == 0 {
				pkt[0] = 0x40 | pkt[0]&0x0f
				binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
				pkt[9] = ProtocolTCP
				pkt[6] &= 0x40
				pkt[7] = 0
			}
		case 1: // truncation
			pkt = bytes.Clone(v[:rng.IntN(len(v)+1)])
		case 2, 3: // byte mutations, with the total length repaired in case 3
			pkt = bytes.Clone(v)
			for range 1 + rng.IntN(4) {
				pkt[rng.IntN(min(len(pkt), 80))] = byte(rng.Uint32())
			}
			if i%4 == 3 {
				binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
			}
		}
		mss := rng.IntN(1600) - 1
		checkArbitrary(t, pkt, mss, scratch[:rng.IntN(len(scratch)+1)])
	}
}

// FuzzSplitTCP checks checkArbitrary's properties on fuzzed packets. With
// fixLen set the IPv4 total length is made to match, so mutations get past
// that check.
func FuzzSplitTCP(f *testing.F) {
	// Small seeds keep the fuzzer's minimization of new inputs quick.
	s := gsoSegment(300)
	f.Add(mustEncode(f, &s), uint16(100), false)
	s.Flags |= FIN | CWR | URG
	s.Urgent = 150
	f.Add(withIPOptions(mustEncode(f, &s), []byte{0x94, 4, 0, 0}), uint16(64), false)
	s = gsoSegment(100)
	s.Options = Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, SACKPermitted: true}
	f.Add(withoutDF(mustEncode(f, &s), 9), uint16(7), false)
	scratch := make([]byte, 0x10000+120)
	f.Fuzz(func(t *testing.T, pkt []byte, mss uint16, fixLen bool) {
		pkt = bytes.Clone(pkt) // the fuzzer owns its input
		if fixLen && len(pkt) >= IPv4HeaderLen && len(pkt) <= 0xffff {
			binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
		}
		checkArbitrary(t, pkt, int(mss), scratch)
	})
}

var gsoPieces int

// countPiece is a non-capturing emit for allocation tests and benchmarks.
func countPiece([]byte) error {
	gsoPieces++
	return nil
}

func TestSplitTCPNoAllocs(t *testing.T) {
	s := gsoSegment(0xffff - HeaderLen(&Options{HasTS: true}))
	pkt := withoutDF(mustEncode(t, &s), 1)
	scratch := make([]byte, 1500)
	gsoPieces = 0
	allocs := testing.AllocsPerRun(100, func() {
		if err := SplitTCP(pkt, 1448, scratch, countPiece); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per SplitTCP", allocs)
	}
	if gsoPieces != 101*46 { // AllocsPerRun runs once more to warm up
		t.Fatalf("%d pieces", gsoPieces)
	}
}

// BenchmarkSplitTCP cuts a maximal (64 KiB) packet with timestamps into
// 1460-byte-MSS pieces: copying and checksumming every byte once.
func BenchmarkSplitTCP(b *testing.B) {
	s := gsoSegment(0xffff - HeaderLen(&Options{HasTS: true}))
	pkt := mustEncode(b, &s)
	scratch := make([]byte, hdrLenOf(pkt)+1460)
	b.SetBytes(int64(len(s.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := SplitTCP(pkt, 1460, scratch, countPiece); err != nil {
			b.Fatal(err)
		}
	}
}
