package link

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/wire"
)

// LinkTypeRaw is the pcap link type the Tap writes: LINKTYPE_RAW (101), raw
// IPv4/IPv6 with no link header. It is understood by more tools than
// LINKTYPE_IPV4 (228).
const LinkTypeRaw = 101

// tapSnapLen covers the largest IPv4 packet, so nothing is truncated.
const tapSnapLen = 65535

// Tap is a Link that passes everything through to another Link and records
// every packet sent and received to a classic pcap stream (nanosecond
// timestamps, LinkTypeRaw). Writes are buffered and serialized by a mutex;
// call Flush or Close to push them out. Recording does not allocate (after
// the first SendGSO, which allocates the Tap's segmentation scratch).
//
// A Tap also implements the optional Segmenter, BatchReceiver and
// PortReserver interfaces, forwarding them to the wrapped link, so a stack
// keeps the wrapped link's offloads when a capture is added (see each
// method for what happens when the wrapped link lacks one).
type Tap struct {
	l     Link
	clk   clock.Clock            // nil: wall-clock timestamps
	end   atomic.Pointer[func()] // SetBatchEnd's, if l is no BatchReceiver
	mu    sync.Mutex
	w     *bufio.Writer
	hdr   [16]byte
	seg   []byte // SendGSO's scratch for the segments it records; under mu
	err   error  // first write error; recording stops after it
	close bool
}

// NewTap wraps l, recording to w with wall-clock timestamps. The pcap file
// header is written immediately (buffered). w is not closed by the Tap.
func NewTap(l Link, w io.Writer) *Tap {
	return NewTapClock(l, w, nil)
}

// NewTapClock is NewTap with timestamps taken from c (the Unix epoch plus
// c.Now()), so a capture made on a Virtual clock is reproducible byte for
// byte. A nil c means wall-clock time.
func NewTapClock(l Link, w io.Writer, c clock.Clock) *Tap {
	t := &Tap{l: l, clk: c, w: bufio.NewWriterSize(w, 64<<10)}
	var h [24]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], 0xa1b23c4d) // nanosecond-resolution magic
	le.PutUint16(h[4:], 2)          // version 2.4
	le.PutUint16(h[6:], 4)
	// h[8:16]: thiszone, sigfigs = 0
	le.PutUint32(h[16:], tapSnapLen)
	le.PutUint32(h[20:], LinkTypeRaw)
	_, t.err = t.w.Write(h[:])
	return t
}

// Send records pkt and passes it on. Recording comes first so that a reply
// delivered on another goroutine can never precede its cause in the file;
// a packet the wrapped link then rejects (ErrClosed, too big) stays recorded.
func (t *Tap) Send(pkt []byte) error {
	t.record(pkt)
	return t.l.Send(pkt)
}

// SetReceiver installs recv behind a hook that records each packet first.
// When the wrapped link is no BatchReceiver, the hook also calls the
// function installed by SetBatchEnd, if any, after each packet.
func (t *Tap) SetReceiver(recv func(pkt []byte)) {
	t.l.SetReceiver(func(pkt []byte) {
		t.record(pkt)
		recv(pkt)
		if end := t.end.Load(); end != nil {
			(*end)()
		}
	})
}

// MTU returns the wrapped link's MTU.
func (t *Tap) MTU() int { return t.l.MTU() }

// Flush writes buffered records to the underlying writer. It returns the
// first write error seen, if any.
func (t *Tap) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = t.w.Flush()
	}
	return t.err
}

// Close closes the wrapped link, stops recording and flushes. It returns the
// link's Close error, else the first write error.
func (t *Tap) Close() error {
	lerr := t.l.Close()
	t.mu.Lock()
	t.close = true
	t.mu.Unlock()
	ferr := t.Flush()
	if lerr != nil {
		return lerr
	}
	return ferr
}

// GSOMaxSize returns the wrapped link's GSOMaxSize, or 0 (no segmentation
// offload, so a stack sends nothing longer than the MTU) when it is no
// Segmenter. It exists so that a stack on a Tap keeps the wrapped link's
// offload: a Tap must be a Segmenter to be detected as one.
func (t *Tap) GSOMaxSize() int {
	if s, ok := t.l.(Segmenter); ok {
		return s.GSOMaxSize()
	}
	return 0
}

