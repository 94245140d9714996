// Package spec parses, validates and interprets fsmgen state-machine specs.
//
// A spec is one YAML file describing one machine: its states, events, timers,
// guarded transitions with ordered actions, explicit ignores, and named groups
// of states. Parse turns the YAML into a *Machine whose every element keeps the
// file:line:col it came from, so that Validate (and every emitter) can report
// errors in the form "file:line:col: what is wrong; how to fix it".
package spec

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a spec file.
type Pos struct {
	File      string
	Line, Col int
}

// String formats the position as file:line:col, the form editors jump to.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// EventKind says where an event comes from.
type EventKind int

// The kinds of event.
const (
	// KindInput is an event raised by the environment (e.g. an arriving segment).
	KindInput EventKind = iota
	// KindUser is a call made by the machine's user (e.g. OPEN, CLOSE).
	KindUser
	// KindTimer is the expiry of a timer declared in the spec.
	KindTimer
)

var kindNames = [...]string{"input", "user", "timer"}

// String returns the spec spelling of the kind.
func (k EventKind) String() string { return kindNames[k] }

// Policy says what happens to a (state, event) pair that no transition or
// ignore rule mentions.
type Policy int

// The default policies.
const (
	// PolicyError makes an unhandled pair a validation error: every pair must be
	// handled or explicitly ignored.
	PolicyError Policy = iota
	// PolicyReject accepts the spec; at run time the event is rejected with an error.
	PolicyReject
	// PolicyIgnore accepts the spec; at run time the event is silently dropped.
	PolicyIgnore
)

var policyNames = [...]string{"error", "reject", "ignore"}

// String returns the spec spelling of the policy.
func (p Policy) String() string { return policyNames[p] }

// Machine is a parsed spec.
type Machine struct {
	Name    string // machine name, e.g. "tcp793"
	Package string // Go package name for generated code
	Doc     string
	Default Policy // what to do with unhandled (state, event) pairs
	Pos     Pos    // position of the document

	States      []*State
	Events      []*Event
	Groups      []*Group
	Timers      []*Timer
	Transitions []*Transition
	Ignores     []*Rule    // events accepted and dropped in states
	Rejects     []*Rule    // events refused with an error in states
	Messages    []*Message // messages exchanged between peers (verify)
	Properties  []*Property
	GuardModels []*GuardModel // guards: abstract guard models (verify)
	HostTimers  []*HostTimer  // host_timers: timers the host arms (verify)
	Stable      []string      // stable: states a peer may rest in (verify)

	// Derived by Parse, in order of first appearance: every guard name and
	// every action name the spec uses (timer start/stop excluded).
	Guards  []string
	Actions []string
	// Durations lists the distinct timer duration parameters, in timer order.
	Durations []string
}

// State is one state of the machine.
type State struct {
	Name    string
	Doc     string
	Initial bool
	Final   bool
	Entry   []Action // run on entering the state, in order
	Exit    []Action // run on leaving the state, in order
	Index   int      // position in Machine.States
	Pos     Pos
}

// Event is one event the machine reacts to.
type Event struct {
	Name  string
	Doc   string
	Kind  EventKind
	Index int // position in Machine.Events
	Pos   Pos
}

// Group names a set of states so transitions and ignores can refer to them all.
type Group struct {
	Name   string
	Doc    string
	States []string
	Pos    Pos

	statesNodes []*yaml.Node
}

// Timer is a one-shot timer: started and stopped by actions, it raises Event
// when it expires. Duration names a parameter the host supplies at run time.
type Timer struct {
	Name     string
	Doc      string
	Duration string // name of the duration parameter, e.g. "two_msl"
	Event    string // event raised on expiry (must be of kind timer)
	Index    int
	Pos      Pos

	eventNode *yaml.Node
}

// ActionKind distinguishes handler calls from timer operations.
type ActionKind int

// The kinds of action.
const (
	// ActionCall calls the handler method named by the action.
	ActionCall ActionKind = iota
	// ActionStartTimer (re)starts a timer; spelled "start NAME".
	ActionStartTimer
	// ActionStopTimer stops a timer if armed; spelled "stop NAME".
	ActionStopTimer
)

// Action is one step of a transition, entry or exit.
type Action struct {
	Kind ActionKind
	Name string // action name, or timer name for timer actions
	Pos  Pos
}

// String returns the spec spelling of the action.
func (a Action) String() string {
	switch a.Kind {
	case ActionStartTimer:
		return "start " + a.Name
	case ActionStopTimer:
		return "stop " + a.Name
	}
	return a.Name
}

