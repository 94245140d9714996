package seqnum

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

const top = Value(math.MaxUint32) // 2^32 - 1

func TestCompare(t *testing.T) {
	tests := []struct {
		v, w   Value
		lt, le bool
	}{
		{0, 0, false, true},
		{0, 1, true, true},
		{1, 0, false, false},
		{top, 0, true, true},      // wraparound: 2^32-1 < 0
		{0, top, false, false},    // and not the other way
		{top - 10, 5, true, true}, // across the wrap
		{5, top - 10, false, false},
		{top, top, false, true},
		// Exactly half the space apart the order is undefined (RFC 1982 §3.2);
		// the int32 sign test calls each "less" than the other.
		{0, 1 << 31, true, true},
		{1 << 31, 0, true, true},
		{0, 1<<31 - 1, true, true}, // largest forward distance that is "less"
		{1<<31 - 1, 0, false, false},
	}
	for _, tt := range tests {
		if got := tt.v.LessThan(tt.w); got != tt.lt {
			t.Errorf("%d.LessThan(%d) = %v, want %v", tt.v, tt.w, got, tt.lt)
		}
		if got := tt.v.LessThanEq(tt.w); got != tt.le {
			t.Errorf("%d.LessThanEq(%d) = %v, want %v", tt.v, tt.w, got, tt.le)
		}
		if got := tt.w.GreaterThan(tt.v); got != tt.lt {
			t.Errorf("%d.GreaterThan(%d) = %v, want %v", tt.w, tt.v, got, tt.lt)
		}
		if got := tt.w.GreaterThanEq(tt.v); got != tt.le {
			t.Errorf("%d.GreaterThanEq(%d) = %v, want %v", tt.w, tt.v, got, tt.le)
		}
	}
}

func TestInRangeInWindow(t *testing.T) {
	tests := []struct {
		v, a, b Value
		want    bool
	}{
		{5, 5, 10, true},
		{9, 5, 10, true},
		{10, 5, 10, false},
		{4, 5, 10, false},
		{5, 5, 5, false}, // empty range
		{top, top - 1, 2, true},
		{0, top - 1, 2, true},
		{1, top - 1, 2, true},
		{2, top - 1, 2, false},
		{top - 2, top - 1, 2, false},
		{top, top, 0, true}, // [2^32-1, 0) holds only 2^32-1
		{0, top, 0, false},
	}
	for _, tt := range tests {
		if got := tt.v.InRange(tt.a, tt.b); got != tt.want {
			t.Errorf("%d.InRange(%d, %d) = %v, want %v", tt.v, tt.a, tt.b, got, tt.want)
		}
		size := tt.a.Size(tt.b)
		if got := tt.v.InWindow(tt.a, size); got != tt.want {
			t.Errorf("%d.InWindow(%d, %d) = %v, want %v", tt.v, tt.a, size, got, tt.want)
		}
	}
}

func TestAddSizeUpdate(t *testing.T) {
	tests := []struct {
		v    Value
		s    Size
		want Value
	}{
		{0, 0, 0},
		{1, 2, 3},
		{top, 1, 0},
		{top - 5, 10, 4},
		{10, math.MaxUint32, 9},
	}
	for _, tt := range tests {
		if got := tt.v.Add(tt.s); got != tt.want {
			t.Errorf("%d.Add(%d) = %d, want %d", tt.v, tt.s, got, tt.want)
		}
		if got := tt.want.Sub(tt.s); got != tt.v {
			t.Errorf("%d.Sub(%d) = %d, want %d", tt.want, tt.s, got, tt.v)
		}
		if got := tt.v.Size(tt.want); got != tt.s {
			t.Errorf("%d.Size(%d) = %d, want %d", tt.v, tt.want, got, tt.s)
		}
		v := tt.v
		v.UpdateForward(tt.s)
		if v != tt.want {
			t.Errorf("UpdateForward(%d) from %d = %d, want %d", tt.s, tt.v, v, tt.want)
		}
	}
}

func TestMaxMin(t *testing.T) {
	if got := Max(top, 3); got != 3 {
		t.Errorf("Max(top, 3) = %d, want 3", got)
	}
	if got := Min(top, 3); got != top {
		t.Errorf("Min(top, 3) = %d, want top", got)
	}
	if got := Min(3, top); got != top {
		t.Errorf("Min(3, top) = %d, want top", got)
	}
	if got := Max(7, 7); got != 7 {
		t.Errorf("Max(7, 7) = %d", got)
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a    Value
		as   Size
		b    Value
		bs   Size
		want bool
	}{
		{0, 10, 5, 10, true},
		{5, 10, 0, 10, true},
		{0, 10, 10, 10, false}, // adjacent
		{10, 10, 0, 10, false},
		{0, 10, 2, 3, true}, // containment
		{2, 3, 0, 10, true},
		{0, 0, 0, 10, false}, // empty
		{0, 10, 5, 0, false},
		{top - 4, 10, 0, 1, true}, // [2^32-5, 5) wraps over 0
		{0, 1, top - 4, 10, true},
		{top - 4, 5, 0, 1, false}, // [2^32-5, 0) ends just before 0
		{top, 1, top, 1, true},
		{top - 1, 4, 1, 4, true},
		{top - 1, 3, 1, 4, false},
	}
	for _, tt := range tests {
		if got := Overlap(tt.a, tt.as, tt.b, tt.bs); got != tt.want {
			t.Errorf("Overlap(%d, %d, %d, %d) = %v, want %v", tt.a, tt.as, tt.b, tt.bs, got, tt.want)
		}
	}
}

// TestProperties checks the operations against 64-bit arithmetic after
// shifting both operands by a common random offset, which exercises every
// possible wraparound position.
func TestProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := Value(rapid.Uint32().Draw(t, "base"))
		x := rapid.Uint32Range(0, 1<<30).Draw(t, "x")
		y := rapid.Uint32Range(0, 1<<30).Draw(t, "y")
		xs := rapid.Uint32Range(0, 1<<29).Draw(t, "xs")
		ys := rapid.Uint32Range(0, 1<<29).Draw(t, "ys")
		v, w := base.Add(Size(x)), base.Add(Size(y))
		if got, want := v.LessThan(w), x < y; got != want {
			t.Fatalf("LessThan: got %v want %v", got, want)
		}
		if got, want := v.LessThanEq(w), x <= y; got != want {
			t.Fatalf("LessThanEq: got %v want %v", got, want)
		}
		if got, want := v.InWindow(w, Size(ys)), y <= x && uint64(x) < uint64(y)+uint64(ys); got != want {
			t.Fatalf("InWindow: got %v want %v", got, want)
		}
		wantOverlap := xs > 0 && ys > 0 && uint64(x) < uint64(y)+uint64(ys) && uint64(y) < uint64(x)+uint64(xs)
		if got := Overlap(v, Size(xs), w, Size(ys)); got != wantOverlap {
			t.Fatalf("Overlap: got %v want %v", got, wantOverlap)
		}
		if got := v.Size(w); v.Add(got) != w {
			t.Fatalf("Add(Size) does not invert")
		}
	})
}
