package runtime

import (
	"sync"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
)

// bufPool recycles a stack's buffers of one size. A connection takes its
// send (receive) buffer when the first byte is queued (arrives) and gives it
// back once the buffer is empty, so memory follows the bytes actually held,
// an idle connection holds none, and steady-state traffic allocates nothing.
type bufPool struct {
	size int
	p    sync.Pool // of *[]byte, len size
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.p.New = func() any { b := make([]byte, size); return &b }
	return bp
}

func (bp *bufPool) get() *[]byte  { return bp.p.Get().(*[]byte) }
func (bp *bufPool) put(b *[]byte) { bp.p.Put(b) }

// sendBuffer holds bytes from SND.UNA onward: sent-but-unacknowledged data
// followed by data not yet sent. It is a fixed-size ring from pool, held
// only while it holds bytes.
type sendBuffer struct {
	buf   []byte  // nil while empty
	ref   *[]byte // buf as taken from pool
	pool  *bufPool
	start int // index of the byte at SND.UNA (after SYN)
	n     int // bytes held
}

func (b *sendBuffer) init(pool *bufPool) { b.pool = pool }
func (b *sendBuffer) free() int          { return b.pool.size - b.n }

// write appends as much of p as fits and returns how much.
func (b *sendBuffer) write(p []byte) int {
	n := min(len(p), b.free())
	if n == 0 {
		return 0
	}
	if b.buf == nil {
		b.ref = b.pool.get()
		b.buf = *b.ref
	}
	end := (b.start + b.n) % len(b.buf)
	c := copy(b.buf[end:], p[:n])
	copy(b.buf, p[c:n])
	b.n += n
	return n
}

// peek copies up to len(dst) bytes starting off bytes after SND.UNA.
func (b *sendBuffer) peek(dst []byte, off int) int {
	if off >= b.n {
		return 0
	}
	n := min(len(dst), b.n-off)
	i := (b.start + off) % len(b.buf)
	c := copy(dst[:n], b.buf[i:])
	copy(dst[c:n], b.buf)
	return n
}

// slices returns up to n bytes starting off bytes after SND.UNA, in place:
// first, then second when they wrap around the ring's end (second is
// empty otherwise).
func (b *sendBuffer) slices(off, n int) (first, second []byte) {
	if off >= b.n {
		return nil, nil
	}
	n = min(n, b.n-off)
	i := (b.start + off) % len(b.buf)
	first = b.buf[i:min(i+n, len(b.buf))]
	return first, b.buf[:n-len(first)]
}

// discard drops n acknowledged bytes from the front.
func (b *sendBuffer) discard(n int) {
	n = min(n, b.n)
	if n == 0 {
		return
	}
	b.start = (b.start + n) % len(b.buf)
	b.n -= n
	if b.n == 0 {
		b.start = 0
		b.pool.put(b.ref)
		b.buf, b.ref = nil, nil
	}
}

// recvBuffer holds received bytes from the reader's position: in-order bytes
// ready to read (up to RCV.NXT), then room for out-of-order segments, which
// are copied to their place and tracked as ranges until the gap fills
// (RFC 9293 §3.10.7.4 seventh: segments beyond RCV.NXT SHOULD be held).
type recvBuffer struct {
	buf    []byte  // nil while nothing is held; from pool
	ref    *[]byte // buf as taken from pool
	pool   *bufPool
	start  int // index of the next byte to read
	ready  int // in-order bytes ready to read
	ranges []seqRange
}

// seqRange is a held out-of-order range [start, end).
type seqRange struct{ start, end seqnum.Value }

// maxRanges bounds the out-of-order ranges held; more are dropped (the
// sender retransmits them), which keeps memory per connection fixed.
const maxRanges = 16

func (b *recvBuffer) init(pool *bufPool) { b.pool = pool }

// window is how many more bytes the buffer can take beyond RCV.NXT.
func (b *recvBuffer) window() int { return b.pool.size - b.ready }

// place copies p, which starts off bytes after RCV.NXT (off+len(p) <=
// window), into the buffer. It returns how many bytes became ready (the
// in-order prefix grew by that much); rcvNxt is RCV.NXT before the call.
func (b *recvBuffer) place(p []byte, off int, rcvNxt seqnum.Value) int {
	if b.buf == nil {
		b.ref = b.pool.get()
		b.buf = *b.ref
	}
	i := (b.start + b.ready + off) % len(b.buf)
	c := copy(b.buf[i:], p)
	copy(b.buf, p[c:])
	if off > 0 {
		b.hold(rcvNxt.Add(seqnum.Size(off)), rcvNxt.Add(seqnum.Size(off+len(p))))
		return 0
	}
	end := rcvNxt.Add(seqnum.Size(len(p)))
	// Absorb held ranges that the new data reaches.
	for changed := true; changed; {
		changed = false
		for k := 0; k < len(b.ranges); k++ {
			r := b.ranges[k]
			if r.start.LessThanEq(end) {
				if end.LessThan(r.end) {
					end = r.end
				}
				b.ranges = append(b.ranges[:k], b.ranges[k+1:]...)
				changed = true
				k--
			}
		}
	}
	n := int(rcvNxt.Size(end))
	b.ready += n
	return n
}

// hold records [s, e) as received out of order, merging overlaps.
func (b *recvBuffer) hold(s, e seqnum.Value) {
	for k := 0; k < len(b.ranges); k++ {
		r := &b.ranges[k]
		if s.LessThanEq(r.end) && r.start.LessThanEq(e) { // overlap or touch
			r.start = seqnum.Min(r.start, s)
			r.end = seqnum.Max(r.end, e)
			return
		}
	}
	if b.ranges == nil {
		b.ranges = make([]seqRange, 0, maxRanges)
	}
	if len(b.ranges) < maxRanges {
		b.ranges = append(b.ranges, seqRange{s, e})
	}
}

// read copies ready bytes into dst and frees their space.
func (b *recvBuffer) read(dst []byte) int {
	n := min(len(dst), b.ready)
	c := copy(dst[:n], b.buf[b.start:])
	copy(dst[c:n], b.buf)
	b.start = (b.start + n) % len(b.buf)
	b.ready -= n
	if b.ready == 0 && len(b.ranges) == 0 {
		b.start = 0
		b.pool.put(b.ref)
		b.buf, b.ref = nil, nil
	}
	return n
}
