package spec

import (
	"gopkg.in/yaml.v3"
)

// This file holds the spec keys that only the verifier (gen/verify) reads:
// the abstract models of guards, timers the host arms by itself, stable
// states, and the per-message and per-property extensions. parse.go's header
// comment documents their YAML.

// GuardModel tells verify how to evaluate a data-dependent guard abstractly.
// A guard without a model (or with an empty one) is free: verify explores
// both values, unless the arriving message fixes it (Message.Guards).
type GuardModel struct {
	Name string
	Doc  string
	// Flag model: the guard is a boolean the actions set and clear, in the
	// order they run; Initial is its value on a fresh machine.
	Initial   bool
	SetBy     []string // actions that make it true
	ClearedBy []string // actions that make it false
	// Counter model: the guard holds once Counts has run the verifier's retry
	// bound of times since the machine last entered a state (or since an
	// action of ResetBy ran).
	Counts  string
	ResetBy []string
	Pos     Pos
}

// Flag reports whether the model is a flag (set_by/cleared_by).
func (g *GuardModel) Flag() bool { return len(g.SetBy) > 0 || len(g.ClearedBy) > 0 }

// Counter reports whether the model is a counter (counts).
func (g *GuardModel) Counter() bool { return g.Counts != "" }

// HostTimer declares that the host (not the spec's actions) keeps a timer
// armed while the machine is in ArmedIn: on entering one of those states the
// host arms the timer if it is not armed, on entering any other state it
// stops it (e.g. RFC 6298 §5: the retransmission timer runs while data is
// outstanding). The spec's own start/stop actions apply first.
type HostTimer struct {
	Timer   string
	ArmedIn []string // expanded states
	Doc     string
	Pos     Pos
}

// ActionFilter restricts one sending action of a message to some sender
// states (Message.SentIn) or triggering events (Message.SentOn).
type ActionFilter struct {
	Action string
	Names  []string // expanded states, or events
}

// MessageRoute overrides the event a message raises at a receiver in one of
// States: Events lists the possible classifications (more than one: verify
// explores each), where "" (spelled drop) means the receiver drops the
// message without raising any event.
type MessageRoute struct {
	Key    string   // the state or group as written
	States []string // expanded
	Events []string // event names; "" for drop
	Pos    Pos
}

// GuardValue is a guard value an arriving message carries.
type GuardValue struct {
	Name  string
	Value bool
}

// Sends reports whether running action in sender state state on event event
// emits the message, per Sent, SentIn and SentOn.
func (msg *Message) Sends(action, state, event string) bool {
	if !contains(msg.Sent, action) {
		return false
	}
	for _, f := range msg.SentIn {
		if f.Action == action && !contains(f.Names, state) {
			return false
		}
	}
	for _, f := range msg.SentOn {
		if f.Action == action && !contains(f.Names, event) {
			return false
		}
	}
	return true
}

// Classify returns the events the message's arrival may raise at a receiver
// in state: the first route (in spec order) naming the state, else Event.
// An entry "" means the receiver may drop the message instead.
func (msg *Message) Classify(state string) []string {
	for _, r := range msg.In {
		if contains(r.States, state) {
			return r.Events
		}
	}
	return []string{msg.Event}
}

// GuardModelByName returns the named guard model, or nil.
func (m *Machine) GuardModelByName(name string) *GuardModel {
	for _, g := range m.GuardModels {
		if g.Name == name {
			return g
		}
	}
	return nil
}

var (
	guardModelKeys = []string{"name", "doc", "initial", "set_by", "cleared_by", "counts", "reset_by"}
	hostTimerKeys  = []string{"timer", "doc", "armed_in"}
)

// verifyExt collects what can be checked only after derive.
type verifyExt struct {
	guardRefs  []nameRef // guard names used by models and messages
	actionRefs []nameRef // actions named by guard models
}

type nameRef struct {
	name, what string
	node       *yaml.Node
}

// messageExt reads the verify keys of a message mapping.
func (p *parser) messageExt(f map[string]*yaml.Node, msg *Message, r *resolver, x *verifyExt) {
	if n := f["doc"]; n != nil {
		msg.Doc = p.scalar(n, "doc")
	}
	filters := func(key string, resolve func(*yaml.Node) []string) []ActionFilter {
		n := f[key]
		if n == nil {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			p.errorf(n, "%s must be a mapping ACTION: ..., not %s", key, kindName(n))
			return nil
		}
		var out []ActionFilter
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if !contains(msg.Sent, k.Value) {
				p.errorf(k, "%s names action %q, which is not in the message's \"sent\" list; add it there or fix the spelling", key, k.Value)
				continue
			}
			out = append(out, ActionFilter{Action: k.Value, Names: resolve(v)})
		}
		return out
	}
	msg.SentIn = filters("sent_in", func(v *yaml.Node) []string {
		states, _ := r.stateSet(v, "sent_in")
		return states
	})
	msg.SentOn = filters("sent_on", func(v *yaml.Node) []string {
		names, nodes := p.names(v, "sent_on")
		var out []string
		for i := range names {
			if e := r.event(nodes[i], "sent_on"); e != "" {
				out = append(out, e)
			}
		}
		return out
	})
	if n := f["in"]; n != nil {
		if n.Kind != yaml.MappingNode {
			p.errorf(n, "in must be a mapping STATE: EVENT (or a list of events, or drop), not %s", kindName(n))
		} else {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				states, _ := r.stateSet(k, "in")
				route := MessageRoute{Key: k.Value, States: states, Pos: p.pos(k)}
				names, nodes := p.names(v, "in")
				for j, name := range names {
					if name == "drop" {
						route.Events = append(route.Events, "")
					} else if e := r.event(nodes[j], "in"); e != "" {
						route.Events = append(route.Events, e)
					}
				}
				if len(route.Events) > 0 {
					msg.In = append(msg.In, route)
				}
			}
		}
	}
	if n := f["guards"]; n != nil {
		if n.Kind != yaml.MappingNode {
			p.errorf(n, "guards must be a mapping GUARD: true|false, not %s", kindName(n))
		} else {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				x.guardRefs = append(x.guardRefs, nameRef{k.Value, "message guards", k})
				msg.Guards = append(msg.Guards, GuardValue{Name: k.Value, Value: p.boolean(v, "guard value")})
			}
		}
	}
}

