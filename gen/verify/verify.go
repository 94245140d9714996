// Package verify model-checks a spec's machine talking to a copy of itself.
//
// Two instances of the machine, peers A and B, are joined by two bounded
// FIFO channels (one per direction) that may lose and duplicate messages
// (and, optionally, reorder them). The spec's messages section says which
// actions emit which message and which event its arrival raises at the
// receiver, possibly depending on the receiver's state; armed timers expire
// nondeterministically; user events are injected nondeterministically, once
// each, from the set a property (or the caller) names. Guards are evaluated
// abstractly: a guard with a flag model (set_by/cleared_by) is tracked, one
// with a counter model (counts) holds once its action ran Options.Retries
// times in the current state, a message may carry guard values, and any
// other guard is free (both values are explored).
//
// Verify explores the product breadth-first, so every trace it reports is a
// shortest one, and finds:
//
//   - deadlocks: no move is possible (nothing in flight, no timer armed, no
//     user event left) and a peer is in a state that is neither final nor
//     stable;
//   - rejected events: a message arrives, or a timer expires, in a state
//     that rejects the event it raises;
//   - livelocks: cycles of message deliveries alone from which no
//     configuration with both peers final or stable is reachable without a
//     timer;
//   - states no peer enters and transitions no peer takes, over everything
//     explored.
//
// It checks each property: "reachable" holds when some run from the start
// pair reaches the goal pair; "always-reaches" holds when from every
// configuration reachable from the start pair (until the goal) the goal
// stays reachable, which for a finite system means every run reaches the
// goal with probability 1 when every possible move has a positive
// probability: the channels are fair-lossy and timers fire eventually. As
// giving up would break that fairness, always-reaches is checked with
// counter guards held false (the host retries for ever); the bounded
// exploration, with give-ups, is what the other checks use.
//
// A property's start pair begins with empty channels, no user event used,
// and each peer in every local configuration (armed timers, flag guards) in
// which a lone instance can be in that state; the initial state starts
// fresh.
package verify

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// Options bounds and shapes the exploration.
type Options struct {
	// Capacity is the capacity of each channel (1 to 8); sending into a full
	// channel loses the message.
	Capacity int
	// Retries is the bound of counter guards (e.g. retries_exhausted holds
	// after Retries retransmissions in one state).
	Retries int
	// Loss and Dup let the channels lose and duplicate messages; Reorder
	// lets a receiver take any message in flight, not only the oldest.
	Loss, Dup, Reorder bool
	// Users, when set, adds a scenario from the initial states injecting
	// these user events. A spec without properties gets, by default, one
	// scenario injecting every user event once at each peer.
	Users []User
	// SpecTimers ignores the spec's host_timers: only the spec's own start
	// and stop actions arm and disarm timers.
	SpecTimers bool
	// MaxStates bounds each exploration; reaching it is an error.
	MaxStates int
}

// DefaultOptions returns the options fsmgen verify uses by default:
// capacity 2, 2 retries, lossy and duplicating FIFO channels, 2,000,000
// states per exploration.
func DefaultOptions() Options {
	return Options{Capacity: 2, Retries: 2, Loss: true, Dup: true, MaxStates: 2_000_000}
}

// User is a user event injected at a peer.
type User struct {
	Peer  int // 0: A, 1: B, -1: each peer
	Event string
}

// ParseUsers parses a comma-separated list of user events, each EVENT (at
// each peer), A:EVENT or B:EVENT, e.g. "A:OPEN_PASSIVE,B:OPEN_ACTIVE,CLOSE".
func ParseUsers(s string) ([]User, error) {
	var out []User
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		u := User{Peer: -1, Event: f}
		if peer, ev, ok := strings.Cut(f, ":"); ok {
			switch strings.ToUpper(peer) {
			case "A":
				u.Peer = 0
			case "B":
				u.Peer = 1
			default:
				return nil, fmt.Errorf("user event %q: peer must be A or B", f)
			}
			u.Event = ev
		}
		out = append(out, u)
	}
	return out, nil
}

// Severity ranks findings.
type Severity int