// GuardTerm is one named guard, possibly negated ("!name").
type GuardTerm struct {
	Name    string
	Negated bool
	Pos     Pos
}

// String returns the spec spelling of the term.
func (g GuardTerm) String() string {
	if g.Negated {
		return "!" + g.Name
	}
	return g.Name
}

// Transition moves the machine from each of From to To on event On, when all
// guard terms hold, running Actions in order. An internal transition (no "to"
// in the spec) stays in the source state and runs neither exit nor entry actions.
type Transition struct {
	From     []string    // expanded source states, in spec order
	FromText string      // the "from" value as written (state, list or group)
	On       string      // event name
	Guard    []GuardTerm // conjunction; empty means always enabled
	To       string      // target state; "" for an internal transition
	Actions  []Action
	Label    string // short diagram label, e.g. "rcv SYN / snd SYN,ACK"
	Doc      string // rationale, usually with the RFC section
	Index    int    // position in Machine.Transitions
	Pos      Pos
	OnPos    Pos
	ToPos    Pos
}

// Internal reports whether the transition stays in its source state without
// running exit or entry actions.
func (t *Transition) Internal() bool { return t.To == "" }

// Target returns the state the machine is in after taking t from state from.
func (t *Transition) Target(from string) string {
	if t.To == "" {
		return from
	}
	return t.To
}

// GuardText returns the guard as written, e.g. "passive && !fin_acked".
func (t *Transition) GuardText() string {
	s := ""
	for i, g := range t.Guard {
		if i > 0 {
			s += " && "
		}
		s += g.String()
	}
	return s
}

// Rule names events in states that no transition handles on purpose: an
// ignore rule accepts the event and does nothing; a reject rule refuses it
// with an error whose text is Doc (e.g. "connection closing").
type Rule struct {
	In  []string // expanded states
	On  []string // events
	Doc string
	Pos Pos
}

// Message is something one peer sends another (used by verify): actions in
// Sent emit it, and its arrival raises Event at the receiver.
type Message struct {
	Name  string
	Sent  []string // action names that emit this message
	Event string   // event raised at the receiving peer
	Pos   Pos

	// Verify extensions (see verifyext.go).
	Doc    string
	SentIn []ActionFilter // sent_in: sender states per action
	SentOn []ActionFilter // sent_on: triggering events per action
	In     []MessageRoute // in: per-receiver-state classification
	Guards []GuardValue   // guards: values the message carries
}

// Property is a claim about two peers that verify checks.
type Property struct {
	Name string
	Doc  string
	// Kind is "reachable" (some run reaches the state pair) or "always-reaches"
	// (from the start pair, every fair run reaches the goal pair).
	Kind  string
	From  [2]string // start states of the two peers ("" = initial)
	Goal  [2]string // goal states of the two peers
	Users []string  // user events verify may inject
	Pos   Pos

	UsersA []string // user events verify may inject at peer A only (users_a)
	UsersB []string // user events verify may inject at peer B only (users_b)
}

// StateByName returns the named state, or nil.
func (m *Machine) StateByName(name string) *State {
	for _, s := range m.States {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// EventByName returns the named event, or nil.
func (m *Machine) EventByName(name string) *Event {
	for _, e := range m.Events {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// TimerByName returns the named timer, or nil.
func (m *Machine) TimerByName(name string) *Timer {
	for _, t := range m.Timers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// InitialState returns the initial state (Validate guarantees exactly one).
func (m *Machine) InitialState() *State {
	for _, s := range m.States {
		if s.Initial {
			return s
		}
	}
	return nil
}

// TransitionsFor returns the transitions leaving state on event, in spec order.
func (m *Machine) TransitionsFor(state, event string) []*Transition {
	var out []*Transition
	for _, t := range m.Transitions {
		if t.On != event {
			continue
		}
		for _, f := range t.From {
			if f == state {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// Ignored returns the ignore rule for event in state, or nil.
func (m *Machine) Ignored(state, event string) *Rule { return findRule(m.Ignores, state, event) }

// Rejected returns the reject rule for event in state, or nil.
func (m *Machine) Rejected(state, event string) *Rule { return findRule(m.Rejects, state, event) }

func findRule(rules []*Rule, state, event string) *Rule {
	for _, r := range rules {
		if contains(r.In, state) && contains(r.On, event) {
			return r
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
