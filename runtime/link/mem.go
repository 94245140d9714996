package link

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/timer"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// ErrTooBig is returned by Send for a packet longer than the link's MTU, and
// by SendGSO for one longer than its limit or whose segments would be.
var ErrTooBig = errors.New("link: packet exceeds MTU")

// DefaultMTU is the MTU of a Pair whose config leaves MTU zero.
const DefaultMTU = 1500

// DefaultQueueLimit bounds the Real-clock fast path's queue when
// Impairments.QueueLimit is zero: the fast path must be bounded, and
// tail-dropping (like a NIC ring) rather than blocking keeps Send safe to call
// under the stack's lock.
const DefaultQueueLimit = 1024

// ReorderHold is the longest a packet selected for reordering waits for a
// later packet to overtake it; past that it is delivered, just late.
const ReorderHold = time.Millisecond

// Impairments describes what one direction of a Pair does to packets. The
// zero value is a perfect link. Probabilities are per packet, in [0, 1].
//
// Order of effects per packet: Loss; then the rate limiter's queue (tail drop
// past QueueLimit); then Corrupt, Duplicate and Reorder; delivery is at
// departure + Delay + Jitter. Deliveries stay in send order (jitter bunches
// packets rather than reordering them) except through Reorder, so each
// impairment's effect can be tested on its own.
type Impairments struct {
	Loss      float64 // drop the packet
	Duplicate float64 // also deliver a copy, right after it
	Reorder   float64 // hold it back until the next packet passes it (at most ReorderHold extra)
	Corrupt   float64 // flip one random bit

	Delay  time.Duration // fixed one-way delay
	Jitter time.Duration // extra delay, uniform in [0, Jitter)

	// RateBytesPerSec, if > 0, serializes packets at that rate: each waits
	// for the ones before it and then takes len/rate to transmit.
	RateBytesPerSec int64
	// QueueLimit bounds the packets waiting (for the rate limiter if set,
	// otherwise for delivery); more are tail-dropped. 0 means unbounded,
	// except on the Real-clock fast path (see DefaultQueueLimit).
	QueueLimit int
}

// zero reports whether im impairs nothing (QueueLimit alone is not an
// impairment: it only sizes the fast path's queue).
func (im Impairments) zero() bool {
	im.QueueLimit = 0
	return im == Impairments{}
}

// PairConfig configures Pair.
type PairConfig struct {
	MTU  int   // largest packet; 0 means DefaultMTU
	Seed int64 // seeds the impairment randomness; same seed, same run
	AtoB Impairments
	BtoA Impairments
	// GSOMaxSize, if > MTU, lets both ends accept TCP packets up to that
	// size (at most 65535, the IPv4 limit) in SendGSO, which segments them
	// in software (wire.SplitTCP) before they enter the link, so
	// impairments act per segment; 0 disables GSO: GSOMaxSize() returns 0.
	GSOMaxSize int
}

// Stats counts what happened to the packets sent in one direction.
type Stats struct {
	Sent         uint64 // accepted by Send
	Delivered    uint64 // handed to the receiver (duplicates included)
	Lost         uint64 // dropped by Loss
	Duplicated   uint64 // extra copies made by Duplicate
	Reordered    uint64 // delivered after a packet sent later
	Corrupted    uint64 // had a bit flipped
	QueueDropped uint64 // tail-dropped by a full queue
	GSO          uint64 // packets SendGSO cut into segments (each segment counts in Sent)
}

// counters are one direction's Stats. delivered is written by the delivering
// side, the rest by senders, so they live on separate cache lines.
type counters struct {
	sent, lost, dup, reord, corrupt, qdrop, gso atomic.Uint64
	_                                           [64]byte
	delivered                                   atomic.Uint64
}

// Mem is one end of an in-memory link created by Pair. Its Send delivers to
// the other end's receiver.
type Mem struct {
	mtu    int
	gso    int       // GSOMaxSize(): > mtu, or 0
	bufs   sync.Pool // of *[]byte, mtu long: SendGSO's scratch
	joins  sync.Pool // of *[]byte, max(gso, mtu) long: SendGather's joined GSO packets
	peer   *Mem
	fast   *fastPipe // the direction this end sends on: one of fast and sim
	sim    *simPipe
	st     *counters
	recv   atomic.Pointer[func([]byte)]
	end    atomic.Pointer[func()] // batch end (link.BatchReceiver)
	closed atomic.Bool
}

