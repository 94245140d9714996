package tests

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	looplab "github.com/looplab/fsm"
	"github.com/qmuntal/stateless"

	"github.com/fsmgen/fsmgen/gen/spec"
	"github.com/fsmgen/fsmgen/generated/tcpfsm"
)

// The benchmark drives four implementations of the same TCP transitions
// through the same cycles, each running the same actions as calls on the
// same tcpfsm.Handler: the generated machine, a hand-written nested switch
// (the floor), looplab/fsm and qmuntal/stateless. One op is one transition.

// benchCycle is a passive open and close followed by an active open and
// close; both halves end in CLOSED.
var benchCycle = [...]struct {
	event tcpfsm.Event
	to    tcpfsm.State
}{
	{tcpfsm.EventOpenPassive, tcpfsm.StateListen},
	{tcpfsm.EventRcvSyn, tcpfsm.StateSynReceived},
	{tcpfsm.EventRcvAckOfSyn, tcpfsm.StateEstablished},
	{tcpfsm.EventRcvFin, tcpfsm.StateCloseWait},
	{tcpfsm.EventClose, tcpfsm.StateLastAck},
	{tcpfsm.EventRcvAckOfFin, tcpfsm.StateClosed},
	{tcpfsm.EventOpenActive, tcpfsm.StateSynSent},
	{tcpfsm.EventRcvSynAck, tcpfsm.StateEstablished},
	{tcpfsm.EventClose, tcpfsm.StateFinWait1},
	{tcpfsm.EventRcvAckOfFin, tcpfsm.StateFinWait2},
	{tcpfsm.EventRcvFin, tcpfsm.StateTimeWait},
	{tcpfsm.EventTimeWaitTimeout, tcpfsm.StateClosed},
}

// benchEventNames are the cycle's event names, for looplab (no allocation in the loop).
var benchEventNames = func() (names [len(benchCycle)]string) {
	for i, c := range benchCycle {
		names[i] = c.event.String()
	}
	return names
}()

// tcpCounter is the benchmark's Handler: every action increments a counter,
// so no implementation can elide it. Like tcpRecorder it embeds a nil
// tcpfsm.Handler so that a new spec action breaks TestBenchmarkImplementations,
// not the package's build.
type tcpCounter struct {
	tcpfsm.Handler
	calls  [tcpfsm.NumActions]uint64
	starts [tcpfsm.NumTimers]uint64
	stops  [tcpfsm.NumTimers]uint64
	total  time.Duration
}

func (h *tcpCounter) DeleteTcb() error         { h.calls[tcpfsm.ActionDeleteTcb]++; return nil }
func (h *tcpCounter) ArmFinTimeout() error     { h.calls[tcpfsm.ActionArmFinTimeout]++; return nil }
func (h *tcpCounter) SignalEstablished() error { h.calls[tcpfsm.ActionSignalEstablished]++; return nil }
func (h *tcpCounter) CreateTcb() error         { h.calls[tcpfsm.ActionCreateTcb]++; return nil }
func (h *tcpCounter) SndSyn() error            { h.calls[tcpfsm.ActionSndSyn]++; return nil }
func (h *tcpCounter) QueueData() error         { h.calls[tcpfsm.ActionQueueData]++; return nil }
func (h *tcpCounter) UpdateWindow() error      { h.calls[tcpfsm.ActionUpdateWindow]++; return nil }
func (h *tcpCounter) SignalClosing() error     { h.calls[tcpfsm.ActionSignalClosing]++; return nil }
func (h *tcpCounter) QueueFin() error          { h.calls[tcpfsm.ActionQueueFin]++; return nil }
func (h *tcpCounter) SignalReset() error       { h.calls[tcpfsm.ActionSignalReset]++; return nil }
func (h *tcpCounter) SndRst() error            { h.calls[tcpfsm.ActionSndRst]++; return nil }
func (h *tcpCounter) SndResetReply() error     { h.calls[tcpfsm.ActionSndResetReply]++; return nil }
func (h *tcpCounter) InitFromSyn() error       { h.calls[tcpfsm.ActionInitFromSyn]++; return nil }
func (h *tcpCounter) SndSynAck() error         { h.calls[tcpfsm.ActionSndSynAck]++; return nil }
func (h *tcpCounter) SndAck() error            { h.calls[tcpfsm.ActionSndAck]++; return nil }
func (h *tcpCounter) SignalRefused() error     { h.calls[tcpfsm.ActionSignalRefused]++; return nil }
func (h *tcpCounter) ReturnToListen() error    { h.calls[tcpfsm.ActionReturnToListen]++; return nil }
func (h *tcpCounter) SndChallengeAck() error   { h.calls[tcpfsm.ActionSndChallengeAck]++; return nil }
func (h *tcpCounter) ProcessAck() error        { h.calls[tcpfsm.ActionProcessAck]++; return nil }
func (h *tcpCounter) SignalClosed() error      { h.calls[tcpfsm.ActionSignalClosed]++; return nil }
func (h *tcpCounter) AcceptData() error        { h.calls[tcpfsm.ActionAcceptData]++; return nil }
func (h *tcpCounter) AcceptFin() error         { h.calls[tcpfsm.ActionAcceptFin]++; return nil }
func (h *tcpCounter) Retransmit() error        { h.calls[tcpfsm.ActionRetransmit]++; return nil }
func (h *tcpCounter) SignalTimeout() error     { h.calls[tcpfsm.ActionSignalTimeout]++; return nil }