// SendGSO records pkt as the segments of at most mss payload bytes the
// wrapped link will put on the wire (cut with wire.SplitTCP, all stamped
// with one timestamp and written together), then passes pkt, unchanged, to
// the wrapped link's SendGSO, so the capture shows what a peer receives
// rather than a packet longer than the MTU. As in Send, recording comes
// first and a packet the link then rejects stays recorded; a packet
// SplitTCP cannot cut (malformed, SYN or RST, mss < 1) is recorded whole,
// and the wrapped link reports the error. When the wrapped link is no
// Segmenter (GSOMaxSize is 0, so a stack does not call this), SendGSO is
// Send: a packet longer than the MTU gets the link's error for that.
func (t *Tap) SendGSO(pkt []byte, mss int) error {
	s, ok := t.l.(Segmenter)
	if !ok {
		return t.Send(pkt)
	}
	t.recordGSO(pkt, mss)
	return s.SendGSO(pkt, mss)
}

// SetBatchEnd passes end to the wrapped link when it is a BatchReceiver, so
// a stack on a Tap still defers its ACKs to the end of each receive batch.
// Otherwise every packet is a batch of one: the receive hook installed by
// SetReceiver calls end after each packet. (Doing nothing instead would be
// wrong: a stack that finds a BatchReceiver defers ACKs until the batch
// end, and without one would wait for its delayed-ACK timer.) Like the
// interface requires, call it before SetReceiver.
func (t *Tap) SetBatchEnd(end func()) {
	if b, ok := t.l.(BatchReceiver); ok {
		b.SetBatchEnd(end)
		return
	}
	if end == nil {
		t.end.Store(nil)
		return
	}
	t.end.Store(&end)
}

// ReservePort returns the wrapped link's reservation when it is a
// PortReserver, so a stack on a Tap over a raw socket still claims its
// ports in the host's TCP; otherwise the port needs no reservation and
// ReservePort returns (nil, nil), as a stack without a PortReserver assumes.
func (t *Tap) ReservePort(port uint16) (release func(), err error) {
	if r, ok := t.l.(PortReserver); ok {
		return r.ReservePort(port)
	}
	return nil, nil
}

func (t *Tap) now() int64 {
	if t.clk != nil {
		return int64(t.clk.Now())
	}
	return time.Now().UnixNano()
}

func (t *Tap) record(pkt []byte) {
	ts := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil || t.close {
		return
	}
	t.writeLocked(ts, pkt)
}

// recordGSO records pkt as the segments SplitTCP cuts it into, holding mu
// throughout so that they are contiguous in the file and may share t.seg.
func (t *Tap) recordGSO(pkt []byte, mss int) {
	ts := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil || t.close {
		return
	}
	if t.seg == nil {
		// Every piece is shorter than a packet that needs cutting, and
		// no IPv4 packet is longer than this.
		t.seg = make([]byte, 0xffff)
	}
	emitted := false
	err := wire.SplitTCP(pkt, mss, t.seg, func(seg []byte) error {
		emitted = true
		return t.writeLocked(ts, seg)
	})
	if err != nil && !emitted {
		t.writeLocked(ts, pkt) // rejected before any piece: record it whole
	}
}

// writeLocked writes one record, stamped ts, and returns t.err. t.mu must be
// held, and recording not stopped.
func (t *Tap) writeLocked(ts int64, pkt []byte) error {
	n := min(len(pkt), tapSnapLen)
	le := binary.LittleEndian
	le.PutUint32(t.hdr[0:], uint32(ts/1e9))
	le.PutUint32(t.hdr[4:], uint32(ts%1e9))
	le.PutUint32(t.hdr[8:], uint32(n))
	le.PutUint32(t.hdr[12:], uint32(len(pkt)))
	if _, err := t.w.Write(t.hdr[:]); err != nil {
		t.err = err
		return err
	}
	if _, err := t.w.Write(pkt[:n]); err != nil {
		t.err = err
	}
	return t.err
}

var (
	_ Link          = (*Tap)(nil)
	_ Segmenter     = (*Tap)(nil)
	_ BatchReceiver = (*Tap)(nil)
	_ PortReserver  = (*Tap)(nil)
)