// The severities.
const (
	// Warning is a finding that does not fail verification.
	Warning Severity = iota
	// Error is a finding that fails verification.
	Error
)

// String returns "warning" or "error".
func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Finding is one problem verify found.
type Finding struct {
	Severity Severity
	Kind     string   // deadlock, rejected, livelock, unreachable-state, untaken-transition, incomplete
	Pos      spec.Pos // where in the spec, when known (zero otherwise)
	Scenario string   // the scenario that exhibits it, when it has a trace
	Msg      string
	Trace    *Trace // a shortest run into the problem
	Cycle    *Trace // livelock: the cycle, from the last step of Trace back to it
}

// PropertyResult is the verdict on one property.
type PropertyResult struct {
	Property *spec.Property
	Proved   bool
	States   int    // configurations explored for the verdict
	Detail   string // why it failed, or how it holds
	Trace    *Trace // violation: a shortest counterexample; reachable: a shortest witness
	Rest     *Trace // always-reaches violation: a run on to where the peers end up
	Cycle    *Trace // always-reaches violation: a cycle the peers end up in
}

// ScenarioStats describes one exploration.
type ScenarioStats struct {
	Name        string
	Mode        string // "bounded" (counter guards at the retry bound) or "patient" (counter guards false)
	Starts      int    // start configurations
	States      int
	Transitions int
	Truncated   bool
}

// Report is the result of Verify.
type Report struct {
	Machine     string
	Options     Options
	HostTimers  []string // host timers in effect
	Scenarios   []*ScenarioStats
	Properties  []*PropertyResult
	Findings    []*Finding
	States      int // configurations explored, over all explorations
	Transitions int // moves explored, over all explorations
}

