package link

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// chanLink is a baseline shaped like gVisor's channel endpoint: a buffered
// channel of pooled packet buffers, non-blocking (dropping) writes, and one
// goroutine delivering them. It exists only to compare the fast path with.
type chanLink struct {
	ch   chan []byte
	free chan []byte
	recv func([]byte)
	drop atomic.Uint64
	done chan struct{}
}

func newChanLink(size, mtu int, recv func([]byte)) *chanLink {
	l := &chanLink{ch: make(chan []byte, size), free: make(chan []byte, size), recv: recv, done: make(chan struct{})}
	for i := 0; i < size; i++ {
		l.free <- make([]byte, 0, mtu)
	}
	go func() {
		for {
			select {
			case b := <-l.ch:
				l.recv(b)
				l.free <- b
			case <-l.done:
				return
			}
		}
	}()
	return l
}

func (l *chanLink) send(p []byte) {
	select {
	case b := <-l.free:
		b = append(b[:0], p...)
		select {
		case l.ch <- b:
		default:
			l.drop.Add(1)
			l.free <- b
		}
	default:
		l.drop.Add(1)
	}
}

func BenchmarkChanBaseline(b *testing.B) {
	var n atomic.Int64
	l := newChanLink(DefaultQueueLimit, DefaultMTU, func([]byte) { n.Add(1) })
	defer close(l.done)
	p := pkt(0, 1400)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	sent := int64(0)
	for b.Loop() {
		for sent-n.Load() >= 256 {
			runtime.Gosched()
		}
		l.send(p)
		sent++
	}
	for n.Load() < sent {
		runtime.Gosched()
	}
	if d := l.drop.Load(); d != 0 {
		b.Fatalf("%d dropped", d)
	}
}

func BenchmarkChanBaselinePingPong(b *testing.B) {
	var bl *chanLink
	pong := make(chan struct{}, 1)
	al := newChanLink(DefaultQueueLimit, DefaultMTU, func([]byte) { pong <- struct{}{} })
	bl = newChanLink(DefaultQueueLimit, DefaultMTU, func(p []byte) { al.send(p) })
	defer close(al.done)
	defer close(bl.done)
	p := pkt(0, 100)
	b.ReportAllocs()
	for b.Loop() {
		bl.send(p)
		<-pong
	}
}
