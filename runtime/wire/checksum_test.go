package wire

import (
	"bytes"
	"encoding/binary"
	"testing"

	"pgregory.net/rapid"
)

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#04x, want 0xddf2", got)
	}
}

func TestChecksumMatchesNaive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := drawPayload(t, 3000)
		init := rapid.Uint16().Draw(t, "initial")
		if got, want := Checksum(b, init), naiveChecksum(b, init); got != want {
			t.Fatalf("Checksum(len %d, %#04x) = %#04x, naive %#04x", len(b), init, got, want)
		}
	})
}

// TestChecksumCarries drives the carry chain hard: all-0xff and
// nearly-all-0xff data of every length up to a few unrolled blocks, with
// every misalignment of the slice start.
func TestChecksumCarries(t *testing.T) {
	big := bytes.Repeat([]byte{0xff}, 300)
	for off := range 8 {
		for n := 0; n+off <= len(big); n++ {
			b := big[off : off+n]
			for _, init := range []uint16{0, 1, 0xfffe, 0xffff} {
				if got, want := Checksum(b, init), naiveChecksum(b, init); got != want {
					t.Fatalf("0xff x %d (off %d, init %#x): got %#04x want %#04x", n, off, init, got, want)
				}
			}
		}
	}
	mixed := bytes.Repeat([]byte{0xff, 0xfe, 0x00, 0x01, 0xff}, 60)
	for n := range len(mixed) {
		if got, want := Checksum(mixed[:n], 0), naiveChecksum(mixed[:n], 0); got != want {
			t.Fatalf("mixed len %d: got %#04x want %#04x", n, got, want)
		}
	}
}

func TestChecksumChained(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := drawPayload(t, 600)
		cut := rapid.IntRange(0, len(b)/2).Draw(t, "cut") * 2 // even split
		whole := Checksum(b, 0)
		chained := Checksum(b[cut:], Checksum(b[:cut], 0))
		if whole != chained {
			t.Fatalf("whole %#04x != chained %#04x (cut %d)", whole, chained, cut)
		}
		combined := CombineChecksums(Checksum(b[:cut], 0), Checksum(b[cut:], 0))
		if combined != whole {
			t.Fatalf("combined %#04x != whole %#04x", combined, whole)
		}
	})
}

func TestPseudoHeaderChecksum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		src := [4]byte(rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "src"))
		dst := [4]byte(rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, "dst"))
		proto := rapid.Uint8().Draw(t, "proto")
		length := rapid.Uint16().Draw(t, "len")
		if got, want := PseudoHeaderChecksum(src, dst, proto, length), naivePseudo(src, dst, proto, length); got != want {
			t.Fatalf("got %#04x want %#04x", got, want)
		}
	})
}

func TestUpdateChecksum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 4, 200).Draw(t, "b")
		b[0], b[1] = 0, 0 // checksum field at offset 0
		binary.BigEndian.PutUint16(b, ^Checksum(b, 0))
		i := rapid.IntRange(1, len(b)/2-1).Draw(t, "word") * 2
		old := binary.BigEndian.Uint16(b[i:])
		nw := rapid.Uint16().Draw(t, "new")
		binary.BigEndian.PutUint16(b[i:], nw)
		binary.BigEndian.PutUint16(b, UpdateChecksum(binary.BigEndian.Uint16(b), old, nw))
		// All-zero data sums to 0, the other zero of ones' complement; eqn. 3
		// can then leave the field 0 (RFC 1624 §3 discusses this corner).
		if got := Checksum(b, 0); got != 0xffff && !(got == 0 && Checksum(b[2:], 0) == 0) {
			t.Fatalf("after update the data sums to %#04x, want 0xffff", got)
		}
	})
}

// TestChecksumVectorMatchesScalar checks the AVX2 sum against the carry
// chain on random data of every length class and misalignment (on a CPU
// without AVX2 both runs take the carry chain and agree trivially).
func TestChecksumVectorMatchesScalar(t *testing.T) {
	defer func(v bool) { useAVX2 = v }(useAVX2)
	vector := useAVX2
	rapid.Check(t, func(t *rapid.T) {
		off := rapid.IntRange(0, 31).Draw(t, "offset")
		b := drawPayload(t, 5000)
		buf := make([]byte, off+len(b))
		copy(buf[off:], b)
		b = buf[off:]
		init := rapid.Uint16().Draw(t, "initial")
		useAVX2 = false
		want := Checksum(b, init)
		useAVX2 = vector
		if got := Checksum(b, init); got != want {
			t.Fatalf("vector Checksum(len %d, off %d, %#04x) = %#04x, scalar %#04x", len(b), off, init, got, want)
		}
	})
}

// TestChecksumVectorOverflow sums inputs longer than one vector call
// (maxSumAVX2) made of 0xff bytes, the largest lane values, so a lane
// overflow in the vector sum or a lost carry between calls would show.
func TestChecksumVectorOverflow(t *testing.T) {
	for _, n := range []int{maxSumAVX2, maxSumAVX2 + 128, 2*maxSumAVX2 + 1000, 3*maxSumAVX2 - 1} {
		b := bytes.Repeat([]byte{0xff}, n)
		b[n/3] = 0x12 // break the symmetry a little
		for _, init := range []uint16{0, 0xffff} {
			if got, want := Checksum(b, init), naiveChecksum(b, init); got != want {
				t.Fatalf("0xff x %d (init %#x): got %#04x want %#04x", n, init, got, want)
			}
		}
	}
}
