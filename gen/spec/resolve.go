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
		r.p.errorf(n, "unknown state %q in %s%s", v, what, orDeclare(suggest(v, r.states), "state"))
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
		r.p.errorf(n, "unknown event %q in %s%s", v, what, orDeclare(suggest(v, r.events), "event"))
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
			r.p.errorf(nodes[i], "unknown state or group %q in %s%s", v, what, orDeclare(suggest(v, cands), "state"))
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
	if t.eventNode == nil {
		return
	}
	e := r.event(t.eventNode, "timer event")
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

// checkGoNames reports names that would collide once turned into Go identifiers.
func (p *parser) checkGoNames(m *Machine) {
	type use struct {
		desc string
		pos  Pos
	}
	claim := func(taken map[string]use, prefix, what, name string, pos Pos) {
		id := GoName(name)
		if prev, ok := taken[id]; ok {
			p.errs.add(pos, "%s %q becomes Go name %s%s, as does %s; rename one", what, name, prefix, id, prev.desc)
			return
		}
		taken[id] = use{desc: fmt.Sprintf("%s %q at %s", what, name, pos), pos: pos}
	}
	states := map[string]use{}
	for _, s := range m.States {
		claim(states, "State", "state", s.Name, s.Pos)
	}
	events := map[string]use{}
	for _, e := range m.Events {
		claim(events, "Event", "event", e.Name, e.Pos)
	}
	// Actions, guards and durations all become methods of the generated Handler.
	methods := map[string]use{
		"StartTimer": {desc: "the built-in Handler method StartTimer"},
		"StopTimer":  {desc: "the built-in Handler method StopTimer"},
	}
	for _, a := range m.Actions {
		claim(methods, "", "action", a, firstActionPos(m, a))
	}
	for _, g := range m.Guards {
		claim(methods, "", "guard", g, firstGuardPos(m, g))
	}
	for _, d := range m.Durations {
		claim(methods, "", "duration", d, firstDurationPos(m, d))
	}
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