// Pair returns two connected in-memory links on clock c.
//
// On a *clock.Real with no impairments in a direction, that direction is a
// goroutine draining a bounded queue of reused buffers: no allocation per
// packet and no timers. Otherwise packets are scheduled on c through a
// single timer per direction; on a *clock.Virtual every delivery then
// happens inside the clock's Advance/Step, in an order fixed by the seed and
// the sequence of Sends.
func Pair(c clock.Clock, cfg PairConfig) (a, b *Mem) {
	mtu := cfg.MTU
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	gso := min(cfg.GSOMaxSize, 0xffff)
	if gso <= mtu {
		gso = 0
	}
	a = &Mem{mtu: mtu, gso: gso, st: new(counters)}
	b = &Mem{mtu: mtu, gso: gso, st: new(counters)}
	newBuf := func() any { buf := make([]byte, mtu); return &buf }
	newJoin := func() any { buf := make([]byte, max(gso, mtu)); return &buf }
	a.bufs.New, b.bufs.New = newBuf, newBuf
	a.joins.New, b.joins.New = newJoin, newJoin
	a.peer, b.peer = b, a
	a.fast, a.sim = newPipe(c, cfg.AtoB, mtu, uint64(cfg.Seed), 0xa2b, b, a.st)
	b.fast, b.sim = newPipe(c, cfg.BtoA, mtu, uint64(cfg.Seed), 0xb2a, a, b.st)
	return a, b
}

// newPipe returns the direction from one end to dst: a fastPipe or a simPipe
// (the other is nil). They are concrete types, not an interface, so the
// parts a sender passes stay on its stack.
func newPipe(c clock.Clock, im Impairments, mtu int, seed, stream uint64, dst *Mem, st *counters) (*fastPipe, *simPipe) {
	if _, real := c.(*clock.Real); real && im.zero() {
		limit := im.QueueLimit
		if limit <= 0 {
			limit = DefaultQueueLimit
		}
		p := &fastPipe{dst: dst, st: st, mtu: mtu, slots: make([][]byte, limit), wake: make(chan struct{}, 1)}
		go p.run()
		return p, nil
	}
	p := &simPipe{
		clk: c, dst: dst, st: st, im: im, mtu: mtu,
		rng: rand.New(rand.NewPCG(seed, stream)),
		svc: timer.NewService(c),
	}
	fire := p.fire
	if _, real := c.(*clock.Real); real {
		// A Real clock runs every timer callback on a new goroutine, whose
		// small stack would grow (by copying) on each delivery into the
		// receiver's deep call chain; deliver from one long-lived goroutine.
		p.kick, p.done = make(chan struct{}, 1), make(chan struct{})
		fire = p.kickDeliverer
		go p.deliverer()
	}
	p.svc.Init(&p.tm, fire)
	return nil, p
}

// Send queues a copy of pkt for delivery to the other end. It never blocks
// and never calls a receiver. A packet to a closed peer is counted as Sent
// and silently discarded, like one sent into an unplugged cable.
func (m *Mem) Send(pkt []byte) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if len(pkt) > m.mtu {
		return ErrTooBig
	}
	m.st.sent.Add(1)
	m.enqueue([][]byte{pkt})
	return nil
}

// enqueue hands the packet joined from parts to this end's direction, which
// copies it.
func (m *Mem) enqueue(parts [][]byte) {
	if m.fast != nil {
		m.fast.send(parts)
	} else {
		m.sim.send(parts)
	}
}

