package verify

import (
	"fmt"
	"math/bits"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// Limits of the compact configuration encoding.
const (
	maxCap      = 8  // channel capacity
	maxTimers   = 16 // timers per machine
	maxFlags    = 16 // flag guards
	maxCounters = 4  // counter guards
	maxGuards   = 32 // guards per machine
	maxTokens   = 31 // user events per scenario (bit 31 of config.tokens is movedBit)
)

type guardKind uint8

const (
	gFree    guardKind = iota // both values explored unless a message carries it
	gFlag                     // set_by / cleared_by
	gCounter                  // counts
)

// model is a spec compiled for exploration: names are small integers, and
// every (state, event, guard valuation) has its outcome precomputed.
type model struct {
	m        *spec.Machine
	states   []*spec.State
	stateIdx map[string]int
	events   []*spec.Event
	eventIdx map[string]int
	timers   []*spec.Timer
	timerIdx map[string]int
	timerEv  []int // timer → event raised on expiry

	guards   []string // m.Guards
	guardIdx map[string]int
	gkind    []guardKind
	gslot    []int // flag bit or counter index
	flagInit uint16
	nCounter int
	counterG []int // counter index → guard

	msgs      []*spec.Message
	routes    [][][]int // [msg][state] → events raised (-1: dropped)
	carryMask []uint32  // [msg] guards the message carries
	carryVal  []uint32

	final, stable []bool
	initial       int
	hostMask      uint16   // timers the host manages
	hostArmed     []uint16 // [state] host timers armed there
	liveFlags     []uint16 // [state] flags that may still be read

	table [][][]valOutcome // [state][event] → outcome per valuation of the relevant guards
	rel   [][]uint32       // [state][event] relevant guards
}

type valOutcome struct {
	val uint32
	out *outcome
}

// outcome is what one machine does in one state on one event under one
// valuation of the guards that matter there.
type outcome struct {
	result   spec.Result
	from     int
	next     int
	trans    int // index into Machine.Transitions, -1 when none fired
	internal bool
	steps    []step
}

type stepKind uint8

const (
	sCall  stepKind = iota // a handler action (may send, set flags, count)
	sStart                 // start timer
	sStop                  // stop timer
	sEnter                 // the machine enters the next state here
)

type step struct {
	kind  stepKind
	timer int
	sends []int // messages emitted (sCall)
	set   uint16
	clear uint16
	inc   int   // counter index + 1 to increment, 0: none
	reset uint8 // counters to zero
}

func compile(m *spec.Machine, opts Options) (*model, error) {
	x := &model{m: m, states: m.States, events: m.Events, timers: m.Timers,
		stateIdx: map[string]int{}, eventIdx: map[string]int{}, timerIdx: map[string]int{}, guardIdx: map[string]int{}}
	if len(m.States) > 255 || len(m.Events) > 255 || len(m.Messages) > 255 {
		return nil, fmt.Errorf("verify: %s is too large (at most 255 states, events and messages)", m.Name)
	}
	if len(m.Timers) > maxTimers || len(m.Guards) > maxGuards {
		return nil, fmt.Errorf("verify: %s has too many timers or guards (at most %d and %d)", m.Name, maxTimers, maxGuards)
	}
	for i, s := range m.States {
		x.stateIdx[s.Name] = i
		x.final = append(x.final, s.Final)
		x.stable = append(x.stable, contains(m.Stable, s.Name))
		if s.Initial {
			x.initial = i
		}
	}
	for i, e := range m.Events {
		x.eventIdx[e.Name] = i
	}
	for i, t := range m.Timers {
		x.timerIdx[t.Name] = i
		x.timerEv = append(x.timerEv, x.eventIdx[t.Event])
	}
	x.guards = m.Guards
	nFlags := 0
	for i, g := range m.Guards {
		x.guardIdx[g] = i
		kind, slot := gFree, 0
		if gm := m.GuardModelByName(g); gm != nil {
			switch {
			case gm.Flag():
				if nFlags == maxFlags {
					return nil, fmt.Errorf("verify: at most %d flag guards", maxFlags)
				}
				kind, slot = gFlag, nFlags
				if gm.Initial {
					x.flagInit |= 1 << nFlags
				}
				nFlags++
			case gm.Counter():
				if x.nCounter == maxCounters {
					return nil, fmt.Errorf("verify: at most %d counter guards", maxCounters)
				}
				kind, slot = gCounter, x.nCounter
				x.counterG = append(x.counterG, i)
				x.nCounter++
			}
		}
		x.gkind = append(x.gkind, kind)
		x.gslot = append(x.gslot, slot)
	}
	x.msgs = m.Messages
	for _, msg := range m.Messages {
		per := make([][]int, len(m.States))
		for si, s := range m.States {
			for _, e := range msg.Classify(s.Name) {
				if e == "" {
					per[si] = append(per[si], -1)
				} else {
					per[si] = append(per[si], x.eventIdx[e])
				}
			}
		}
		x.routes = append(x.routes, per)
		var mask, val uint32
		for _, g := range msg.Guards {
			bit := uint32(1) << x.guardIdx[g.Name]
			mask |= bit
			if g.Value {
				val |= bit
			}
		}
		x.carryMask = append(x.carryMask, mask)
		x.carryVal = append(x.carryVal, val)
	}
	x.hostArmed = make([]uint16, len(m.States))
	if !opts.SpecTimers {
		for _, h := range m.HostTimers {
			bit := uint16(1) << x.timerIdx[h.Timer]
			x.hostMask |= bit
			for _, s := range h.ArmedIn {
				x.hostArmed[x.stateIdx[s]] |= bit
			}
		}
	}
	x.table = make([][][]valOutcome, len(m.States))
	x.rel = make([][]uint32, len(m.States))
	for si, s := range m.States {
		x.table[si] = make([][]valOutcome, len(m.Events))
		x.rel[si] = make([]uint32, len(m.Events))
		for ei, e := range m.Events {
			x.buildOutcomes(si, s, ei, e)
		}
	}
	x.computeLiveFlags()
	return x, nil
}

// buildOutcomes fills table[si][ei]: one outcome per valuation of the
// guards the (state, event) transitions test, shared between valuations
// that pick the same transition.
func (x *model) buildOutcomes(si int, s *spec.State, ei int, e *spec.Event) {
	var rel uint32
	for _, t := range x.m.TransitionsFor(s.Name, e.Name) {
		for _, g := range t.Guard {
			rel |= 1 << x.guardIdx[g.Name]
		}
	}
	x.rel[si][ei] = rel
	byTrans := map[int]*outcome{}
	v := uint32(0)
	for {
		val := v
		o := x.m.Step(s.Name, e.Name, func(name string) bool { return val&(1<<x.guardIdx[name]) != 0 })
		key := -1 - int(o.Result)
		if o.Transition != nil {
			key = o.Transition.Index
		}
		out := byTrans[key]
		if out == nil {
			out = x.compileOutcome(si, s, e, o)
			byTrans[key] = out
		}
		x.table[si][ei] = append(x.table[si][ei], valOutcome{val, out})
		v = (v - rel) & rel // next subset of rel
		if v == 0 {
			break
		}
	}
}

func (x *model) compileOutcome(si int, s *spec.State, e *spec.Event, o spec.Outcome) *outcome {
	out := &outcome{result: o.Result, from: si, next: x.stateIdx[o.Next], trans: -1}
	if o.Result != spec.Taken {
		return out
	}
	t := o.Transition
	out.trans = t.Index
	out.internal = t.Internal()
	add := func(acts []spec.Action, sender string) {
		for _, a := range acts {
			out.steps = append(out.steps, x.compileAction(a, sender, e.Name))
		}
	}
	if t.Internal() {
		add(t.Actions, s.Name)
	} else {
		add(s.Exit, s.Name)
		add(t.Actions, s.Name)
		out.steps = append(out.steps, step{kind: sEnter})
		add(x.m.StateByName(t.To).Entry, t.To)
	}
	return out
}

func (x *model) compileAction(a spec.Action, sender, event string) step {
	switch a.Kind {
	case spec.ActionStartTimer:
		return step{kind: sStart, timer: x.timerIdx[a.Name]}
	case spec.ActionStopTimer:
		return step{kind: sStop, timer: x.timerIdx[a.Name]}
	}
	st := step{kind: sCall}
	for mi, msg := range x.msgs {
		if msg.Sends(a.Name, sender, event) {
			st.sends = append(st.sends, mi)
		}
	}
	for gi, g := range x.guards {
		gm := x.m.GuardModelByName(g)
		if gm == nil {
			continue
		}
		switch x.gkind[gi] {
		case gFlag:
			if contains(gm.SetBy, a.Name) {
				st.set |= 1 << x.gslot[gi]
			}
			if contains(gm.ClearedBy, a.Name) {
				st.clear |= 1 << x.gslot[gi]
			}
		case gCounter:
			if gm.Counts == a.Name {
				st.inc = x.gslot[gi] + 1
			}
			if contains(gm.ResetBy, a.Name) {
				st.reset |= 1 << x.gslot[gi]
			}
		}
	}
	return st
}

// computeLiveFlags finds, per state, the flags some path from there may read
// before overwriting them; configurations clear the others, which changes no
// behaviour and keeps irrelevant history out of the state space.
func (x *model) computeLiveFlags() {
	n := len(x.states)
	x.liveFlags = make([]uint16, n)
	flagOf := func(gi int) uint16 {
		if x.gkind[gi] == gFlag {
			return 1 << x.gslot[gi]
		}
		return 0
	}
	for changed := true; changed; {
		changed = false
		for si := range x.states {
			live := x.liveFlags[si]
			for ei := range x.events {
				for r := x.rel[si][ei]; r != 0; r &= r - 1 {
					live |= flagOf(bits.TrailingZeros32(r))
				}
				for _, vo := range x.table[si][ei] {
					o := vo.out
					if o.result != spec.Taken {
						continue
					}
					// Walk the steps backwards: flags live after the
					// transition, minus those written, are live before.
					after := x.liveFlags[o.next]
					for k := len(o.steps) - 1; k >= 0; k-- {
						after &^= o.steps[k].set | o.steps[k].clear
					}
					live |= after
				}
			}
			if live != x.liveFlags[si] {
				x.liveFlags[si] = live
				changed = true
			}
		}
	}
}

// outcomes returns the outcomes possible for a machine in l on event e, given
// the guard values a message carries (mask, val), with the valuation of the
// relevant guards that leads to each. patient makes counter guards false.
func (x *model) outcomes(l *local, e int, mask, val uint32, retries int, patient bool, emit func(vo valOutcome)) {
	s := int(l.state)
	rel := x.rel[s][e]
	if rel == 0 {
		emit(x.table[s][e][0])
		return
	}
	var fixed, fixedVal uint32
	for r := rel; r != 0; r &= r - 1 {
		gi := bits.TrailingZeros32(r)
		bit := uint32(1) << gi
		switch {
		case mask&bit != 0:
			fixed |= bit
			fixedVal |= val & bit
		case x.gkind[gi] == gFlag:
			fixed |= bit
			if l.flags&(1<<x.gslot[gi]) != 0 {
				fixedVal |= bit
			}
		case x.gkind[gi] == gCounter:
			fixed |= bit
			if !patient && int(l.count[x.gslot[gi]]) >= retries {
				fixedVal |= bit
			}
		}
	}
	var seen [8]*outcome
	nSeen := 0
next:
	for _, vo := range x.table[s][e] {
		if vo.val&fixed != fixedVal {
			continue
		}
		for _, o := range seen[:nSeen] {
			if o == vo.out {
				continue next
			}
		}
		if nSeen < len(seen) {
			seen[nSeen] = vo.out
			nSeen++
		}
		emit(vo)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