func (h *tcpCounter) Passive() bool          { return false }
func (h *tcpCounter) FinAcked() bool         { return false }
func (h *tcpCounter) RetriesExhausted() bool { return false }

func (h *tcpCounter) Rto() time.Duration         { return time.Second }
func (h *tcpCounter) UserTimeout() time.Duration { return 5 * time.Minute }
func (h *tcpCounter) TwoMsl() time.Duration      { return 4 * time.Minute }
func (h *tcpCounter) FinTimeout() time.Duration  { return time.Minute }

func (h *tcpCounter) StartTimer(t tcpfsm.Timer, d time.Duration) { h.starts[t]++; h.total += d }
func (h *tcpCounter) StopTimer(t tcpfsm.Timer)                   { h.stops[t]++ }

var _ tcpfsm.Handler = (*tcpCounter)(nil)

// errHandRejected is what the hand-written machine returns for any other event.
var errHandRejected = errors.New("handwritten: event rejected")

// handTCP is the floor: a hand-written nested switch with exactly the cycle's
// transitions, running the spec's exit, transition and entry actions in order.
type handTCP struct {
	state tcpfsm.State
	h     tcpfsm.Handler
}

// Fire delivers e.
func (m *handTCP) Fire(e tcpfsm.Event) error {
	h := m.h
	switch m.state {
	case tcpfsm.StateClosed:
		switch e {
		case tcpfsm.EventOpenPassive:
			if err := h.CreateTcb(); err != nil {
				return err
			}
			m.state = tcpfsm.StateListen
			return nil
		case tcpfsm.EventOpenActive:
			if err := h.CreateTcb(); err != nil {
				return err
			}
			if err := h.SndSyn(); err != nil {
				return err
			}
			h.StartTimer(tcpfsm.TimerRetransmit, h.Rto())
			m.state = tcpfsm.StateSynSent
			return nil
		}
	case tcpfsm.StateListen:
		if e == tcpfsm.EventRcvSyn {
			if err := h.InitFromSyn(); err != nil {
				return err
			}
			if err := h.SndSynAck(); err != nil {
				return err
			}
			h.StartTimer(tcpfsm.TimerRetransmit, h.Rto())
			m.state = tcpfsm.StateSynReceived
			return nil
		}
	case tcpfsm.StateSynSent:
		if e == tcpfsm.EventRcvSynAck {
			if err := h.InitFromSyn(); err != nil {
				return err
			}
			if err := h.SndAck(); err != nil {
				return err
			}
			m.state = tcpfsm.StateEstablished
			return h.SignalEstablished()
		}
	case tcpfsm.StateSynReceived:
		if e == tcpfsm.EventRcvAckOfSyn {
			if err := h.ProcessAck(); err != nil {
				return err
			}
			m.state = tcpfsm.StateEstablished
			return h.SignalEstablished()
		}
	case tcpfsm.StateEstablished:
		switch e {
		case tcpfsm.EventRcvFin:
			if err := h.AcceptFin(); err != nil {
				return err
			}
			m.state = tcpfsm.StateCloseWait
			return nil
		case tcpfsm.EventClose:
			if err := h.QueueFin(); err != nil {
				return err
			}
			m.state = tcpfsm.StateFinWait1
			return nil
		}
	case tcpfsm.StateCloseWait:
		if e == tcpfsm.EventClose {
			if err := h.QueueFin(); err != nil {
				return err
			}
			m.state = tcpfsm.StateLastAck
			return nil
		}
	case tcpfsm.StateLastAck:
		if e == tcpfsm.EventRcvAckOfFin {
			if err := h.ProcessAck(); err != nil {
				return err
			}
			if err := h.SignalClosed(); err != nil {
				return err
			}
			m.state = tcpfsm.StateClosed
			return handEnterClosed(h)
		}
	case tcpfsm.StateFinWait1:
		if e == tcpfsm.EventRcvAckOfFin {
			if err := h.ProcessAck(); err != nil {
				return err
			}
			m.state = tcpfsm.StateFinWait2
			return h.ArmFinTimeout()
		}
	case tcpfsm.StateFinWait2:
		if e == tcpfsm.EventRcvFin {
			h.StopTimer(tcpfsm.TimerFinWait2)
			if err := h.AcceptFin(); err != nil {
				return err
			}
			m.state = tcpfsm.StateTimeWait
			h.StopTimer(tcpfsm.TimerRetransmit)
			h.StopTimer(tcpfsm.TimerUserTimeout)
			h.StartTimer(tcpfsm.TimerTimeWait, h.TwoMsl())
			return nil
		}
	case tcpfsm.StateTimeWait:
		if e == tcpfsm.EventTimeWaitTimeout {
			m.state = tcpfsm.StateClosed
			return handEnterClosed(h)
		}
	}
	return errHandRejected
}

