package spec

import (
	"fmt"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// resolver checks references to declared names and expands groups.
type resolver struct {
	p          *parser
	m          *Machine
	states     []string
	events     []string
	timers     []string
	groups     map[string][]string
	actionRefs []actionRef // every action name used, for derive and message checks
	guardSeen  map[string]bool
}

type actionRef struct {
	name string
	node *yaml.Node
}

func newResolver(p *parser, m *Machine) *resolver {
	r := &resolver{p: p, m: m, groups: map[string][]string{}, guardSeen: map[string]bool{}}
	for _, s := range m.States {
		r.states = append(r.states, s.Name)
	}
	for _, e := range m.Events {
		r.events = append(r.events, e.Name)
	}
	for _, t := range m.Timers {
		r.timers = append(r.timers, t.Name)
	}
	// Groups may name states or earlier groups.
	for _, g := range m.Groups {
		var members []string
		for i, s := range g.States {
			switch {
			case m.StateByName(s) != nil:
				members = appendNew(members, s)
			case r.groups[s] != nil:
				for _, x := range r.groups[s] {
					members = appendNew(members, x)
				}
			case s == g.Name:
				p.errorf(g.statesNodes[i], "group %q names itself; list its states and earlier groups only", g.Name)
			case r.isGroup(s):
				p.errorf(g.statesNodes[i], "group %q names group %q, which is declared after it; move %q above %q (a group may name only states and earlier groups)", g.Name, s, s, g.Name)
			default:
				cands := append(append([]string{}, r.states...), groupNames(m)...)
				p.errorf(g.statesNodes[i], "group %q names unknown state or group %q%s", g.Name, s, orDeclare(suggest(s, cands), "state"))
			}
		}
		r.groups[g.Name] = members
	}
	return r
}

func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func orDeclare(suggestion, kind string) string {
	if suggestion != "" {
		return suggestion
	}
	return "; declare it under \"" + kind + "s:\" or fix the spelling"
}

func (r *resolver) state(n *yaml.Node, what string) string {
	v := r.p.scalar(n, what)
	if v == "" {
		return ""
	}
	if r.m.StateByName(v) == nil {
		r.p.errorf(n, "unknown state %q in %q%s", v, what, orDeclare(suggest(v, r.states), "state"))
		return ""
	}
	return v
}

func (r *resolver) event(n *yaml.Node, what string) string {
	v := r.p.scalar(n, what)
	if v == "" {
		return ""
	}
	if r.m.EventByName(v) == nil {
		r.p.errorf(n, "unknown event %q in %q%s", v, what, orDeclare(suggest(v, r.events), "event"))
		return ""
	}
	return v
}

// stateSet resolves "*", a state, a group, or a list of states and groups.
func (r *resolver) stateSet(n *yaml.Node, what string) ([]string, string) {
	names, nodes := r.p.names(n, what)
	var out []string
	add := func(s string) {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	for i, v := range names {
		switch {
		case v == "*":
			for _, s := range r.states {
				add(s)
			}
		case r.m.StateByName(v) != nil:
			add(v)
		case r.groups[v] != nil || r.isGroup(v):
			for _, s := range r.groups[v] {
				add(s)
			}
		default:
			cands := append(append([]string{}, r.states...), groupNames(r.m)...)
			r.p.errorf(nodes[i], "unknown state or group %q in %q%s", v, what, orDeclare(suggest(v, cands), "state"))
		}
	}
	return out, strings.Join(names, ", ")
}

func (r *resolver) isGroup(name string) bool {
	for _, g := range r.m.Groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

func groupNames(m *Machine) []string {
	var out []string
	for _, g := range m.Groups {
		out = append(out, g.Name)
	}
	return out
}

// actions checks timer references and records call actions.
func (r *resolver) actions(list []Action) []Action {
	out := list[:0]
	for _, a := range list {
		if a.Kind != ActionCall && r.m.TimerByName(a.Name) == nil {
			r.p.errs.add(a.Pos, "unknown timer %q in %q%s", a.Name, a.String(), orDeclare(suggest(a.Name, r.timers), "timer"))
			continue
		}
		if a.Kind == ActionCall {
			r.actionRefs = append(r.actionRefs, actionRef{name: a.Name})
		}
		out = append(out, a)
	}
	return out
}

func (r *resolver) timerEvent(t *Timer) {
	if t.eventNode == nil || t.eventNode.Kind != yaml.ScalarNode {
		return // missing, or reported by the parser
	}
	e := r.event(t.eventNode, "event")
	if e == "" {
		t.Event = ""
		return
	}
	if ev := r.m.EventByName(e); ev.Kind != KindTimer {
		r.p.errorf(t.eventNode, "timer %q raises event %q, which is of kind %s; declare that event with \"kind: timer\"", t.Name, e, ev.Kind)
	}
}

// derive fills Machine.Guards, Actions and Durations in order of first use,
// and checks that messages name actions the spec uses.
func (r *resolver) derive() {
	m := r.m
	seenA := map[string]bool{}
	for _, ref := range r.actionRefs {
		if ref.node != nil {
			continue // message references are checked below
		}
		if !seenA[ref.name] {
			seenA[ref.name] = true
			m.Actions = append(m.Actions, ref.name)
		}
	}
	for _, ref := range r.actionRefs {
		if ref.node != nil && !seenA[ref.name] {
			r.p.errorf(ref.node, "message action %q is not used by any transition, entry or exit%s", ref.name, orDeclare(suggest(ref.name, m.Actions), "action"))
		}
	}
	seenG := map[string]bool{}
	for _, t := range m.Transitions {
		for _, g := range t.Guard {
			if !seenG[g.Name] {
				seenG[g.Name] = true
				m.Guards = append(m.Guards, g.Name)
			}
		}
	}
	seenD := map[string]bool{}
	for _, t := range m.Timers {
		if t.Duration != "" && !seenD[t.Duration] {
			seenD[t.Duration] = true
			m.Durations = append(m.Durations, t.Duration)
		}
	}
}

// checkGoNames reports names that would collide once turned into Go
// identifiers, with each other or with the names the Go emitter (gen/gogen)
// declares itself; such a spec would generate a package that does not compile.
func (p *parser) checkGoNames(m *Machine) {
	type use struct {
		what, name string // spec element; name "" for the emitter's own
		desc       string
	}
	// claim records that the spec element what/name at pos becomes Go
	// identifier id in the namespace taken. Exact duplicates are reported by
	// checkNames, not again here.
	claim := func(taken map[string]use, id, what, name string, pos Pos) {
		prev, ok := taken[id]
		switch {
		case !ok:
			taken[id] = use{what: what, name: name, desc: fmt.Sprintf("%s %q at %s", what, name, pos)}
		case prev.what == what && prev.name == name:
		case prev.name == "":
			p.errs.add(pos, "%s %q becomes Go name %s, which the generated code already declares as %s; rename the %s", what, name, id, prev.desc, what)
		default:
			p.errs.add(pos, "%s %q becomes Go name %s, as does %s; rename one", what, name, id, prev.desc)
		}
	}
	// Constants: State*, Event* and Timer* from the declarations, next to
	// the emitter's own package-level names.
	pkg := map[string]use{
		"EventKind":   {desc: "the type EventKind"},
		"GuardSet":    {desc: "the type GuardSet"},
		"ActionError": {desc: "the type ActionError"},
	}
	for _, s := range m.States {
		claim(pkg, "State"+GoName(s.Name), "state", s.Name, s.Pos)
	}
	for _, e := range m.Events {
		claim(pkg, "Event"+GoName(e.Name), "event", e.Name, e.Pos)
	}
	for _, t := range m.Timers {
		claim(pkg, "Timer"+GoName(t.Name), "timer", t.Name, t.Pos)
	}
	// Action* and Guard* constants: two actions (or guards) that collide here
	// also collide as Handler methods, reported below; check only the
	// emitter's names, and timer operations (ActionStartT, ActionStopT)
	// against call actions named like "start_t".
	for _, a := range m.Actions {
		if id := "Action" + GoName(a); pkg[id].desc != "" {
			claim(pkg, id, "action", a, firstActionPos(m, a))
		}
	}
	for _, g := range m.Guards {
		if id := "Guard" + GoName(g); pkg[id].desc != "" {
			claim(pkg, id, "guard", g, firstGuardPos(m, g))
		}
	}
	calls := map[string]use{}
	for _, a := range m.Actions {
		claim(calls, "Action"+GoName(a), "action", a, firstActionPos(m, a))
	}
	for _, a := range allActions(m) {
		id := "ActionStart" + GoName(a.Name)
		if a.Kind == ActionStopTimer {
			id = "ActionStop" + GoName(a.Name)
		}
		if c, ok := calls[id]; ok && a.Kind != ActionCall && c.what == "action" {
			claim(calls, id, "timer action", a.String(), a.Pos)
		}
	}
	// Groups become methods State.InGROUP.
	groups := map[string]use{}
	for _, g := range m.Groups {
		claim(groups, "State.In"+GoName(g.Name), "group", g.Name, g.Pos)
	}
	// Actions, guards and durations all become methods of the generated Handler.
	methods := map[string]use{
		"StartTimer": {desc: "the Handler method StartTimer"},
		"StopTimer":  {desc: "the Handler method StopTimer"},
	}
	for _, a := range m.Actions {
		claim(methods, GoName(a), "action", a, firstActionPos(m, a))
	}
	for _, g := range m.Guards {
		claim(methods, GoName(g), "guard", g, firstGuardPos(m, g))
	}
	for _, d := range m.Durations {
		claim(methods, GoName(d), "duration", d, firstDurationPos(m, d))
	}
}

// allActions returns every action the spec runs, in document order: entry and
// exit actions of the states, then transition actions.
func allActions(m *Machine) []Action {
	var out []Action
	for _, s := range m.States {
		out = append(out, s.Entry...)
		out = append(out, s.Exit...)
	}
	for _, t := range m.Transitions {
		out = append(out, t.Actions...)
	}
	return out
}

func firstDurationPos(m *Machine, name string) Pos {
	for _, t := range m.Timers {
		if t.Duration == name {
			return t.Pos
		}
	}
	return m.Pos
}

func firstActionPos(m *Machine, name string) Pos {
	for _, s := range m.States {
		for _, a := range append(append([]Action{}, s.Entry...), s.Exit...) {
			if a.Kind == ActionCall && a.Name == name {
				return a.Pos
			}
		}
	}
	for _, t := range m.Transitions {
		for _, a := range t.Actions {
			if a.Kind == ActionCall && a.Name == name {
				return a.Pos
			}
		}
	}
	return m.Pos
}

func firstGuardPos(m *Machine, name string) Pos {
	for _, t := range m.Transitions {
		for _, g := range t.Guard {
			if g.Name == name {
				return g.Pos
			}
		}
	}
	return m.Pos
}

// GoName turns a spec name into an exported Go identifier: "SYN-RECEIVED" →
// "SynReceived", "snd_syn_ack" → "SndSynAck", "twoMSL" → "TwoMSL". Parts that
// are not all upper case keep their inner capitals.
func GoName(name string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' || r == ' ' }) {
		rs := []rune(part)
		allUpper := true
		for _, c := range rs {
			if unicode.IsLower(c) {
				allUpper = false
			}
		}
		b.WriteRune(unicode.ToUpper(rs[0]))
		for _, c := range rs[1:] {
			if allUpper {
				c = unicode.ToLower(c)
			}
			b.WriteRune(c)
		}
	}
	return b.String()
}

// goIdent is GoName for package-like names.
func goIdent(name string) string { return GoName(name) }
