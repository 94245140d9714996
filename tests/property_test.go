package tests

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/fsmgen/fsmgen/gen/spec"
	"github.com/fsmgen/fsmgen/generated/tcpfsm"
)

// tcpRecorder is a tcpfsm.Handler that logs every action in spec spelling
// ("create_tcb", "start retransmit", "stop time_wait") and answers guards
// from a GuardSet.
//
// It embeds a nil tcpfsm.Handler so that this package still compiles when
// the spec gains an action (other tests live here too); calling a method it
// lacks panics, which TestTCPExhaustive reports.
type tcpRecorder struct {
	tcpfsm.Handler
	guards tcpfsm.GuardSet
	log    []string
	timers []string // "start NAME DURATION", "stop NAME"
	fail   map[string]error
	hook   map[string]func()
}

func (r *tcpRecorder) call(name string) error {
	r.log = append(r.log, name)
	if f := r.hook[name]; f != nil {
		f()
	}
	return r.fail[name]
}

func (r *tcpRecorder) DeleteTcb() error         { return r.call("delete_tcb") }
func (r *tcpRecorder) ArmFinTimeout() error     { return r.call("arm_fin_timeout") }
func (r *tcpRecorder) SignalEstablished() error { return r.call("signal_established") }
func (r *tcpRecorder) CreateTcb() error         { return r.call("create_tcb") }
func (r *tcpRecorder) SndSyn() error            { return r.call("snd_syn") }
func (r *tcpRecorder) QueueData() error         { return r.call("queue_data") }
func (r *tcpRecorder) UpdateWindow() error      { return r.call("update_window") }
func (r *tcpRecorder) SignalClosing() error     { return r.call("signal_closing") }
func (r *tcpRecorder) QueueFin() error          { return r.call("queue_fin") }
func (r *tcpRecorder) SignalReset() error       { return r.call("signal_reset") }
func (r *tcpRecorder) SndRst() error            { return r.call("snd_rst") }
func (r *tcpRecorder) SndResetReply() error     { return r.call("snd_reset_reply") }
func (r *tcpRecorder) InitFromSyn() error       { return r.call("init_from_syn") }
func (r *tcpRecorder) SndSynAck() error         { return r.call("snd_syn_ack") }
func (r *tcpRecorder) SndAck() error            { return r.call("snd_ack") }
func (r *tcpRecorder) SignalRefused() error     { return r.call("signal_refused") }
func (r *tcpRecorder) ReturnToListen() error    { return r.call("return_to_listen") }
func (r *tcpRecorder) SndChallengeAck() error   { return r.call("snd_challenge_ack") }
func (r *tcpRecorder) ProcessAck() error        { return r.call("process_ack") }
func (r *tcpRecorder) SignalClosed() error      { return r.call("signal_closed") }
func (r *tcpRecorder) AcceptData() error        { return r.call("accept_data") }
func (r *tcpRecorder) AcceptFin() error         { return r.call("accept_fin") }
func (r *tcpRecorder) Retransmit() error        { return r.call("retransmit") }
func (r *tcpRecorder) SignalTimeout() error     { return r.call("signal_timeout") }

func (r *tcpRecorder) Passive() bool          { return r.guards.Has(tcpfsm.GuardPassive) }
func (r *tcpRecorder) FinAcked() bool         { return r.guards.Has(tcpfsm.GuardFinAcked) }
func (r *tcpRecorder) RetriesExhausted() bool { return r.guards.Has(tcpfsm.GuardRetriesExhausted) }

// tcpDurations are the handlers' answers for the spec's duration parameters.
var tcpDurations = map[string]time.Duration{
	"rto":          time.Second,
	"user_timeout": 5 * time.Minute,
	"two_msl":      4 * time.Minute,
	"fin_timeout":  time.Minute,
}

func (r *tcpRecorder) Rto() time.Duration         { return tcpDurations["rto"] }
func (r *tcpRecorder) UserTimeout() time.Duration { return tcpDurations["user_timeout"] }
func (r *tcpRecorder) TwoMsl() time.Duration      { return tcpDurations["two_msl"] }
func (r *tcpRecorder) FinTimeout() time.Duration  { return tcpDurations["fin_timeout"] }

func (r *tcpRecorder) StartTimer(t tcpfsm.Timer, d time.Duration) {
	r.log = append(r.log, "start "+t.String())
	r.timers = append(r.timers, fmt.Sprintf("start %s %v", t, d))
}

func (r *tcpRecorder) StopTimer(t tcpfsm.Timer) {
	r.log = append(r.log, "stop "+t.String())
	r.timers = append(r.timers, "stop "+t.String())
}

var _ tcpfsm.Handler = (*tcpRecorder)(nil)

// specRowIDs numbers the rows of the generated transition table: one per
// (spec transition, source state), in spec order.
func specRowIDs(m *spec.Machine) map[specRow]int {
	ids := map[specRow]int{}
	for _, t := range m.Transitions {
		for _, from := range t.From {
			ids[specRow{t.Index, from}] = len(ids)
		}
	}
	return ids
}

type specRow struct {
	transition int
	from       string
}

