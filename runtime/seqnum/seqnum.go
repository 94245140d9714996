// Package seqnum implements TCP sequence-number arithmetic modulo 2^32
// (RFC 9293 §3.4): "all arithmetic dealing with sequence numbers must be
// performed modulo 2^32".
//
// Comparisons are only meaningful between values less than 2^31 apart, which
// TCP guarantees by bounding windows (RFC 7323 §2.3 limits the scaled window
// to 2^30). The API mirrors gVisor's tcpip/seqnum.
package seqnum

// Value is a TCP sequence number: a point in the circular 32-bit sequence
// space (RFC 9293 §3.4).
type Value uint32

// Size is a distance in the sequence space: a number of octets, counting SYN
// and FIN as one each (SEG.LEN in RFC 9293 §3.4), or a window size.
type Size uint32

// LessThan reports whether v < w in sequence space (modulo 2^32), that is,
// whether w lies in the half of the space ahead of v (RFC 9293 §3.4, "<").
// Values exactly 2^31 apart are each "less" than the other; RFC 1982 §3.2
// leaves that case undefined.
func (v Value) LessThan(w Value) bool {
	return int32(v-w) < 0
}

// LessThanEq reports whether v =< w in sequence space (RFC 9293 §3.4, "=<").
func (v Value) LessThanEq(w Value) bool {
	return v == w || v.LessThan(w)
}

// GreaterThan reports whether v > w in sequence space; it is w.LessThan(v).
func (v Value) GreaterThan(w Value) bool {
	return w.LessThan(v)
}

// GreaterThanEq reports whether v >= w in sequence space; it is w.LessThanEq(v).
func (v Value) GreaterThanEq(w Value) bool {
	return w.LessThanEq(v)
}

// InRange reports whether a =< v < b in sequence space: v lies in the
// half-open interval that starts at a and runs forward to b. It is false for
// every v when a == b. This is the form of the RFC 9293 §3.4 acceptability
// tests, e.g. RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND.
func (v Value) InRange(a, b Value) bool {
	return v-a < b-a
}

// InWindow reports whether v lies in the window of size octets starting at
// first, i.e. first =< v < first+size (RFC 9293 §3.4). An empty window
// contains nothing.
func (v Value) InWindow(first Value, size Size) bool {
	return Size(v-first) < size
}

// Add returns v advanced by s octets, modulo 2^32.
func (v Value) Add(s Size) Value {
	return v + Value(s)
}

// Sub returns v moved back by s octets, modulo 2^32.
func (v Value) Sub(s Size) Value {
	return v - Value(s)
}

// Size returns the forward distance from v to to, modulo 2^32: the number of
// octets in [v, to). If to is before v the result wraps to a large value.
func (v Value) Size(to Value) Size {
	return Size(to - v)
}

// UpdateForward advances *v by s octets, modulo 2^32 (e.g. SND.NXT +=
// SEG.LEN, RFC 9293 §3.10.4).
func (v *Value) UpdateForward(s Size) {
	*v += Value(s)
}

// Max returns whichever of a and b is later in sequence space.
func Max(a, b Value) Value {
	if a.LessThan(b) {
		return b
	}
	return a
}

// Min returns whichever of a and b is earlier in sequence space.
func Min(a, b Value) Value {
	if a.LessThan(b) {
		return a
	}
	return b
}

// Overlap reports whether the ranges [a, a+as) and [b, b+bs) share at least
// one sequence number. Empty ranges overlap nothing. Both sizes must be below
// 2^31 for the answer to be meaningful, as for every comparison here.
func Overlap(a Value, as Size, b Value, bs Size) bool {
	if as == 0 || bs == 0 {
		return false
	}
	return b.InWindow(a, as) || a.InWindow(b, bs)
}