// propertyExt reads the verify keys of a property mapping.
func (p *parser) propertyExt(f map[string]*yaml.Node, pr *Property, r *resolver) {
	read := func(key string) []string {
		n := f[key]
		if n == nil {
			return nil
		}
		var out []string
		names, nodes := p.names(n, key)
		for i := range names {
			if e := r.event(nodes[i], key); e != "" {
				out = append(out, e)
			}
		}
		return out
	}
	pr.UsersA = read("users_a")
	pr.UsersB = read("users_b")
}

// guardModel reads one entry of "guards".
func (p *parser) guardModel(n *yaml.Node, x *verifyExt) *GuardModel {
	g := &GuardModel{Pos: p.pos(n)}
	f := p.mapping(n, "guard model", guardModelKeys)
	if f == nil {
		return nil
	}
	if f["name"] == nil {
		p.errorf(n, "guard model has no \"name\"; add \"name: GUARD\"")
	} else {
		g.Name = p.name(f["name"], "guard name")
		g.Pos = p.pos(f["name"])
		x.guardRefs = append(x.guardRefs, nameRef{g.Name, "guard model", f["name"]})
	}
	if f["doc"] != nil {
		g.Doc = p.scalar(f["doc"], "doc")
	}
	g.Initial = p.boolean(f["initial"], "initial")
	actions := func(key string) []string {
		if f[key] == nil {
			return nil
		}
		names, nodes := p.names(f[key], key)
		for i, a := range names {
			x.actionRefs = append(x.actionRefs, nameRef{a, key, nodes[i]})
		}
		return names
	}
	g.SetBy = actions("set_by")
	g.ClearedBy = actions("cleared_by")
	if c := actions("counts"); len(c) == 1 {
		g.Counts = c[0]
	} else if len(c) > 1 {
		p.errorf(f["counts"], "counts names one action, not %d", len(c))
	}
	g.ResetBy = actions("reset_by")
	if g.Counter() && g.Flag() {
		p.errorf(n, "guard model %q mixes a flag (set_by, cleared_by) and a counter (counts); use one", g.Name)
	}
	if len(g.ResetBy) > 0 && !g.Counter() {
		p.errorf(f["reset_by"], "reset_by needs \"counts: ACTION\"")
	}
	return g
}

// hostTimer reads one entry of "host_timers".
func (p *parser) hostTimer(n *yaml.Node, r *resolver) *HostTimer {
	h := &HostTimer{Pos: p.pos(n)}
	f := p.mapping(n, "host timer", hostTimerKeys)
	if f == nil {
		return nil
	}
	if f["timer"] == nil {
		p.errorf(n, "host timer has no \"timer\"; name the timer the host arms")
	} else if name := p.scalar(f["timer"], "timer"); name != "" {
		if r.m.TimerByName(name) == nil {
			p.errorf(f["timer"], "unknown timer %q in \"timer\"%s", name, orDeclare(suggest(name, r.timers), "timer"))
		}
		h.Timer = name
	}
	if f["doc"] != nil {
		h.Doc = p.scalar(f["doc"], "doc")
	}
	if f["armed_in"] == nil {
		p.errorf(n, "host timer %q has no \"armed_in\"; list the states in which the host keeps it armed", h.Timer)
	} else {
		h.ArmedIn, _ = r.stateSet(f["armed_in"], "armed_in")
	}
	return h
}

// checkVerifyExt checks the names that need the derived guard and action lists.
func (p *parser) checkVerifyExt(m *Machine, x *verifyExt) {
	seen := map[string]bool{}
	for _, g := range m.GuardModels {
		if g.Name != "" && seen[g.Name] {
			p.errs.add(g.Pos, "duplicate guard model %q; keep one", g.Name)
		}
		seen[g.Name] = true
	}
	for _, ref := range x.guardRefs {
		if ref.name != "" && !contains(m.Guards, ref.name) {
			p.errorf(ref.node, "%s names guard %q, which no transition uses%s", ref.what, ref.name, suggest(ref.name, m.Guards))
		}
	}
	for _, ref := range x.actionRefs {
		if ref.name != "" && !contains(m.Actions, ref.name) {
			p.errorf(ref.node, "%s names action %q, which no transition, entry or exit runs%s", ref.what, ref.name, orDeclare(suggest(ref.name, m.Actions), "action"))
		}
	}
}