func specActionStrings(as []spec.Action) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// specTimerCalls is what tcpRecorder.timers should hold after the actions as:
// "start NAME DURATION" with the timer's duration parameter, "stop NAME".
func specTimerCalls(m *spec.Machine, as []spec.Action) []string {
	out := []string{}
	for _, a := range as {
		switch a.Kind {
		case spec.ActionStartTimer:
			out = append(out, fmt.Sprintf("start %s %v", a.Name, tcpDurations[m.TimerByName(a.Name).Duration]))
		case spec.ActionStopTimer:
			out = append(out, "stop "+a.Name)
		}
	}
	return out
}

// specRejectReason is the RejectedError.Reason the spec calls for.
func specRejectReason(m *spec.Machine, state, event string) string {
	if r := m.Rejected(state, event); r != nil {
		return strings.Join(strings.Fields(r.Doc), " ")
	}
	return "no transition"
}

// TestTCPEnumsMatchSpec checks that tcpfsm's enums follow spec order and spelling.
func TestTCPEnumsMatchSpec(t *testing.T) {
	m := genParseSpec(t, "../spec/tcp793.yaml")
	if len(m.States) != tcpfsm.NumStates || len(m.Events) != tcpfsm.NumEvents || len(m.Guards) != tcpfsm.NumGuards || len(m.Timers) != tcpfsm.NumTimers {
		t.Fatalf("tcpfsm has %d states, %d events, %d guards, %d timers; spec has %d, %d, %d, %d",
			tcpfsm.NumStates, tcpfsm.NumEvents, tcpfsm.NumGuards, tcpfsm.NumTimers, len(m.States), len(m.Events), len(m.Guards), len(m.Timers))
	}
	for i, s := range tcpfsm.States {
		if s.String() != m.States[i].Name {
			t.Errorf("State %d is %s, spec says %s", i, s, m.States[i].Name)
		}
	}
	for i, e := range tcpfsm.Events {
		if e.String() != m.Events[i].Name || e.Kind() != tcpfsm.EventKind(m.Events[i].Kind) {
			t.Errorf("Event %d is %s (kind %d), spec says %s (%s)", i, e, e.Kind(), m.Events[i].Name, m.Events[i].Kind)
		}
	}
	for i, g := range tcpfsm.Guards {
		if g.String() != m.Guards[i] {
			t.Errorf("Guard %d is %s, spec says %s", i, g, m.Guards[i])
		}
	}
	for i, tm := range tcpfsm.Timers {
		if tm.String() != m.Timers[i].Name || tm.Event().String() != m.Timers[i].Event {
			t.Errorf("Timer %d is %s raising %s, spec says %s raising %s", i, tm, tm.Event(), m.Timers[i].Name, m.Timers[i].Event)
		}
	}
	if n := len(specRowIDs(m)); n != tcpfsm.NumTransitions {
		t.Errorf("NumTransitions = %d, spec has %d (transition, source) rows", tcpfsm.NumTransitions, n)
	}
}

// tcpChecker runs one machine in lockstep with the reference interpreter.
type tcpChecker struct {
	m        *spec.Machine
	rowIDs   map[specRow]int
	rec      *tcpRecorder
	mach     *tcpfsm.Machine
	observed []string
}

func newTCPChecker(m *spec.Machine) *tcpChecker {
	c := &tcpChecker{m: m, rowIDs: specRowIDs(m), rec: &tcpRecorder{}}
	c.mach = tcpfsm.New(c.rec)
	c.mach.SetObserver(func(from tcpfsm.State, e tcpfsm.Event, to tcpfsm.State, id tcpfsm.TransitionID) {
		c.observed = append(c.observed, fmt.Sprintf("%s -%s-> %s #%d", from, e, to, id))
	})
	return c
}

// fataler is what both *testing.T and *rapid.T offer.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// restore puts the machine in state i, checking that no action runs.
func (c *tcpChecker) restore(t fataler, i int) string {
	t.Helper()
	c.rec.log = nil
	if err := c.mach.Restore(tcpfsm.State(i)); err != nil {
		t.Fatalf("Restore(%d): %v", i, err)
	}
	if len(c.rec.log) != 0 || c.mach.State() != tcpfsm.State(i) {
		t.Fatalf("Restore(%d): state %s, ran %v", i, c.mach.State(), c.rec.log)
	}
	return c.m.States[i].Name
}

// fire is Machine.Fire, turning a panic (a Handler method tcpRecorder lacks)
// into a test failure.
func (c *tcpChecker) fire(t fataler, e tcpfsm.Event) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Fire(%s) in %s panicked: %v (does tcpRecorder implement every tcpfsm.Handler method?)", e, c.mach.State(), p)
		}
	}()
	return c.mach.Fire(e)
}

