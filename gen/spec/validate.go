package spec

import (
	"fmt"
	"strings"
)

// Validate checks a parsed machine's semantics: exactly one initial state,
// every state reachable and (when finals are declared) able to reach a final
// state, no nondeterminism, consistent ignore rules, and, under the default
// policy "error", every (state, event) pair handled. It returns an ErrorList.
func Validate(m *Machine) error {
	var errs ErrorList
	if len(m.States) == 0 {
		errs.add(m.Pos, "no states; list at least one under \"states:\"")
		return errs.sorted()
	}
	checkInitial(m, &errs)
	if init := m.InitialState(); init != nil {
		checkReachability(m, init, &errs)
	}
	checkDeterminism(m, &errs)
	checkRules(m, &errs)
	if m.Default == PolicyError {
		checkHandled(m, &errs)
	}
	return errs.sorted()
}

func checkInitial(m *Machine, errs *ErrorList) {
	var first *State
	for _, s := range m.States {
		if !s.Initial {
			continue
		}
		if first != nil {
			errs.add(s.Pos, "state %q is a second initial state (%q at %s is the first); keep \"initial: true\" on exactly one state", s.Name, first.Name, first.Pos)
			continue
		}
		first = s
	}
	if first == nil {
		errs.add(m.States[0].Pos, "no initial state; mark the state the machine starts in with \"initial: true\"")
	}
}

// successors maps each state to the states its transitions lead to.
func successors(m *Machine) map[string][]string {
	next := map[string][]string{}
	for _, t := range m.Transitions {
		for _, f := range t.From {
			next[f] = append(next[f], t.Target(f))
		}
	}
	return next
}

func checkReachability(m *Machine, init *State, errs *ErrorList) {
	next := successors(m)
	seen := reach(next, []string{init.Name})
	for _, s := range m.States {
		if !seen[s.Name] {
			errs.add(s.Pos, "state %q is unreachable from initial state %q; add a transition into it or remove it", s.Name, init.Name)
		}
	}
	var finals []string
	for _, s := range m.States {
		if s.Final {
			finals = append(finals, s.Name)
		}
	}
	if len(finals) == 0 {
		return
	}
	// States that can reach a final one: search backward from the finals.
	prev := map[string][]string{}
	for from, tos := range next {
		for _, to := range tos {
			prev[to] = append(prev[to], from)
		}
	}
	live := reach(prev, finals)
	for _, s := range m.States {
		if seen[s.Name] && !live[s.Name] {
			errs.add(s.Pos, "state %q cannot reach a final state (%s); add a transition out of it that leads to one", s.Name, strings.Join(finals, ", "))
		}
	}
}

// reach returns every state reachable from start along edges (breadth-first).
func reach(edges map[string][]string, start []string) map[string]bool {
	seen := map[string]bool{}
	queue := append([]string(nil), start...)
	for _, s := range start {
		seen[s] = true
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range edges[s] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return seen
}

// exclusive reports whether two guards can never hold together: some guard
// appears plainly in one and negated in the other.
func exclusive(a, b []GuardTerm) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Name == y.Name && x.Negated != y.Negated {
				return true
			}
		}
	}
	return false
}

func checkDeterminism(m *Machine, errs *ErrorList) {
	reported := map[[2]int]bool{}
	for _, s := range m.States {
		for _, e := range m.Events {
			ts := m.TransitionsFor(s.Name, e.Name)
			for i := 0; i < len(ts); i++ {
				for j := i + 1; j < len(ts); j++ {
					a, b := ts[i], ts[j]
					if exclusive(a.Guard, b.Guard) || reported[[2]int{a.Index, b.Index}] {
						continue
					}
					reported[[2]int{a.Index, b.Index}] = true
					errs.add(b.Pos, "nondeterministic: in state %q on event %q this transition and the one at %s can both fire (%s); give them exclusive guards such as \"g\" and \"!g\", or remove one",
						s.Name, e.Name, a.Pos, guardPair(a, b))
				}
			}
		}
	}
}

