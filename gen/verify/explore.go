package verify

import (
	"slices"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// local is one peer's abstract configuration.
type local struct {
	state uint8
	armed uint16 // timers armed
	flags uint16 // flag guards that hold
	count [maxCounters]uint8
}

// config is a configuration of the product: both peers, the two channels
// and the user events not yet injected.
type config struct {
	p      [2]local
	ch     [2][maxCap]uint8 // ch[i]: messages in flight to peer i, oldest first
	n      [2]uint8
	tokens uint32 // bit k: user event k not yet injected; movedBit: not a start configuration
}

// movedBit marks every configuration but the start ones, so that a goal equal
// to the start pair must be reached again (after at least one move).
const movedBit = 1 << 31

// token is a user event a scenario may inject once at a peer.
type token struct {
	peer  int
	event int
}

type moveKind uint8

const (
	mStart moveKind = iota
	mUser
	mRecv
	mTimer
	mLose
	mDup
)

// move identifies one successor of a configuration; describe re-derives its
// details for traces.
type move struct {
	kind moveKind
	peer uint8 // the peer acting, or the receiving peer of the channel (lose, dup)
	idx  uint8 // token, timer, or channel position
	alt  uint8 // classification alternative (recv)
	val  uint32
	out  *outcome // nil: dropped message, or lose/dup
}

// edge is one move in the explored graph.
type edge struct {
	dst  int32
	kind moveKind
}

// graph is an explored state space; node ids are in BFS order.
type graph struct {
	keys      []string
	index     map[string]int32
	parent    []int32
	via       []move
	edgeOff   []int32 // edges of node i: edges[edgeOff[i]:edgeOff[i+1]]
	edges     []edge
	expanded  []bool // false: absorbed (a goal) or cut off
	truncated bool   // MaxStates was reached: nodes from cut on were not expanded
	cut       int32
}

func (g *graph) succ(i int32) []edge { return g.edges[g.edgeOff[i]:g.edgeOff[i+1]] }

// explorer explores one scenario in one mode.
type explorer struct {
	x       *model
	opts    Options
	tokens  []token
	patient bool
	absorb  func(*config) bool // configurations not expanded (goals)

	// Coverage and findings, shared across explorations (owned by the verifier).
	cov *coverage
	rej func(g *graph, parent int32, mv move, c *config, msg int) // a rejected event

	g   *graph
	cur int32
	buf []byte
}

type coverage struct {
	states []bool
	rows   map[[2]int]bool // (transition, from)
}

func (e *explorer) encode(c *config) string {
	b := e.buf[:0]
	for i := 0; i < 2; i++ {
		l := &c.p[i]
		b = append(b, l.state, byte(l.armed), byte(l.armed>>8), byte(l.flags), byte(l.flags>>8))
		for k := 0; k < e.x.nCounter; k++ {
			b = append(b, l.count[k])
		}
	}
	for i := 0; i < 2; i++ {
		b = append(b, c.n[i])
		b = append(b, c.ch[i][:c.n[i]]...)
	}
	b = append(b, byte(c.tokens), byte(c.tokens>>8), byte(c.tokens>>16), byte(c.tokens>>24))
	e.buf = b
	return string(b)
}

func (x *model) decode(key string) config {
	var c config
	p := 0
	for i := 0; i < 2; i++ {
		l := &c.p[i]
		l.state = key[p]
		l.armed = uint16(key[p+1]) | uint16(key[p+2])<<8
		l.flags = uint16(key[p+3]) | uint16(key[p+4])<<8
		p += 5
		for k := 0; k < x.nCounter; k++ {
			l.count[k] = key[p]
			p++
		}
	}
	for i := 0; i < 2; i++ {
		c.n[i] = key[p]
		p++
		copy(c.ch[i][:], key[p:p+int(c.n[i])])
		p += int(c.n[i])
	}
	c.tokens = uint32(key[p]) | uint32(key[p+1])<<8 | uint32(key[p+2])<<16 | uint32(key[p+3])<<24
	return c
}

// normalize clears history that can no longer matter and, when channels
// reorder (a channel is then a multiset), sorts what is in flight.
func (e *explorer) normalize(c *config) {
	for i := range c.p {
		c.p[i].flags &= e.x.liveFlags[c.p[i].state]
	}
	if e.opts.Reorder {
		for i := range c.ch {
			slices.Sort(c.ch[i][:c.n[i]])
		}
	}
}

// explore runs BFS from starts.
func (e *explorer) explore(starts []config) *graph {
	g := &graph{index: map[string]int32{}}
	e.g = g
	add := func(c *config, parent int32, mv move) int32 {
		e.normalize(c)
		k := e.encode(c)
		if id, ok := g.index[k]; ok {
			return id
		}
		id := int32(len(g.keys))
		g.index[k] = id
		g.keys = append(g.keys, k)
		g.parent = append(g.parent, parent)
		g.via = append(g.via, mv)
		for i := range c.p {
			e.cov.states[c.p[i].state] = true
		}
		return id
	}
	for i := range starts {
		add(&starts[i], -1, move{kind: mStart})
	}
	for id := int32(0); int(id) < len(g.keys); id++ {
		g.edgeOff = append(g.edgeOff, int32(len(g.edges)))
		c := e.x.decode(g.keys[id])
		if e.absorb != nil && e.absorb(&c) {
			g.expanded = append(g.expanded, false)
			continue
		}
		if len(g.keys) >= e.opts.MaxStates {
			if !g.truncated {
				g.truncated, g.cut = true, id
			}
			g.expanded = append(g.expanded, false)
			continue
		}
		g.expanded = append(g.expanded, true)
		e.cur = id
		e.successors(&c, func(mv move, n *config) {
			n.tokens |= movedBit
			dst := add(n, id, mv)
			g.edges = append(g.edges, edge{dst: dst, kind: mv.kind})
		})
	}
	g.edgeOff = append(g.edgeOff, int32(len(g.edges)))
	return g
}

// successors calls emit for every move from c, in a fixed order: user
// events, deliveries, timers, then channel faults.
func (e *explorer) successors(c *config, emit func(move, *config)) {
	x := e.x
	// User events, once each; of identical tokens only the first unused.
	for k, t := range e.tokens {
		if c.tokens&(1<<k) == 0 || e.earlierToken(c, k) {
			continue
		}
		l := c.p[t.peer]
		x.outcomes(&l, t.event, 0, 0, e.opts.Retries, e.patient, func(vo valOutcome) {
			if vo.out.result == spec.Rejected {
				return // the user may not do that here
			}
			n := *c
			n.tokens &^= 1 << k
			e.apply(&n, t.peer, vo.out, t.event)
			emit(move{kind: mUser, peer: uint8(t.peer), idx: uint8(k), val: vo.val, out: vo.out}, &n)
		})
	}
	// Deliveries: the oldest message, or any with reordering.
	for i := 0; i < 2; i++ {
		for pos := 0; pos < int(c.n[i]); pos++ {
			if pos > 0 && !e.opts.Reorder {
				break
			}
			msg := int(c.ch[i][pos])
			if e.seenBefore(c, i, pos) {
				continue
			}
			l := c.p[i]
			for alt, ev := range x.routes[msg][l.state] {
				n := *c
				removeAt(&n, i, pos)
				mv := move{kind: mRecv, peer: uint8(i), idx: uint8(pos), alt: uint8(alt)}
				if ev < 0 {
					emit(mv, &n)
					continue
				}
				x.outcomes(&l, ev, x.carryMask[msg], x.carryVal[msg], e.opts.Retries, e.patient, func(vo valOutcome) {
					n2 := n
					mv.val, mv.out = vo.val, vo.out
					if vo.out.result == spec.Rejected && e.rej != nil {
						e.rej(e.g, e.cur, mv, &n2, msg)
					}
					e.apply(&n2, i, vo.out, ev)
					emit(mv, &n2)
				})
			}
		}
	}
	// Timers: any armed timer may expire.
	for i := 0; i < 2; i++ {
		for ti := range x.timers {
			bit := uint16(1) << ti
			if c.p[i].armed&bit == 0 {
				continue
			}
			n := *c
			n.p[i].armed &^= bit
			l := n.p[i]
			ev := x.timerEv[ti]
			x.outcomes(&l, ev, 0, 0, e.opts.Retries, e.patient, func(vo valOutcome) {
				n2 := n
				mv := move{kind: mTimer, peer: uint8(i), idx: uint8(ti), val: vo.val, out: vo.out}
				if vo.out.result == spec.Rejected && e.rej != nil {
					e.rej(e.g, e.cur, mv, &n2, -1)
				}
				e.apply(&n2, i, vo.out, ev)
				emit(mv, &n2)
			})
		}
	}
	// Faults: lose any message; duplicate any message while there is room.
	if e.opts.Loss {
		for i := 0; i < 2; i++ {
			for pos := 0; pos < int(c.n[i]); pos++ {
				if pos > 0 && c.ch[i][pos] == c.ch[i][pos-1] {
					continue // same result as losing the previous one
				}
				n := *c
				removeAt(&n, i, pos)
				emit(move{kind: mLose, peer: uint8(i), idx: uint8(pos)}, &n)
			}
		}
	}
	if e.opts.Dup {
		for i := 0; i < 2; i++ {
			if int(c.n[i]) >= e.opts.Capacity {
				continue
			}
			for pos := 0; pos < int(c.n[i]); pos++ {
				if pos > 0 && c.ch[i][pos] == c.ch[i][pos-1] {
					continue
				}
				n := *c
				insertAt(&n, i, pos+1, c.ch[i][pos])
				emit(move{kind: mDup, peer: uint8(i), idx: uint8(pos)}, &n)
			}
		}
	}
}

// earlierToken reports whether an unused token before k is the same user
// event at the same peer (then k gives the same successors).
func (e *explorer) earlierToken(c *config, k int) bool {
	for j := 0; j < k; j++ {
		if c.tokens&(1<<j) != 0 && e.tokens[j] == e.tokens[k] {
			return true
		}
	}
	return false
}

// seenBefore reports whether the message at pos also sits at an earlier
// position of the channel; with Reorder (the only case it is used) the
// channel is a multiset and delivering either copy gives the same successors.
func (e *explorer) seenBefore(c *config, i, pos int) bool {
	for j := 0; j < pos; j++ {
		if c.ch[i][j] == c.ch[i][pos] {
			return true
		}
	}
	return false
}

func removeAt(c *config, i, pos int) {
	copy(c.ch[i][pos:], c.ch[i][pos+1:c.n[i]])
	c.n[i]--
	c.ch[i][c.n[i]] = 0
}

func insertAt(c *config, i, pos int, msg uint8) {
	copy(c.ch[i][pos+1:c.n[i]+1], c.ch[i][pos:c.n[i]])
	c.ch[i][pos] = msg
	c.n[i]++
}

// apply runs outcome o at peer i of c: actions in order (sending into the
// channel to the other peer; a full channel loses the message), then the
// host's timer rule on a state change.
func (e *explorer) apply(c *config, i int, o *outcome, event int) {
	if o.result != spec.Taken {
		return
	}
	e.cov.rows[[2]int{o.trans, o.from}] = true
	x := e.x
	l := &c.p[i]
	peer := 1 - i
	for _, st := range o.steps {
		switch st.kind {
		case sCall:
			for _, msg := range st.sends {
				if int(c.n[peer]) < e.opts.Capacity {
					c.ch[peer][c.n[peer]] = uint8(msg)
					c.n[peer]++
				}
			}
			l.flags = (l.flags | st.set) &^ st.clear
			if st.inc > 0 && !e.patient && int(l.count[st.inc-1]) < e.opts.Retries {
				l.count[st.inc-1]++
			}
			for k := 0; k < x.nCounter; k++ {
				if st.reset&(1<<k) != 0 {
					l.count[k] = 0
				}
			}
		case sStart:
			l.armed |= 1 << st.timer
		case sStop:
			l.armed &^= 1 << st.timer
		case sEnter:
			l.state = uint8(o.next)
			l.count = [maxCounters]uint8{}
		}
	}
	if !o.internal {
		l.armed = l.armed&^x.hostMask | x.hostArmed[o.next]
	}
}
