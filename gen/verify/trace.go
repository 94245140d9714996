package verify

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// Trace is a run of the two peers, one row per move.
type Trace struct {
	First int // number of the first step (0 for a run from the start)
	Steps []Step
}

// Step is one row of a trace: the move and the configuration after it.
type Step struct {
	Move string // what happened, e.g. "B recv FIN as RCV_FIN [!fin_acked]"
	A, B string // each peer's state, armed timers, flags and counters
	AtoB string // messages in flight from A to B, oldest first
	BtoA string
}

// String renders the trace as an aligned table.
func (t *Trace) String() string {
	var b strings.Builder
	t.write(&b, "")
	return b.String()
}

func (t *Trace) write(w *strings.Builder, indent string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sstep\tmove\tA\tB\tA→B\tB→A\n", indent)
	for i, s := range t.Steps {
		fmt.Fprintf(tw, "%s%d\t%s\t%s\t%s\t%s\t%s\n", indent, t.First+i, s.Move, s.A, s.B, s.AtoB, s.BtoA)
	}
	tw.Flush()
}

// localText shows a peer: "SYN-SENT [retransmit] passive #retransmit=1".
func (v *verifier) localText(l *local) string {
	x := v.x
	parts := []string{x.states[l.state].Name}
	var timers []string
	for ti, t := range x.timers {
		if l.armed&(1<<ti) != 0 {
			timers = append(timers, t.Name)
		}
	}
	if len(timers) > 0 {
		parts = append(parts, "["+strings.Join(timers, ",")+"]")
	}
	for gi, g := range x.guards {
		switch x.gkind[gi] {
		case gFlag:
			if l.flags&(1<<x.gslot[gi]) != 0 {
				parts = append(parts, g)
			}
		case gCounter:
			if n := l.count[x.gslot[gi]]; n > 0 {
				parts = append(parts, fmt.Sprintf("#%s=%d", x.m.GuardModelByName(g).Counts, n))
			}
		}
	}
	return strings.Join(parts, " ")
}

func (v *verifier) chanText(c *config, to int) string {
	if c.n[to] == 0 {
		return "-"
	}
	names := make([]string, c.n[to])
	for k := range names {
		names[k] = v.x.msgs[c.ch[to][k]].Name
	}
	return strings.Join(names, ",")
}

func (v *verifier) stepOf(move string, c *config) Step {
	return Step{Move: move, A: v.localText(&c.p[0]), B: v.localText(&c.p[1]), AtoB: v.chanText(c, 1), BtoA: v.chanText(c, 0)}
}

// trace returns the BFS-tree path from a start configuration to id.
func (v *verifier) trace(e *explorer, g *graph, id int32) *Trace {
	var path []int32
	for p := id; p >= 0; p = g.parent[p] {
		path = append(path, p)
	}
	t := &Trace{}
	for i := len(path) - 1; i >= 0; i-- {
		n := path[i]
		c := v.x.decode(g.keys[n])
		if g.parent[n] < 0 {
			t.Steps = append(t.Steps, v.stepOf("start", &c))
			continue
		}
		pc := v.x.decode(g.keys[g.parent[n]])
		t.Steps = append(t.Steps, v.stepOf(v.describe(e, &pc, g.via[n]), &c))
	}
	return t
}

// pathTrace renders a path of nodes after from (whose configuration is step
// first), finding the move behind each edge by replaying from's successors.
func (v *verifier) pathTrace(e *explorer, g *graph, from int32, path []int32, first int) *Trace {
	t := &Trace{First: first}
	prev := from
	for _, n := range path {
		pc := v.x.decode(g.keys[prev])
		mv, c := v.moveBetween(e, &pc, g.keys[n])
		t.Steps = append(t.Steps, v.stepOf(v.describe(e, &pc, mv), &c))
		prev = n
	}
	return t
}

// moveBetween finds a move from c to the configuration with key to.
func (v *verifier) moveBetween(e *explorer, c *config, to string) (move, config) {
	var found move
	var cfg config
	ok := false
	rej := e.rej
	e.rej = nil
	e.successors(c, func(mv move, n *config) {
		if ok {
			return
		}
		n.tokens |= movedBit
		e.normalize(n)
		if e.encode(n) == to {
			found, cfg, ok = mv, *n, true
		}
	})
	e.rej = rej
	return found, cfg
}

// stepAfter is the row for move mv from c (used for a rejected event, whose
// target configuration the BFS may have reached another way).
func (v *verifier) stepAfter(e *explorer, c *config, mv move) Step {
	var after config
	rej := e.rej
	e.rej = nil
	e.successors(c, func(m move, n *config) {
		if m == mv {
			after = *n
		}
	})
	e.rej = rej
	return v.stepOf(v.describe(e, c, mv), &after)
}