// handEnterClosed runs CLOSED's entry actions.
func handEnterClosed(h tcpfsm.Handler) error {
	h.StopTimer(tcpfsm.TimerRetransmit)
	h.StopTimer(tcpfsm.TimerUserTimeout)
	h.StopTimer(tcpfsm.TimerTimeWait)
	h.StopTimer(tcpfsm.TimerFinWait2)
	return h.DeleteTcb()
}

// The library configurations share the cycle's actions: transition actions
// by (source, event), entry and exit actions by state.

type benchKey struct {
	from  tcpfsm.State
	event tcpfsm.Event
}

var benchTransitionActions = map[benchKey]func(tcpfsm.Handler) error{
	{tcpfsm.StateClosed, tcpfsm.EventOpenPassive}: func(h tcpfsm.Handler) error { return h.CreateTcb() },
	{tcpfsm.StateListen, tcpfsm.EventRcvSyn}: func(h tcpfsm.Handler) error {
		if err := h.InitFromSyn(); err != nil {
			return err
		}
		if err := h.SndSynAck(); err != nil {
			return err
		}
		h.StartTimer(tcpfsm.TimerRetransmit, h.Rto())
		return nil
	},
	{tcpfsm.StateSynReceived, tcpfsm.EventRcvAckOfSyn}: func(h tcpfsm.Handler) error { return h.ProcessAck() },
	{tcpfsm.StateEstablished, tcpfsm.EventRcvFin}:      func(h tcpfsm.Handler) error { return h.AcceptFin() },
	{tcpfsm.StateCloseWait, tcpfsm.EventClose}:         func(h tcpfsm.Handler) error { return h.QueueFin() },
	{tcpfsm.StateLastAck, tcpfsm.EventRcvAckOfFin}: func(h tcpfsm.Handler) error {
		if err := h.ProcessAck(); err != nil {
			return err
		}
		return h.SignalClosed()
	},
	{tcpfsm.StateClosed, tcpfsm.EventOpenActive}: func(h tcpfsm.Handler) error {
		if err := h.CreateTcb(); err != nil {
			return err
		}
		if err := h.SndSyn(); err != nil {
			return err
		}
		h.StartTimer(tcpfsm.TimerRetransmit, h.Rto())
		return nil
	},
	{tcpfsm.StateSynSent, tcpfsm.EventRcvSynAck}: func(h tcpfsm.Handler) error {
		if err := h.InitFromSyn(); err != nil {
			return err
		}
		return h.SndAck()
	},
	{tcpfsm.StateEstablished, tcpfsm.EventClose}:        func(h tcpfsm.Handler) error { return h.QueueFin() },
	{tcpfsm.StateFinWait1, tcpfsm.EventRcvAckOfFin}:     func(h tcpfsm.Handler) error { return h.ProcessAck() },
	{tcpfsm.StateFinWait2, tcpfsm.EventRcvFin}:          func(h tcpfsm.Handler) error { return h.AcceptFin() },
	{tcpfsm.StateTimeWait, tcpfsm.EventTimeWaitTimeout}: func(tcpfsm.Handler) error { return nil },
}