// guardPair describes the guards of two transitions that can both fire.
func guardPair(a, b *Transition) string {
	switch {
	case len(a.Guard) == 0 && len(b.Guard) == 0:
		return "neither has a guard"
	case len(a.Guard) == 0:
		return fmt.Sprintf("that one has no guard, this one %q", b.GuardText())
	case len(b.Guard) == 0:
		return fmt.Sprintf("that one has guard %q, this one none", a.GuardText())
	case a.GuardText() == b.GuardText():
		return fmt.Sprintf("both have guard %q", a.GuardText())
	}
	return fmt.Sprintf("guards %q and %q can hold together", a.GuardText(), b.GuardText())
}

// uncovered returns a guard valuation (as text) under which no transition of
// ts is enabled, or "" when the guards cover every valuation.
func uncovered(ts []*Transition) (string, bool) {
	names := guardNames(ts)
	if len(names) > maxEnumeratedGuards {
		return "", false // too many to enumerate; treat as covered
	}
	for v := 0; v < 1<<len(names); v++ {
		val := func(name string) bool {
			for i, n := range names {
				if n == name {
					return v&(1<<i) != 0
				}
			}
			return false
		}
		if enabled(ts, val) == nil {
			var parts []string
			for i, n := range names {
				if v&(1<<i) == 0 {
					parts = append(parts, "!"+n)
				} else {
					parts = append(parts, n)
				}
			}
			return strings.Join(parts, " && "), true
		}
	}
	return "", false
}

// coversAll reports whether some transition of ts is enabled under every
// guard valuation (false when there are too many guards to tell).
func coversAll(ts []*Transition) bool {
	if len(ts) == 0 || len(guardNames(ts)) > maxEnumeratedGuards {
		return false
	}
	_, gap := uncovered(ts)
	return !gap
}

// maxEnumeratedGuards bounds the guards whose 2^n valuations the checks try.
const maxEnumeratedGuards = 16

// guardNames lists the distinct guard names of ts in order of appearance.
func guardNames(ts []*Transition) []string {
	var names []string
	for _, t := range ts {
		for _, g := range t.Guard {
			if !contains(names, g.Name) {
				names = append(names, g.Name)
			}
		}
	}
	return names
}

// checkRules reports ignore/reject rules that can never apply, and pairs that
// are both ignored and rejected.
func checkRules(m *Machine, errs *ErrorList) {
	check := func(kind string, rules []*Rule) {
		for _, rule := range rules {
			for _, s := range rule.In {
				for _, e := range rule.On {
					ts := m.TransitionsFor(s, e)
					dead := false
					for _, t := range ts {
						if len(t.Guard) == 0 {
							dead = true
							errs.add(rule.Pos, "%s rule for event %q in state %q is dead: the unguarded transition at %s always handles it; drop the state or event from the rule", kind, e, s, t.Pos)
						}
					}
					if !dead && coversAll(ts) {
						var at []string
						for _, t := range ts {
							at = append(at, t.Pos.String())
						}
						errs.add(rule.Pos, "%s rule for event %q in state %q is dead: the guards of the transitions at %s cover every case; drop the state or event from the rule", kind, e, s, strings.Join(at, ", "))
					}
				}
			}
		}
	}
	check("ignore", m.Ignores)
	check("reject", m.Rejects)
	for _, rj := range m.Rejects {
		for _, s := range rj.In {
			for _, e := range rj.On {
				if ig := m.Ignored(s, e); ig != nil {
					errs.add(rj.Pos, "event %q in state %q is both rejected here and ignored by the rule at %s; keep one", e, s, ig.Pos)
				}
			}
		}
	}
}

func checkHandled(m *Machine, errs *ErrorList) {
	for _, s := range m.States {
		var missing []string
		for _, e := range m.Events {
			if m.Ignored(s.Name, e.Name) != nil || m.Rejected(s.Name, e.Name) != nil {
				continue
			}
			ts := m.TransitionsFor(s.Name, e.Name)
			if len(ts) == 0 {
				missing = append(missing, e.Name)
				continue
			}
			if when, ok := uncovered(ts); ok {
				errs.add(ts[len(ts)-1].Pos, "unhandled: in state %q event %q has no transition when %s; add a transition for that case, an ignore or reject rule, or set \"default: reject\"", s.Name, e.Name, when)
			}
		}
		if len(missing) > 0 {
			errs.add(s.Pos, "unhandled: state %q has no transition for event%s %s; add transitions, an ignore or reject rule ({in: %s, on: [...]}), or set \"default: reject\" or \"default: ignore\"",
				s.Name, plural(len(missing)), strings.Join(missing, ", "), s.Name)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