// Failed reports whether a property is violated or a finding is an error.
func (r *Report) Failed() bool {
	for _, p := range r.Properties {
		if !p.Proved {
			return true
		}
	}
	for _, f := range r.Findings {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// Proved returns how many properties hold.
func (r *Report) Proved() int {
	n := 0
	for _, p := range r.Properties {
		if p.Proved {
			n++
		}
	}
	return n
}

// scenario is a start pair and the user events to inject.
type scenario struct {
	name   string
	from   [2]int
	tokens []token
	users  string // description
	props  []*spec.Property
}

// verifier holds the state of one Verify call.
type verifier struct {
	x      *model
	opts   Options
	cov    *coverage
	report *Report

	deadlocks map[[2]int]bool
	rejected  map[string]bool
	livelocks map[string]bool
}

// Verify explores m as described in the package comment and reports what it
// found. It fails only on unusable options or a spec too large to encode.
func Verify(m *spec.Machine, opts Options) (*Report, error) {
	if opts.Capacity < 1 || opts.Capacity > maxCap {
		return nil, fmt.Errorf("verify: channel capacity %d out of range 1..%d", opts.Capacity, maxCap)
	}
	if opts.Retries < 0 || opts.Retries > 200 {
		return nil, fmt.Errorf("verify: retries %d out of range 0..200", opts.Retries)
	}
	if opts.MaxStates <= 0 {
		opts.MaxStates = DefaultOptions().MaxStates
	}
	x, err := compile(m, opts)
	if err != nil {
		return nil, err
	}
	v := &verifier{x: x, opts: opts,
		cov:       &coverage{states: make([]bool, len(m.States)), rows: map[[2]int]bool{}},
		report:    &Report{Machine: m.Name, Options: opts},
		deadlocks: map[[2]int]bool{}, rejected: map[string]bool{}, livelocks: map[string]bool{},
	}
	if !opts.SpecTimers {
		for _, h := range m.HostTimers {
			v.report.HostTimers = append(v.report.HostTimers, h.Timer)
		}
	}
	scenarios, err := v.scenarios()
	if err != nil {
		return nil, err
	}
	for _, sc := range scenarios {
		if err := v.run(sc); err != nil {
			return nil, err
		}
	}
	v.coverageFindings()
	order := map[*spec.Property]int{}
	for i, p := range m.Properties {
		order[p] = i
	}
	sort.SliceStable(v.report.Properties, func(i, j int) bool {
		return order[v.report.Properties[i].Property] < order[v.report.Properties[j].Property]
	})
	return v.report, nil
}

// scenarios lists the explorations: one per property, plus the caller's
// user events (or, for a spec without properties, every user event).
func (v *verifier) scenarios() ([]*scenario, error) {
	m := v.x.m
	var out []*scenario
	byKey := map[string]*scenario{}
	for _, p := range m.Properties {
		sc := &scenario{name: p.Name, props: []*spec.Property{p}}
		for i := 0; i < 2; i++ {
			sc.from[i] = v.x.initial
			if p.From[i] != "" {
				sc.from[i] = v.x.stateIdx[p.From[i]]
			}
		}
		var users []User
		for _, e := range p.Users {
			users = append(users, User{Peer: -1, Event: e})
		}
		for _, e := range p.UsersA {
			users = append(users, User{Peer: 0, Event: e})
		}
		for _, e := range p.UsersB {
			users = append(users, User{Peer: 1, Event: e})
		}
		if err := v.setUsers(sc, users); err != nil {
			return nil, fmt.Errorf("%s: property %s: %w", p.Pos, p.Name, err)
		}
		// Properties with the same start and user events share one exploration.
		key := fmt.Sprint(sc.from, sc.tokens)
		if prev := byKey[key]; prev != nil {
			prev.name += ", " + p.Name
			prev.props = append(prev.props, p)
			continue
		}
		byKey[key] = sc
		out = append(out, sc)
	}
	users := v.opts.Users
	if users == nil && len(m.Properties) == 0 {
		for _, e := range m.Events {
			if e.Kind == spec.KindUser {
				users = append(users, User{Peer: -1, Event: e.Name})
			}
		}
	}
	if users != nil || len(m.Properties) == 0 {
		sc := &scenario{name: "users", from: [2]int{v.x.initial, v.x.initial}}
		if err := v.setUsers(sc, users); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

func (v *verifier) setUsers(sc *scenario, users []User) error {
	var descA, descB []string
	for _, u := range users {
		e, ok := v.x.eventIdx[u.Event]
		if !ok {
			return fmt.Errorf("unknown user event %q", u.Event)
		}
		for peer := 0; peer < 2; peer++ {
			if u.Peer != -1 && u.Peer != peer {
				continue
			}
			sc.tokens = append(sc.tokens, token{peer: peer, event: e})
			if peer == 0 {
				descA = append(descA, u.Event)
			} else {
				descB = append(descB, u.Event)
			}
		}
	}
	if len(sc.tokens) > maxTokens {
		return fmt.Errorf("too many user events (%d, at most %d)", len(sc.tokens), maxTokens)
	}
	var parts []string
	if len(descA) > 0 {
		parts = append(parts, "A: "+strings.Join(descA, ", "))
	}
	if len(descB) > 0 {
		parts = append(parts, "B: "+strings.Join(descB, ", "))
	}
	sc.users = strings.Join(parts, "; ")
	if sc.users == "" {
		sc.users = "none"
	}
	return nil
}

// startLocals returns the local configurations a lone instance can be in on
// entering state (counters zeroed), or the fresh one for the initial state.
func (v *verifier) startLocals(state int) []local {
	x := v.x
	fresh := local{state: uint8(x.initial), flags: x.flagInit}
	if state == x.initial {
		return []local{fresh}
	}
	e := &explorer{x: x, opts: v.opts, cov: &coverage{states: make([]bool, len(x.states)), rows: map[[2]int]bool{}}}
	seen := map[local]bool{fresh: true}
	queue := []local{fresh}
	found := map[local]bool{}
	var out []local
	for len(queue) > 0 {
		l := queue[0]
		queue = queue[1:]
		if int(l.state) == state {
			s := l
			s.count = [maxCounters]uint8{}
			s.flags &= x.liveFlags[state]
			if !found[s] {
				found[s] = true
				out = append(out, s)
			}
		}
		try := func(base local, ev int) {
			x.outcomes(&base, ev, 0, 0, v.opts.Retries, false, func(vo valOutcome) {
				if vo.out.result != spec.Taken {
					return
				}
				var c config
				c.p[0] = base
				e.apply(&c, 0, vo.out, ev)
				n := c.p[0]
				if !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			})
		}
		for ev, evt := range x.events {
			if evt.Kind != spec.KindTimer {
				try(l, ev)
			}
		}
		for ti := range x.timers {
			if l.armed&(1<<ti) != 0 {
				b := l
				b.armed &^= 1 << ti
				try(b, x.timerEv[ti])
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessLocal(out[i], out[j]) })
	return out
}

func lessLocal(a, b local) bool {
	if a.armed != b.armed {
		return a.armed < b.armed
	}
	return a.flags < b.flags
}

func (v *verifier) starts(sc *scenario) []config {
	a, b := v.startLocals(sc.from[0]), v.startLocals(sc.from[1])
	var out []config
	all := uint32(1)<<len(sc.tokens) - 1
	for _, la := range a {
		for _, lb := range b {
			out = append(out, config{p: [2]local{la, lb}, tokens: all})
		}
	}
	return out
}

// run explores one scenario: bounded for safety, reachability and coverage,
// and patient for always-reaches properties.
func (v *verifier) run(sc *scenario) error {
	starts := v.starts(sc)
	if len(starts) == 0 {
		return fmt.Errorf("scenario %s: no peer can be in the start states", sc.name)
	}
	e := &explorer{x: v.x, opts: v.opts, tokens: sc.tokens, cov: v.cov}
	e.rej = func(g *graph, parent int32, mv move, c *config, msg int) { v.rejectedEvent(sc, e, g, parent, mv, msg) }
	g := e.explore(starts)
	v.stats(sc.name, "bounded", len(starts), g)
	if g.truncated {
		v.incomplete(sc.name, "bounded")
	}
	v.deadlocksIn(sc, e, g)
	if !g.truncated {
		v.livelocksIn(sc, e, g)
	}
	for _, p := range sc.props {
		if p.Kind == "reachable" {
			v.checkReachable(sc, p, e, g)
		}
	}
	for _, p := range sc.props {
		if p.Kind != "always-reaches" {
			continue
		}
		reached := v.goal(sc, p)
		pe := &explorer{x: v.x, opts: v.opts, tokens: sc.tokens, cov: v.cov, patient: true, absorb: reached}
		pg := pe.explore(starts)
		v.stats(p.Name, "patient", len(starts), pg)
		if pg.truncated {
			v.incomplete(p.Name, "patient")
		}
		v.checkAlways(sc, p, pe, pg)
	}
	return nil
}

// goal returns the test of p's goal: both peers in the goal states, and,
// when the goal is the start pair, after at least one move.
func (v *verifier) goal(sc *scenario, p *spec.Property) func(*config) bool {
	goal := [2]int{v.x.stateIdx[p.Goal[0]], v.x.stateIdx[p.Goal[1]]}
	strict := goal == sc.from
	return func(c *config) bool {
		return int(c.p[0].state) == goal[0] && int(c.p[1].state) == goal[1] && (!strict || c.tokens&movedBit != 0)
	}
}

func (v *verifier) stats(name, mode string, starts int, g *graph) {
	st := &ScenarioStats{Name: name, Mode: mode, Starts: starts, States: len(g.keys), Transitions: len(g.edges), Truncated: g.truncated}
	v.report.Scenarios = append(v.report.Scenarios, st)
	v.report.States += st.States
	v.report.Transitions += st.Transitions
}

func (v *verifier) incomplete(name, mode string) {
	v.report.Findings = append(v.report.Findings, &Finding{Severity: Error, Kind: "incomplete", Scenario: name,
		Msg: fmt.Sprintf("scenario %s (%s): stopped at %d states; results are incomplete (raise -max-states or lower -cap)", name, mode, v.opts.MaxStates)})
}

// rests reports whether both peers are in final or stable states.
func (v *verifier) rests(c *config) bool {
	for i := range c.p {
		s := c.p[i].state
		if !v.x.final[s] && !v.x.stable[s] {
			return false
		}
	}
	return true
}

func (v *verifier) pairName(c *config) string {
	return fmt.Sprintf("[%s, %s]", v.x.states[c.p[0].state].Name, v.x.states[c.p[1].state].Name)
}

func (v *verifier) deadlocksIn(sc *scenario, e *explorer, g *graph) {
	for id := range g.keys {
		if !g.expanded[id] || len(g.succ(int32(id))) > 0 {
			continue
		}
		c := v.x.decode(g.keys[id])
		if v.rests(&c) {
			continue
		}
		// The peers run the same machine: [X, Y] and [Y, X] are one finding.
		key := [2]int{int(c.p[0].state), int(c.p[1].state)}
		if key[0] > key[1] {
			key[0], key[1] = key[1], key[0]
		}
		if v.deadlocks[key] {
			continue
		}
		v.deadlocks[key] = true
		var waiting []string
		var pos spec.Pos
		for i := range c.p {
			s := v.x.states[c.p[i].state]
			if !s.Final && !v.x.stable[c.p[i].state] {
				waiting = append(waiting, fmt.Sprintf("%s in %s", peerName(i), s.Name))
				if pos.File == "" {
					pos = s.Pos
				}
			}
		}
		v.report.Findings = append(v.report.Findings, &Finding{Severity: Error, Kind: "deadlock", Scenario: sc.name,
			Pos: pos,
			Msg: fmt.Sprintf("deadlock in %s: nothing in flight, no timer armed, no user event left, and %s (neither final nor stable)",
				v.pairName(&c), strings.Join(waiting, " and ")),
			Trace: v.trace(e, g, int32(id))})
	}
}

func (v *verifier) rejectedEvent(sc *scenario, e *explorer, g *graph, parent int32, mv move, msg int) {
	x := v.x
	c := x.decode(g.keys[parent])
	st := x.states[c.p[mv.peer].state]
	var what, key string
	why := "(no transition and no ignore rule)"
	ev := x.timerEv[mv.idx]
	if mv.kind == mRecv {
		ev = x.routes[msg][c.p[mv.peer].state][mv.alt]
	}
	if rule := x.m.Rejected(st.Name, x.events[ev].Name); rule != nil {
		why = fmt.Sprintf("(reject rule at %s)", rule.Pos)
	}
	if mv.kind == mRecv {
		ev := x.routes[msg][c.p[mv.peer].state][mv.alt]
		what = fmt.Sprintf("message %s arrives in %s as %s, which %s rejects", x.msgs[msg].Name, st.Name, x.events[ev].Name, st.Name)
		key = fmt.Sprintf("m%d/%d/%d", msg, c.p[mv.peer].state, ev)
	} else {
		t := x.timers[mv.idx]
		what = fmt.Sprintf("timer %s expires in %s raising %s, which %s rejects", t.Name, st.Name, t.Event, st.Name)
		key = fmt.Sprintf("t%d/%d", mv.idx, c.p[mv.peer].state)
	}
	if v.rejected[key] {
		return
	}
	v.rejected[key] = true
	tr := v.trace(e, g, parent)
	tr.Steps = append(tr.Steps, v.stepAfter(e, &c, mv))
	v.report.Findings = append(v.report.Findings, &Finding{Severity: Error, Kind: "rejected", Scenario: sc.name, Pos: st.Pos,
		Msg: what + " " + why, Trace: tr})
}

func peerName(i int) string { return string(rune('A' + i)) }

// livelocksIn finds cycles of deliveries alone from which no configuration
// with both peers final or stable is reachable by deliveries and user events.
func (v *verifier) livelocksIn(sc *scenario, e *explorer, g *graph) {
	n := len(g.keys)
	comp := scc(g, func(k moveKind) bool { return k == mRecv })
	// Nodes that can rest using deliveries and user events only.
	canRest := make([]bool, n)
	rev := reverse(g, func(k moveKind) bool { return k == mRecv || k == mUser })
	var queue []int32
	for id := 0; id < n; id++ {
		c := v.x.decode(g.keys[id])
		if v.rests(&c) {
			canRest[id] = true
			queue = append(queue, int32(id))
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, p := range rev.of(id) {
			if !canRest[p] {
				canRest[p] = true
				queue = append(queue, p)
			}
		}
	}
	size := map[int32]int{}
	for _, c := range comp {
		size[c]++
	}
	reported := map[int32]bool{}
	for id := 0; id < n; id++ {
		c := comp[id]
		if size[c] < 2 || canRest[id] || reported[c] {
			continue
		}
		reported[c] = true
		// Identify the cycle by the state pairs it visits.
		var pairs []string
		seen := map[string]bool{}
		for j := 0; j < n; j++ {
			if comp[j] == c {
				cj := v.x.decode(g.keys[j])
				if p := v.pairName(&cj); !seen[p] {
					seen[p] = true
					pairs = append(pairs, p)
				}
			}
		}
		sort.Strings(pairs)
		key := strings.Join(pairs, " ")
		if v.livelocks[key] {
			continue
		}
		v.livelocks[key] = true
		tr := v.trace(e, g, int32(id))
		cycle := v.cycleTrace(e, g, int32(id), func(j int32) bool { return comp[j] == c }, len(tr.Steps))
		v.report.Findings = append(v.report.Findings, &Finding{Severity: Error, Kind: "livelock", Scenario: sc.name,
			Msg:   fmt.Sprintf("livelock: the peers can exchange messages for ever through %s without a timer, and no configuration with both peers final or stable is reachable from there without one", strings.Join(pairs, ", ")),
			Trace: tr, Cycle: cycle})
	}
}

func (v *verifier) checkReachable(sc *scenario, p *spec.Property, e *explorer, g *graph) {
	reached := v.goal(sc, p)
	r := &PropertyResult{Property: p, States: len(g.keys)}
	for id := range g.keys {
		c := v.x.decode(g.keys[id])
		if reached(&c) {
			r.Proved = true
			r.Trace = v.trace(e, g, int32(id))
			r.Detail = fmt.Sprintf("reached in %d steps", len(r.Trace.Steps)-1)
			break
		}
	}
	if !r.Proved {
		r.Detail = fmt.Sprintf("[%s, %s] is never reached (%d configurations explored)", p.Goal[0], p.Goal[1], len(g.keys))
		if g.truncated {
			r.Detail += "; the exploration was cut short"
		}
	}
	v.report.Properties = append(v.report.Properties, r)
}

// checkAlways finds a shortest run into a configuration from which the goal
// is unreachable.
func (v *verifier) checkAlways(sc *scenario, p *spec.Property, e *explorer, g *graph) {
	r := &PropertyResult{Property: p, States: len(g.keys)}
	v.report.Properties = append(v.report.Properties, r)
	if g.truncated {
		r.Detail = fmt.Sprintf("unknown: the exploration stopped at %d configurations", len(g.keys))
		return
	}
	n := len(g.keys)
	good := make([]bool, n)
	rev := reverse(g, func(moveKind) bool { return true })
	var queue []int32
	for id := 0; id < n; id++ {
		if !g.expanded[id] { // absorbed: a goal configuration
			good[id] = true
			queue = append(queue, int32(id))
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, q := range rev.of(id) {
			if !good[q] {
				good[q] = true
				queue = append(queue, q)
			}
		}
	}
	trap := int32(-1)
	for id := 0; id < n; id++ {
		if !good[id] {
			trap = int32(id)
			break
		}
	}
	if trap < 0 {
		r.Proved = true
		r.Detail = fmt.Sprintf("every configuration reachable from the start keeps [%s, %s] reachable (%d configurations)", p.Goal[0], p.Goal[1], n)
		return
	}
	r.Trace = v.trace(e, g, trap)
	c := v.x.decode(g.keys[trap])
	r.Detail = fmt.Sprintf("after this run, in %s, no continuation reaches [%s, %s]", v.pairName(&c), p.Goal[0], p.Goal[1])
	v.explainTrap(r, e, g, trap)
}