// step delivers event ev with guard valuation g to Step and to the machine,
// which is in state, and compares both with spec.Machine.Step. It returns the
// next state.
func (c *tcpChecker) step(t fataler, state string, ev int, g tcpfsm.GuardSet) string {
	t.Helper()
	m := c.m
	event := m.Events[ev].Name
	want := m.Step(state, event, func(name string) bool {
		i := slices.Index(m.Guards, name)
		if i < 0 {
			t.Fatalf("spec asks for unknown guard %q", name)
		}
		return g.Has(tcpfsm.Guard(i))
	})
	wantActs := specActionStrings(want.Actions)
	where := fmt.Sprintf("in %s on %s with guards %03b", state, event, g)

	// The pure function.
	cur := tcpfsm.State(m.StateByName(state).Index)
	next, acts, id, res := tcpfsm.Step(cur, tcpfsm.Event(ev), g)
	gotActs := []string{}
	for _, a := range acts {
		gotActs = append(gotActs, a.String())
	}
	if res.String() != want.Result.String() || next.String() != want.Next || !slices.Equal(gotActs, wantActs) {
		t.Fatalf("%s: Step = %s, %s, %v; spec: %s, %s, %v", where, next, res, gotActs, want.Next, want.Result, wantActs)
	}
	if want.Result == spec.Taken {
		tr := want.Transition
		if wantID := c.rowIDs[specRow{tr.Index, state}]; int(id) != wantID {
			t.Fatalf("%s: Step took row %d, spec row is %d", where, id, wantID)
		}
		row := tcpfsm.Transitions[id]
		if row.From != cur || row.Event != tcpfsm.Event(ev) || row.To.String() != want.Next ||
			row.Guard != tr.GuardText() || row.Internal != tr.Internal() || row.Label != tr.Label || !slices.Equal(row.Actions, acts) {
			t.Fatalf("%s: Transitions[%d] = %+v does not match spec transition at %s", where, id, row, tr.Pos)
		}
	} else if id != 0 || acts != nil {
		t.Fatalf("%s: Step = id %d, actions %v for a %s event", where, id, acts, res)
	}

	// The machine, with the same guard answers.
	if c.mach.State() != cur {
		t.Fatalf("%s: machine is in %s", where, c.mach.State())
	}
	c.rec.guards, c.rec.log, c.rec.timers, c.observed = g, nil, nil, nil
	err := c.fire(t, tcpfsm.Event(ev))
	if got := c.mach.State().String(); got != want.Next {
		t.Fatalf("%s: Fire moved to %s, spec says %s", where, got, want.Next)
	}
	if !slices.Equal(append([]string{}, c.rec.log...), wantActs) {
		t.Fatalf("%s: Fire ran %v, spec says %v", where, c.rec.log, wantActs)
	}
	if wantTimers := specTimerCalls(m, want.Actions); !slices.Equal(append([]string{}, c.rec.timers...), wantTimers) {
		t.Fatalf("%s: timer calls %q, spec says %q", where, c.rec.timers, wantTimers)
	}
	switch want.Result {
	case spec.Taken:
		wantObs := fmt.Sprintf("%s -%s-> %s #%d", state, event, want.Next, id)
		if err != nil || len(c.observed) != 1 || c.observed[0] != wantObs {
			t.Fatalf("%s: Fire = %v, observed %q; want nil, [%q]", where, err, c.observed, wantObs)
		}
	case spec.Ignored:
		if err != nil || len(c.observed) != 0 {
			t.Fatalf("%s: ignored event: Fire = %v, observed %q", where, err, c.observed)
		}
	case spec.Rejected:
		var rj *tcpfsm.RejectedError
		if !errors.As(err, &rj) || !errors.Is(err, tcpfsm.ErrRejected) {
			t.Fatalf("%s: Fire = %v, want a *RejectedError", where, err)
		}
		if reason := specRejectReason(m, state, event); rj.State != cur || rj.Event != tcpfsm.Event(ev) || rj.Reason != reason {
			t.Fatalf("%s: %+v, want reason %q", where, *rj, reason)
		}
		if len(c.observed) != 0 {
			t.Fatalf("%s: rejected event observed: %q", where, c.observed)
		}
	}
	return want.Next
}

// TestTCPMatchesSpec is the property test: for random start states, event
// sequences and guard valuations, tcpfsm.Step and Machine.Fire do exactly
// what the reference interpreter spec.Machine.Step says.
func TestTCPMatchesSpec(t *testing.T) {
	m := genParseSpec(t, "../spec/tcp793.yaml")
	rapid.Check(t, func(t *rapid.T) {
		c := newTCPChecker(m)
		state := c.restore(t, rapid.IntRange(0, tcpfsm.NumStates-1).Draw(t, "start"))
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			ev := rapid.IntRange(0, tcpfsm.NumEvents-1).Draw(t, "event")
			g := tcpfsm.GuardSet(rapid.Uint64Range(0, 1<<tcpfsm.NumGuards-1).Draw(t, "guards"))
			state = c.step(t, state, ev, g)
		}
	})
}

// TestTCPExhaustive checks every (state, event, guard valuation) once.
func TestTCPExhaustive(t *testing.T) {
	m := genParseSpec(t, "../spec/tcp793.yaml")
	c := newTCPChecker(m)
	for s := range tcpfsm.NumStates {
		for e := range tcpfsm.NumEvents {
			for g := range tcpfsm.GuardSet(1 << tcpfsm.NumGuards) {
				c.step(t, c.restore(t, s), e, g)
			}
		}
	}
}