// SendGather sends the packet joined from parts (link.Gatherer). With mss
// == 0 it is Send, copying the parts straight into the queued packet; with
// mss > 0 it joins them in a scratch buffer and calls SendGSO.
func (m *Mem) SendGather(parts [][]byte, mss int) error {
	if m.closed.Load() {
		return ErrClosed
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if mss > 0 {
		if n > max(m.gso, m.mtu) {
			return ErrTooBig
		}
		jp := m.joins.Get().(*[]byte)
		err := m.SendGSO(appendParts((*jp)[:0], parts), mss)
		m.joins.Put(jp)
		return err
	}
	if n > m.mtu {
		return ErrTooBig
	}
	m.st.sent.Add(1)
	m.enqueue(parts)
	return nil
}

// SetReceiver installs the function called with each packet arriving at this
// end. Calls are serialized; pkt is valid only during the call.
func (m *Mem) SetReceiver(recv func(pkt []byte)) {
	m.recv.Store(&recv)
}

// SetBatchEnd installs the function called after each batch of deliveries
// (link.BatchReceiver): on the real-clock fast path, everything the
// delivery goroutine took from the queue at once; on other paths, each
// packet.
func (m *Mem) SetBatchEnd(end func()) { m.end.Store(&end) }

// MTU returns the configured MTU.
func (m *Mem) MTU() int { return m.mtu }

// GSOMaxSize returns PairConfig.GSOMaxSize, capped at 65535, or 0 when that
// is not above the MTU (GSO disabled).
func (m *Mem) GSOMaxSize() int { return m.gso }

// SendGSO cuts the IPv4 TCP packet pkt into segments of at most mss payload
// bytes with wire.SplitTCP and Sends each, so each is counted, impaired and
// delivered on its own. pkt may be up to GSOMaxSize bytes, or MTU when GSO is
// disabled; a longer one, or an mss making segments longer than the MTU,
// gets ErrTooBig and nothing is sent. A packet SplitTCP rejects gets its
// error (see wire.SplitTCP). It does not retain pkt, never calls a receiver,
// is safe for concurrent use and does not allocate.
func (m *Mem) SendGSO(pkt []byte, mss int) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if len(pkt) > max(m.gso, m.mtu) {
		return ErrTooBig
	}
	bp := m.bufs.Get().(*[]byte)
	err := wire.SplitTCP(pkt, mss, *bp, m.Send)
	m.bufs.Put(bp)
	if err == wire.ErrShortBuffer {
		// The scratch buffer is MTU long: the segments would not fit.
		return ErrTooBig
	}
	if err == nil && len(pkt) > m.mtu {
		m.st.gso.Add(1)
	}
	return err
}

// Close shuts this end: nothing more is delivered to it, packets it sent
// that are still in flight are dropped, its Sends return ErrClosed, and its
// peer's Sends are discarded. A receiver call in progress (or racing with
// Close) may still complete; no later ones start. The fast path's goroutines
// exit promptly. Close is idempotent and may be called from a receiver.
func (m *Mem) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.closeOut()
	m.peer.closeOut()
	return nil
}

// closeOut closes the direction this end sends on.
func (m *Mem) closeOut() {
	if m.fast != nil {
		m.fast.close()
	} else {
		m.sim.close()
	}
}

// Stats returns the counters of the direction this end sends on.
func (m *Mem) Stats() Stats {
	c := m.st
	return Stats{
		Sent:         c.sent.Load(),
		Delivered:    c.delivered.Load(),
		Lost:         c.lost.Load(),
		Duplicated:   c.dup.Load(),
		Reordered:    c.reord.Load(),
		Corrupted:    c.corrupt.Load(),
		QueueDropped: c.qdrop.Load(),
		GSO:          c.gso.Load(),
	}
}

var (
	_ Link          = (*Mem)(nil)
	_ Segmenter     = (*Mem)(nil)
	_ BatchReceiver = (*Mem)(nil)
	_ Gatherer      = (*Mem)(nil)
)

// fastPipe is the Real-clock, unimpaired direction: a bounded ring of
// queued buffers drained in batches by one goroutine. Senders take the lock
// once per packet (copying under it: ~1.5KB is cheaper than a second lock
// round trip); the consumer takes it once per batch. Buffers come from a LIFO
// free list, so the memory in use tracks the actual queue depth and a lightly
// loaded link keeps reusing the same cache-hot buffer.
type fastPipe struct {
	dst  *Mem
	st   *counters
	mtu  int
	stop atomic.Bool // checked before every delivery, so Close takes effect mid-batch
	wake chan struct{}

	mu     sync.Mutex
	slots  [][]byte // ring; slots [head, head+n) are queued or being delivered
	head   int
	n      int
	free   [][]byte
	parked bool // consumer is (about to be) blocked on wake
	closed bool
}