var benchEntryActions = map[tcpfsm.State]func(tcpfsm.Handler) error{
	tcpfsm.StateEstablished: func(h tcpfsm.Handler) error { return h.SignalEstablished() },
	tcpfsm.StateFinWait2:    func(h tcpfsm.Handler) error { return h.ArmFinTimeout() },
	tcpfsm.StateClosed:      handEnterClosed,
	tcpfsm.StateTimeWait: func(h tcpfsm.Handler) error {
		h.StopTimer(tcpfsm.TimerRetransmit)
		h.StopTimer(tcpfsm.TimerUserTimeout)
		h.StartTimer(tcpfsm.TimerTimeWait, h.TwoMsl())
		return nil
	},
}

var benchExitActions = map[tcpfsm.State]func(tcpfsm.Handler) error{
	tcpfsm.StateFinWait2: func(h tcpfsm.Handler) error { h.StopTimer(tcpfsm.TimerFinWait2); return nil },
}

// newLooplab configures looplab/fsm with the cycle: exit actions in
// leave_<state>, transition actions in leave_state (which runs next, before
// the state changes), entry actions in enter_<state>.
func newLooplab(h tcpfsm.Handler) *looplab.FSM {
	var events looplab.Events
	for _, c := range benchCycle {
		events = append(events, looplab.EventDesc{Name: c.event.String(), Dst: c.to.String()})
	}
	for i := range events {
		prev := tcpfsm.StateClosed
		if i > 0 {
			prev = benchCycle[i-1].to
		}
		events[i].Src = []string{prev.String()}
	}
	byName := map[string]tcpfsm.State{}
	for _, s := range tcpfsm.States {
		byName[s.String()] = s
	}
	eventByName := map[string]tcpfsm.Event{}
	for _, e := range tcpfsm.Events {
		eventByName[e.String()] = e
	}
	callbacks := looplab.Callbacks{
		"leave_state": func(_ context.Context, e *looplab.Event) {
			if err := benchTransitionActions[benchKey{byName[e.Src], eventByName[e.Event]}](h); err != nil {
				e.Cancel(err)
			}
		},
	}
	for s, entry := range benchEntryActions {
		callbacks["enter_"+s.String()] = func(_ context.Context, e *looplab.Event) {
			if err := entry(h); err != nil {
				e.Err = err
			}
		}
	}
	for s, exit := range benchExitActions {
		callbacks["leave_"+s.String()] = func(_ context.Context, e *looplab.Event) {
			if err := exit(h); err != nil {
				e.Cancel(err)
			}
		}
	}
	return looplab.NewFSM(tcpfsm.StateClosed.String(), events, callbacks)
}

