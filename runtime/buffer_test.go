package runtime

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// TestSendBufferSlices: whatever the ring's wrap point, the slices handed to
// a gathering link hold exactly the bytes peek copies out.
func TestSendBufferSlices(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.IntRange(1, 64).Draw(t, "size")
		var b sendBuffer
		b.init(newBufPool(size))
		next := byte(0)
		for range rapid.IntRange(1, 20).Draw(t, "ops") {
			// Append some bytes, then acknowledge some, moving the start.
			p := make([]byte, rapid.IntRange(0, b.free()).Draw(t, "write"))
			for i := range p {
				p[i], next = next, next+1
			}
			b.write(p)
			b.discard(rapid.IntRange(0, b.n).Draw(t, "ack"))
			off := rapid.IntRange(0, size).Draw(t, "off")
			n := rapid.IntRange(0, size).Draw(t, "n")
			want := make([]byte, n)
			want = want[:b.peek(want, off)]
			first, second := b.slices(off, n)
			if got := append(append([]byte{}, first...), second...); !bytes.Equal(got, want) {
				t.Fatalf("slices(%d, %d) = %v + %v, peek gives %v", off, n, first, second, want)
			}
		}
	})
}