// send queues the packet joined from parts.
func (p *fastPipe) send(parts [][]byte) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.n == len(p.slots) {
		p.mu.Unlock()
		p.st.qdrop.Add(1)
		return
	}
	var b []byte
	if k := len(p.free); k > 0 {
		b = p.free[k-1]
		p.free = p.free[:k-1]
	} else {
		b = make([]byte, 0, p.mtu) // only while the queue is deeper than ever before
	}
	i := p.head + p.n
	if i >= len(p.slots) {
		i -= len(p.slots)
	}
	p.slots[i] = appendParts(b[:0], parts)
	p.n++
	wake := p.parked
	p.parked = false
	p.mu.Unlock()
	if wake {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (p *fastPipe) run() {
	k := 0 // size of the batch being delivered, from p.head
	for {
		p.mu.Lock()
		// Release the previous batch and take everything queued since.
		for ; k > 0; k-- {
			p.free = append(p.free, p.slots[p.head])
			p.slots[p.head] = nil
			if p.head++; p.head == len(p.slots) {
				p.head = 0
			}
			p.n--
		}
		for p.n == 0 && !p.closed {
			p.parked = true
			p.mu.Unlock()
			<-p.wake
			p.mu.Lock()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		head := p.head
		k = p.n
		p.mu.Unlock()

		rp := p.dst.recv.Load()
		for j := 0; j < k; j++ {
			if p.stop.Load() {
				return
			}
			i := head + j
			if i >= len(p.slots) {
				i -= len(p.slots)
			}
			if rp != nil {
				(*rp)(p.slots[i])
			}
		}
		if rp != nil {
			p.st.delivered.Add(uint64(k))
			if e := p.dst.end.Load(); e != nil {
				(*e)()
			}
		}
	}
}

func (p *fastPipe) close() {
	p.stop.Store(true)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// simPipe is a direction with impairments or a non-Real clock. Packets wait
// in a FIFO whose delivery times never decrease (a reordered packet waits
// aside in held), so the earliest delivery is always at the front and one
// timer suffices. All randomness comes from rng under mu, in Send order.
type simPipe struct {
	clk clock.Clock
	dst *Mem
	st  *counters
	im  Impairments
	mtu int
	svc *timer.Service
	tm  timer.Timer

	// On a Real clock the timer kicks a goroutine that runs fire.
	kick chan struct{}
	done chan struct{}

	stop atomic.Bool

	mu      sync.Mutex
	rng     *rand.Rand
	q       ring[simPkt]
	held    simPkt // a packet being reordered, if hasHeld
	hasHeld bool
	heldAt  time.Duration // latest delivery of held
	last    time.Duration // delivery time of the newest packet (FIFO floor)
	txFree  time.Duration // when the rate limiter is next idle
	txq     ring[time.Duration]
	free    [][]byte
	armed   bool
	armedAt time.Duration
	closed  bool
}

type simPkt struct {
	buf []byte
	at  time.Duration
}

// copyBuf returns a free buffer holding the packet joined from parts.
func (p *simPipe) copyBuf(parts [][]byte) []byte {
	var b []byte
	if n := len(p.free); n > 0 {
		b = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		b = make([]byte, 0, p.mtu)
	}
	return appendParts(b[:0], parts)
}

// appendParts appends each of parts to b.
func appendParts(b []byte, parts [][]byte) []byte {
	for _, part := range parts {
		b = append(b, part...)
	}
	return b
}

// send schedules the packet joined from parts, as its impairments say.
func (p *simPipe) send(parts [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	im := &p.im
	if im.Loss > 0 && p.rng.Float64() < im.Loss {
		p.st.lost.Add(1)
		return
	}
	now := p.clk.Now()
	depart := now
	if im.RateBytesPerSec > 0 {
		for p.txq.len() > 0 && *p.txq.front() <= now {
			p.txq.pop()
		}
		if im.QueueLimit > 0 && p.txq.len() >= im.QueueLimit {
			p.st.qdrop.Add(1)
			return
		}
		n := 0
		for _, part := range parts {
			n += len(part)
		}
		depart = max(now, p.txFree) + time.Duration(int64(n)*int64(time.Second)/im.RateBytesPerSec)
		p.txFree = depart
		if im.QueueLimit > 0 {
			p.txq.push(depart)
		}
	} else if im.QueueLimit > 0 && p.q.len()+b2i(p.hasHeld) >= im.QueueLimit {
		p.st.qdrop.Add(1)
		return
	}
	at := depart + im.Delay
	if im.Jitter > 0 {
		at += time.Duration(p.rng.Int64N(int64(im.Jitter)))
	}
	at = max(at, p.last)
	p.last = at

	buf := p.copyBuf(parts)
	if im.Corrupt > 0 && p.rng.Float64() < im.Corrupt && len(buf) > 0 {
		bit := p.rng.IntN(len(buf) * 8)
		buf[bit/8] ^= 1 << (bit % 8)
		p.st.corrupt.Add(1)
	}
	dup := im.Duplicate > 0 && p.rng.Float64() < im.Duplicate
	reorder := im.Reorder > 0 && p.rng.Float64() < im.Reorder
	switch {
	case p.hasHeld:
		// This packet overtakes the held one, which follows right behind.
		p.q.push(simPkt{buf, at})
		p.q.push(simPkt{p.held.buf, at})
		p.held, p.hasHeld = simPkt{}, false
		p.st.reord.Add(1)
	case reorder:
		p.held, p.hasHeld, p.heldAt = simPkt{buf, at}, true, at+ReorderHold
	default:
		p.q.push(simPkt{buf, at})
	}
	if dup {
		p.q.push(simPkt{p.copyBuf([][]byte{buf}), at})
		p.st.dup.Add(1)
	}
	p.arm(now)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// arm makes the timer fire by the earliest delivery. It only moves the timer
// earlier; a firing that finds nothing due re-arms. p.mu must be held.
func (p *simPipe) arm(now time.Duration) {
	var next time.Duration
	switch {
	case p.q.len() > 0:
		// While a packet is held the FIFO only has older packets, all due
		// before heldAt, so the front is the earliest.
		next = p.q.front().at
	case p.hasHeld:
		next = p.heldAt
	default:
		return
	}
	if !p.armed || next < p.armedAt {
		p.svc.Reset(&p.tm, next-now)
		p.armed, p.armedAt = true, next
	}
}

// fire delivers every packet that is due, one receiver call at a time
// (timer callbacks never overlap), then re-arms for the next.
func (p *simPipe) fire() {
	var done []byte
	p.mu.Lock()
	p.armed = false
	for {
		if done != nil {
			p.free = append(p.free, done)
			done = nil
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		now := p.clk.Now()
		var buf []byte
		switch {
		case p.q.len() > 0 && p.q.front().at <= now:
			buf = p.q.pop().buf
		case p.q.len() == 0 && p.hasHeld && p.heldAt <= now:
			buf = p.held.buf
			p.held, p.hasHeld = simPkt{}, false
		default:
			p.arm(now)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if rp := p.dst.recv.Load(); rp != nil && !p.stop.Load() {
			(*rp)(buf)
			p.st.delivered.Add(1)
			if e := p.dst.end.Load(); e != nil {
				(*e)() // on virtual time every delivery is its own batch
			}
		}
		done = buf
		p.mu.Lock()
	}
}

// kickDeliverer is the timer callback on a Real clock.
func (p *simPipe) kickDeliverer() {
	select {
	case p.kick <- struct{}{}:
	default: // a kick is pending: that fire delivers everything due
	}
}

// deliverer runs fire when kicked, until close.
func (p *simPipe) deliverer() {
	for {
		select {
		case <-p.kick:
			p.fire()
		case <-p.done:
			return
		}
	}
}

func (p *simPipe) close() {
	p.stop.Store(true)
	p.mu.Lock()
	if p.done != nil && !p.closed {
		close(p.done)
	}
	p.closed = true
	p.q = ring[simPkt]{}
	p.held, p.hasHeld = simPkt{}, false
	p.free = nil
	p.mu.Unlock()
	p.svc.Close()
}