// newStateless configures qmuntal/stateless with the cycle: exit actions in
// OnExit, transition actions in OnTransitioning (after exit, before entry),
// entry actions in OnEntry.
func newStateless(h tcpfsm.Handler) *stateless.StateMachine {
	sm := stateless.NewStateMachine(tcpfsm.StateClosed)
	from := tcpfsm.StateClosed
	for _, c := range benchCycle {
		sm.Configure(from).Permit(c.event, c.to)
		from = c.to
	}
	for s, entry := range benchEntryActions {
		sm.Configure(s).OnEntry(func(context.Context, ...any) error { return entry(h) })
	}
	for s, exit := range benchExitActions {
		sm.Configure(s).OnExit(func(context.Context, ...any) error { return exit(h) })
	}
	sm.OnTransitioning(func(_ context.Context, tr stateless.Transition) {
		if err := benchTransitionActions[benchKey{tr.Source.(tcpfsm.State), tr.Trigger.(tcpfsm.Event)}](h); err != nil {
			panic(err) // OnTransitioning cannot fail; the benchmark's handlers never do
		}
	})
	return sm
}

// benchImpl wraps each implementation for the correctness test.
type benchImpl struct {
	name string
	new  func(h tcpfsm.Handler) (fire func(i int) error, state func() tcpfsm.State)
}

var benchImpls = []benchImpl{
	{name: "generated", new: func(h tcpfsm.Handler) (func(int) error, func() tcpfsm.State) {
		m := tcpfsm.New(h)
		return func(i int) error { return m.Fire(benchCycle[i].event) }, m.State
	}},
	{name: "handwritten", new: func(h tcpfsm.Handler) (func(int) error, func() tcpfsm.State) {
		m := &handTCP{state: tcpfsm.StateClosed, h: h}
		return func(i int) error { return m.Fire(benchCycle[i].event) }, func() tcpfsm.State { return m.state }
	}},
	{name: "looplab", new: func(h tcpfsm.Handler) (func(int) error, func() tcpfsm.State) {
		f := newLooplab(h)
		return func(i int) error { return f.Event(context.Background(), benchEventNames[i]) }, func() tcpfsm.State {
			for _, s := range tcpfsm.States {
				if s.String() == f.Current() {
					return s
				}
			}
			return tcpfsm.NumStates
		}
	}},
	{name: "stateless", new: func(h tcpfsm.Handler) (func(int) error, func() tcpfsm.State) {
		sm := newStateless(h)
		return func(i int) error { return sm.Fire(benchCycle[i].event) }, func() tcpfsm.State { return sm.MustState().(tcpfsm.State) }
	}},
}

// TestBenchmarkImplementations checks, outside any timing, that every
// benchmarked implementation takes the cycle's transitions, ends each half
// cycle in CLOSED, and runs exactly the actions the spec prescribes, in order.
func TestBenchmarkImplementations(t *testing.T) {
	m := genParseSpec(t, "../spec/tcp793.yaml")
	// The spec's own account of the cycle, all guards false.
	var want, wantTimers []string
	state := m.InitialState().Name
	for _, c := range benchCycle {
		out := m.Step(state, c.event.String(), func(string) bool { return false })
		if out.Result != spec.Taken || out.Next != c.to.String() {
			t.Fatalf("spec: %s on %s = %s to %s, benchmark expects %s", state, c.event, out.Result, out.Next, c.to)
		}
		want = append(want, specActionStrings(out.Actions)...)
		wantTimers = append(wantTimers, specTimerCalls(m, out.Actions)...)
		state = out.Next
	}
	want = slices.Concat(want, want) // two rounds
	wantTimers = slices.Concat(wantTimers, wantTimers)

	var counts []*tcpCounter
	for _, impl := range benchImpls {
		t.Run(impl.name, func(t *testing.T) {
			rec := &tcpRecorder{}
			fire, state := impl.new(rec)
			for round := range 2 {
				for i, c := range benchCycle {
					if err := fire(i); err != nil {
						t.Fatalf("round %d: %s: %v", round, c.event, err)
					}
					if got := state(); got != c.to {
						t.Fatalf("round %d: after %s in state %s, want %s", round, c.event, got, c.to)
					}
				}
				if got := state(); got != tcpfsm.StateClosed {
					t.Fatalf("round %d ended in %s", round, got)
				}
			}
			if !slices.Equal(rec.log, want) {
				t.Errorf("actions:\n got %v\nwant %v", rec.log, want)
			}
			if !slices.Equal(rec.timers, wantTimers) {
				t.Errorf("timer calls:\n got %q\nwant %q", rec.timers, wantTimers)
			}

			// The counting handler sees the same calls.
			h := &tcpCounter{}
			fire, _ = impl.new(h)
			for i := range 10 * len(benchCycle) {
				if err := fire(i % len(benchCycle)); err != nil {
					t.Fatal(err)
				}
			}
			counts = append(counts, h)
		})
	}
	for i := 1; i < len(counts); i++ {
		if *counts[i] != *counts[0] {
			t.Errorf("%s counted %+v, %s counted %+v", benchImpls[i].name, *counts[i], benchImpls[0].name, *counts[0])
		}
	}
}

