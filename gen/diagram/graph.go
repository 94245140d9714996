package diagram

import (
	"github.com/fsmgen/fsmgen/gen/spec"
)

// edge is one drawn arrow: the transitions that lead from one state to
// another (or, for internal transitions, back to the same state without
// leaving it), one line of its label each.
type edge struct {
	from, to string
	internal bool               // internal transitions: To == "", drawn lighter
	trans    []*spec.Transition // in spec order
	// back: the edge leads up, to a state nearer the initial state, or
	// closes a cycle among states at the same distance; it must not
	// constrain the ranking.
	back bool
	// reset: the edge leads into the initial state from another state.
	reset bool
}

// layout is what the DOT emitter needs to know about the shape of a machine.
type layout struct {
	dist  map[string]int // BFS distance from the initial state; -1 unreachable
	edges []*edge
}

// newLayout computes BFS distances from the initial state and the edges of
// m: one per (source, target, internal) with its transitions, in order of
// first appearance. Many parallel arrows between the same two states (TCP
// has up to nine) are unreadable; one arrow with a line per transition
// says the same.
func newLayout(m *spec.Machine) *layout {
	l := &layout{dist: bfs(m)}
	type key struct {
		from, to string
		internal bool
	}
	index := map[key]*edge{}
	for _, t := range m.Transitions {
		for _, from := range t.From {
			k := key{from, t.Target(from), t.Internal()}
			if e := index[k]; e != nil {
				e.trans = append(e.trans, t)
				continue
			}
			e := &edge{from: k.from, to: k.to, internal: k.internal, trans: []*spec.Transition{t}}
			index[k] = e
			l.edges = append(l.edges, e)
		}
	}
	l.classify(m)
	return l
}

// classify marks reset edges (into the initial state) and back edges: those
// leading to a state nearer the initial one, and, among edges between states
// at the same distance, those that close a cycle (found by a depth-first
// search in spec order), so the remaining edges form a DAG.
func (l *layout) classify(m *spec.Machine) {
	init := ""
	if s := m.InitialState(); s != nil {
		init = s.Name
	}
	same := map[string][]*edge{} // same-distance edges by source
	for _, e := range l.edges {
		if e.internal || e.from == e.to {
			continue
		}
		df, dt := l.dist[e.from], l.dist[e.to]
		switch {
		case e.to == init:
			e.reset = true
			e.back = true
		case df < 0 || dt < 0:
			e.back = true
		case dt < df:
			e.back = true
		case dt == df:
			same[e.from] = append(same[e.from], e)
		}
	}
	const (
		unseen = iota
		onStack
		done
	)
	state := map[string]int{}
	var visit func(s string)
	visit = func(s string) {
		state[s] = onStack
		for _, e := range same[s] {
			switch state[e.to] {
			case onStack:
				e.back = true
			case unseen:
				visit(e.to)
			}
		}
		state[s] = done
	}
	for _, s := range m.States {
		if state[s.Name] == unseen {
			visit(s.Name)
		}
	}
}

// bfs returns each state's distance from the initial state along
// transitions, exploring transitions in spec order; states that cannot be
// reached (only possible in unvalidated machines) get -1.
func bfs(m *spec.Machine) map[string]int {
	dist := make(map[string]int, len(m.States))
	for _, s := range m.States {
		dist[s.Name] = -1
	}
	init := m.InitialState()
	if init == nil {
		return dist
	}
	next := map[string][]string{}
	for _, t := range m.Transitions {
		for _, f := range t.From {
			next[f] = append(next[f], t.Target(f))
		}
	}
	dist[init.Name] = 0
	queue := []string{init.Name}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range next[s] {
			if d, ok := dist[n]; ok && d < 0 {
				dist[n] = dist[s] + 1
				queue = append(queue, n)
			}
		}
	}
	return dist
}
