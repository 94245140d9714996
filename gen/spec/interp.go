package spec

// Result is what a machine did with an event.
type Result int

// The results of Step.
const (
	// Taken: a transition fired.
	Taken Result = iota
	// Ignored: the event was accepted and nothing happened (an ignore rule,
	// or the default policy "ignore").
	Ignored
	// Rejected: no transition was enabled and the event is not ignored.
	Rejected
)

var resultNames = [...]string{"taken", "ignored", "rejected"}

// String returns the result's name.
func (r Result) String() string { return resultNames[r] }

// Outcome is the result of interpreting one event.
type Outcome struct {
	Result     Result
	Next       string      // state after the event
	Transition *Transition // the transition taken, when Result is Taken
	Actions    []Action    // exit, transition and entry actions, in order
}

// Step interprets the spec directly: in state, on event, with guard
// answering each guard name, which transition fires and what runs. It is the
// reference semantics that generated code must match:
//   - transitions for (state, event) are tried in spec order and the first
//     whose guard terms all hold fires (Validate makes at most one possible);
//   - a transition with a target runs the source's exit actions, its own
//     actions, then the target's entry actions (also for a self-target);
//     an internal transition (no target) runs only its own actions;
//   - with no enabled transition, a reject rule makes the event Rejected, an
//     ignore rule Ignored, and otherwise the default policy decides
//     ("ignore" → Ignored, else Rejected).
func (m *Machine) Step(state, event string, guard func(name string) bool) Outcome {
	ts := m.TransitionsFor(state, event)
	if t := enabled(ts, guard); t != nil {
		out := Outcome{Result: Taken, Next: t.Target(state), Transition: t}
		if t.Internal() {
			out.Actions = append(out.Actions, t.Actions...)
			return out
		}
		out.Actions = append(out.Actions, m.StateByName(state).Exit...)
		out.Actions = append(out.Actions, t.Actions...)
		out.Actions = append(out.Actions, m.StateByName(t.To).Entry...)
		return out
	}
	if m.Rejected(state, event) != nil {
		return Outcome{Result: Rejected, Next: state}
	}
	if m.Ignored(state, event) != nil || m.Default == PolicyIgnore {
		return Outcome{Result: Ignored, Next: state}
	}
	return Outcome{Result: Rejected, Next: state}
}

// enabled returns the first transition of ts whose guard holds, evaluating
// terms left to right and stopping at the first false one.
func enabled(ts []*Transition, guard func(string) bool) *Transition {
next:
	for _, t := range ts {
		for _, g := range t.Guard {
			if guard(g.Name) == g.Negated {
				continue next
			}
		}
		return t
	}
	return nil
}
