package link

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
	"time"

	"github.com/fsmgen/fsmgen/runtime/clock"
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
// call Flush or Close to push them out. Recording does not allocate.
type Tap struct {
	l     Link
	clk   clock.Clock // nil: wall-clock timestamps
	mu    sync.Mutex
	w     *bufio.Writer
	hdr   [16]byte
	err   error // first write error; recording stops after it
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
func (t *Tap) SetReceiver(recv func(pkt []byte)) {
	t.l.SetReceiver(func(pkt []byte) {
		t.record(pkt)
		recv(pkt)
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

func (t *Tap) record(pkt []byte) {
	var ts int64
	if t.clk != nil {
		ts = int64(t.clk.Now())
	} else {
		ts = time.Now().UnixNano()
	}
	n := min(len(pkt), tapSnapLen)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil || t.close {
		return
	}
	le := binary.LittleEndian
	le.PutUint32(t.hdr[0:], uint32(ts/1e9))
	le.PutUint32(t.hdr[4:], uint32(ts%1e9))
	le.PutUint32(t.hdr[8:], uint32(n))
	le.PutUint32(t.hdr[12:], uint32(len(pkt)))
	if _, err := t.w.Write(t.hdr[:]); err != nil {
		t.err = err
		return
	}
	if _, err := t.w.Write(pkt[:n]); err != nil {
		t.err = err
	}
}

var _ Link = (*Tap)(nil)