// benchCheck finishes the current cycle outside the timing and checks that
// the machine is back in CLOSED with one delete_tcb per half cycle.
func benchCheck(b *testing.B, h *tcpCounter, j, done int, fire func(int) error, state func() tcpfsm.State) {
	b.Helper()
	b.StopTimer()
	for ; j < len(benchCycle); j++ {
		if err := fire(j); err != nil {
			b.Fatal(err)
		}
		done++
	}
	if s := state(); s != tcpfsm.StateClosed {
		b.Fatalf("cycle ended in %s", s)
	}
	if got, want := h.calls[tcpfsm.ActionDeleteTcb], uint64(done/len(benchCycle)*2); got != want {
		b.Fatalf("delete_tcb ran %d times in %d transitions, want %d", got, done, want)
	}
}

// BenchmarkTransition measures one transition of the TCP cycles.
func BenchmarkTransition(b *testing.B) {
	b.Run("generated", func(b *testing.B) {
		h := &tcpCounter{}
		m := tcpfsm.New(h)
		b.ReportAllocs()
		j, n := 0, 0
		for b.Loop() {
			if err := m.Fire(benchCycle[j].event); err != nil {
				b.Fatal(err)
			}
			if j++; j == len(benchCycle) {
				j = 0
			}
			n++
		}
		benchCheck(b, h, j, n, func(i int) error { return m.Fire(benchCycle[i].event) }, m.State)
	})
	b.Run("handwritten", func(b *testing.B) {
		h := &tcpCounter{}
		m := &handTCP{state: tcpfsm.StateClosed, h: h}
		b.ReportAllocs()
		j, n := 0, 0
		for b.Loop() {
			if err := m.Fire(benchCycle[j].event); err != nil {
				b.Fatal(err)
			}
			if j++; j == len(benchCycle) {
				j = 0
			}
			n++
		}
		benchCheck(b, h, j, n, func(i int) error { return m.Fire(benchCycle[i].event) }, func() tcpfsm.State { return m.state })
	})
	b.Run("looplab", func(b *testing.B) {
		h := &tcpCounter{}
		f := newLooplab(h)
		ctx := context.Background()
		b.ReportAllocs()
		j, n := 0, 0
		for b.Loop() {
			if err := f.Event(ctx, benchEventNames[j]); err != nil {
				b.Fatal(err)
			}
			if j++; j == len(benchCycle) {
				j = 0
			}
			n++
		}
		benchCheck(b, h, j, n, func(i int) error { return f.Event(ctx, benchEventNames[i]) }, func() tcpfsm.State {
			if f.Current() != tcpfsm.StateClosed.String() {
				return tcpfsm.NumStates
			}
			return tcpfsm.StateClosed
		})
	})
	b.Run("stateless", func(b *testing.B) {
		h := &tcpCounter{}
		sm := newStateless(h)
		b.ReportAllocs()
		j, n := 0, 0
		for b.Loop() {
			if err := sm.Fire(benchCycle[j].event); err != nil {
				b.Fatal(err)
			}
			if j++; j == len(benchCycle) {
				j = 0
			}
			n++
		}
		benchCheck(b, h, j, n, func(i int) error { return sm.Fire(benchCycle[i].event) }, func() tcpfsm.State { return sm.MustState().(tcpfsm.State) })
	})
}