// cycleTrace is a shortest cycle of deliveries from id back to id within a
// component.
func (v *verifier) cycleTrace(e *explorer, g *graph, id int32, within func(int32) bool, first int) *Trace {
	recv := func(k moveKind) bool { return k == mRecv }
	path := pathWithin(g, id, recv, within, func(n int32) bool { return n == id })
	return v.pathTrace(e, g, id, path, first)
}

// explainTrap says where the peers go from a trap of an always-reaches
// property: nowhere (no move), on to a configuration with no move (Rest), or
// into a cycle they cannot leave (Rest to it, and the Cycle).
func (v *verifier) explainTrap(r *PropertyResult, e *explorer, g *graph, trap int32) {
	all := func(moveKind) bool { return true }
	everywhere := func(int32) bool { return true }
	stuck := func(n int32) bool { return g.expanded[n] && len(g.succ(n)) == 0 }
	if stuck(trap) {
		r.Detail += ": no move is possible there"
		return
	}
	next := len(r.Trace.Steps)
	if path := pathWithin(g, trap, all, everywhere, stuck); path != nil {
		r.Rest = v.pathTrace(e, g, trap, path, next)
		r.Rest.Steps[len(r.Rest.Steps)-1].Move += " — no move left"
		return
	}
	comp := scc(g, all)
	bottom := map[int32]bool{}
	for _, c := range comp {
		bottom[c] = true
	}
	for n := int32(0); int(n) < len(g.keys); n++ {
		for _, ed := range g.succ(n) {
			if comp[ed.dst] != comp[n] {
				bottom[comp[n]] = false
			}
		}
	}
	inBottom := func(n int32) bool { return bottom[comp[n]] }
	end := trap
	if !inBottom(trap) {
		path := pathWithin(g, trap, all, everywhere, inBottom)
		if path == nil {
			return
		}
		r.Rest = v.pathTrace(e, g, trap, path, next)
		end = path[len(path)-1]
		next += len(path)
	}
	size := 0
	for _, c := range comp {
		if c == comp[end] {
			size++
		}
	}
	r.Detail += fmt.Sprintf(": the peers can only cycle through %d configurations, none in the goal", size)
	cycle := pathWithin(g, end, all, func(n int32) bool { return comp[n] == comp[end] }, func(n int32) bool { return n == end })
	r.Cycle = v.pathTrace(e, g, end, cycle, next)
}

// describe says what move mv does from c.
func (v *verifier) describe(e *explorer, c *config, mv move) string {
	x := v.x
	p := peerName(int(mv.peer))
	other := peerName(1 - int(mv.peer))
	var s string
	switch mv.kind {
	case mStart:
		return "start"
	case mUser:
		s = fmt.Sprintf("%s user %s", p, x.events[e.tokens[mv.idx].event].Name)
	case mRecv:
		msg := c.ch[mv.peer][mv.idx]
		ev := x.routes[msg][c.p[mv.peer].state][mv.alt]
		s = fmt.Sprintf("%s recv %s", p, x.msgs[msg].Name)
		if ev < 0 {
			return s + ": dropped"
		}
		s += " as " + x.events[ev].Name
	case mTimer:
		t := x.timers[mv.idx]
		s = fmt.Sprintf("%s timer %s: %s", p, t.Name, t.Event)
	case mLose:
		return fmt.Sprintf("lose %s (%s→%s)", x.msgs[c.ch[mv.peer][mv.idx]].Name, other, p)
	case mDup:
		return fmt.Sprintf("duplicate %s (%s→%s)", x.msgs[c.ch[mv.peer][mv.idx]].Name, other, p)
	}
	o := mv.out
	switch o.result {
	case spec.Taken:
		if t := x.m.Transitions[o.trans]; len(t.Guard) > 0 {
			s += " [" + t.GuardText() + "]"
		}
		if lost := v.overflow(e, c, int(mv.peer), o); lost != "" {
			s += "; " + p + "→" + other + " full, " + lost + " lost"
		}
	case spec.Ignored:
		s += " (ignored)"
	case spec.Rejected:
		s += " (REJECTED)"
	}
	return s
}

// overflow names the messages o sends that do not fit the channel.
func (v *verifier) overflow(e *explorer, c *config, i int, o *outcome) string {
	n := int(c.n[1-i])
	if o.steps == nil {
		return ""
	}
	var lost []string
	for _, st := range o.steps {
		for _, msg := range st.sends {
			if n < e.opts.Capacity {
				n++
			} else {
				lost = append(lost, v.x.msgs[msg].Name)
			}
		}
	}
	return strings.Join(lost, ",")
}
