// Hand-written end-to-end tests of the package generated from
// tests/testdata/trafficlight.yaml; tests/e2e_test.go copies this file next
// to the generated code and the generated recorder (support_test.go).

package traffic

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fire delivers e and checks the resulting state and actions.
func fire(t *testing.T, m *Machine, rec *recorder, e Event, wantState State, wantLog ...string) {
	t.Helper()
	rec.log, rec.timers = nil, nil
	if err := m.Fire(e); err != nil {
		t.Fatalf("Fire(%s): %v", e, err)
	}
	if m.State() != wantState {
		t.Errorf("after %s: state %s, want %s", e, m.State(), wantState)
	}
	if !slices.Equal(rec.log, wantLog) {
		t.Errorf("after %s: ran %q, want %q", e, rec.log, wantLog)
	}
}

func TestNewRunsNoEntryActions(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	if m.State() != StateRed || len(rec.log) != 0 {
		t.Fatalf("New: state %s, ran %q; want RED and nothing", m.State(), rec.log)
	}
	var embedded struct{ m Machine }
	embedded.m.Init(rec)
	if embedded.m.State() != StateRed || len(rec.log) != 0 {
		t.Fatalf("Init: state %s, ran %q", embedded.m.State(), rec.log)
	}
}

// TestDayCycle checks exit → transition → entry order and timers.
func TestDayCycle(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	fire(t, m, rec, EventTick, StateGreen, "stop phase", "red_off", "count_cycle", "green_on", "start phase")
	if want := []string{"stop phase", "start phase 1s"}; !slices.Equal(rec.timers, want) {
		t.Errorf("timers %q, want %q", rec.timers, want)
	}
	// Internal transition: no exit or entry actions.
	fire(t, m, rec, EventButton, StateGreen, "record_request")
	// A second press: the guarded transition is disabled and the ignore rule applies.
	rec.guards = rec.guards.With(GuardPedestrianWaiting, true)
	fire(t, m, rec, EventButton, StateGreen)
	fire(t, m, rec, EventTick, StateYellow, "stop phase", "green_off", "clear_request", "yellow_on", "start amber")
	if want := []string{"stop phase", "start amber 2s"}; !slices.Equal(rec.timers, want) {
		t.Errorf("timers %q, want %q", rec.timers, want)
	}
	rec.guards = 0
	fire(t, m, rec, EventTick, StateYellow) // stale phase timer: ignored
	fire(t, m, rec, EventAmberDone, StateRed, "yellow_off", "red_on", "start phase")
}

// TestSelfTransition checks that a transition back to the same state runs
// exit and entry actions, unlike an internal one.
func TestSelfTransition(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	if err := m.Restore(StateGreen); err != nil {
		t.Fatal(err)
	}
	fire(t, m, rec, EventTick, StateGreen, "stop phase", "green_off", "extend_green", "green_on", "start phase")
	fire(t, m, rec, EventNight, StateGreen, "enable_night")
	// Guard conjunction "!pedestrian_waiting && night".
	rec.guards = GuardSet(0).With(GuardNight, true)
	fire(t, m, rec, EventTick, StateYellow, "stop phase", "green_off", "yellow_on", "start amber")
}

func TestNightMode(t *testing.T) {
	rec := &recorder{guards: GuardSet(0).With(GuardNight, true)}
	m := New(rec)
	fire(t, m, rec, EventTick, StateFlashing, "stop phase", "red_off", "start blink")
	if want := []string{"stop phase", "start blink 3s"}; !slices.Equal(rec.timers, want) {
		t.Errorf("timers %q, want %q", rec.timers, want)
	}
	fire(t, m, rec, EventBlink, StateFlashing, "toggle_yellow", "start blink")
	fire(t, m, rec, EventButton, StateFlashing)
	fire(t, m, rec, EventDay, StateRed, "stop blink", "yellow_off", "disable_night", "red_on", "start phase")
	fire(t, m, rec, EventPowerOff, StateOff, "stop phase", "red_off", "log_power_off", "all_off")
	fire(t, m, rec, EventPowerOff, StateOff)
	fire(t, m, rec, EventDay, StateRed, "power_on", "red_on", "start phase")
}

// TestRunToCompletion checks that an event fired from inside an action is
// queued and runs after the current transition has completed.
func TestRunToCompletion(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	var inner error
	var logAtInner []string
	var stateAtInner State
	rec.hook = map[string]func(){"enable_night": func() {
		inner = m.Fire(EventPowerOff)
		logAtInner = slices.Clone(rec.log)
		stateAtInner = m.State()
	}}
	fire(t, m, rec, EventNight, StateOff, "enable_night", "stop phase", "red_off", "log_power_off", "all_off")
	if inner != nil || stateAtInner != StateRed || !slices.Equal(logAtInner, []string{"enable_night"}) {
		t.Errorf("inner Fire = %v in state %s after %q; want nil, RED, [enable_night]", inner, stateAtInner, logAtInner)
	}

	// More than QueueCap events raised in one Fire: the rest are refused.
	rec.hook = map[string]func(){"power_on": func() {
		for i := range QueueCap + 1 {
			err := m.Fire(EventButton)
			if i < QueueCap && err != nil || i == QueueCap && !errors.Is(err, ErrQueueFull) {
				t.Errorf("Fire #%d from a handler = %v", i, err)
			}
		}
	}}
	rec.log = nil
	if err := m.Fire(EventDay); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.log); n != 3+QueueCap {
		t.Errorf("ran %d actions, want power_on, red_on, start phase and %d record_request: %q", n, QueueCap, rec.log)
	}
	rec.hook = nil
	fire(t, m, rec, EventButton, StateRed, "record_request") // the queue was reset
}

func TestActionError(t *testing.T) {
	boom := errors.New("boom")
	rec := &recorder{fail: map[string]error{"red_off": boom}}
	m := New(rec)
	err := m.Fire(EventTick)
	var ae *ActionError
	if !errors.As(err, &ae) || !errors.Is(err, boom) {
		t.Fatalf("Fire = %v, want an *ActionError wrapping boom", err)
	}
	if ae.State != StateRed || ae.Event != EventTick || ae.Action != ActionRedOff {
		t.Errorf("ActionError %+v", *ae)
	}
	if want := "traffic: action red_off on TICK in state RED: boom"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if m.State() != StateRed || !slices.Equal(rec.log, []string{"stop phase", "red_off"}) {
		t.Errorf("exit action failed: state %s, ran %q; want RED, the actions up to the failure", m.State(), rec.log)
	}

	// An entry action fails: the state has changed; the rest does not run and
	// queued events are dropped.
	rec.fail = map[string]error{"green_on": boom}
	rec.hook = map[string]func(){"count_cycle": func() { _ = m.Fire(EventButton) }}
	rec.log = nil
	err = m.Fire(EventTick)
	if !errors.As(err, &ae) || ae.State != StateGreen || ae.Action != ActionGreenOn {
		t.Fatalf("Fire = %v, want green_on failing in GREEN", err)
	}
	if want := []string{"stop phase", "red_off", "count_cycle", "green_on"}; !slices.Equal(rec.log, want) {
		t.Errorf("ran %q, want %q", rec.log, want)
	}
	rec.fail, rec.hook = nil, nil
	fire(t, m, rec, EventButton, StateGreen, "record_request")
}

func TestRestore(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	for _, s := range States {
		if err := m.Restore(s); err != nil || m.State() != s {
			t.Fatalf("Restore(%s) = %v, state %s", s, err, m.State())
		}
	}
	if len(rec.log) != 0 {
		t.Errorf("Restore ran %q", rec.log)
	}
	if err := m.Restore(NumStates); err == nil {
		t.Error("Restore(NumStates) succeeded")
	}
	m.Restore(StateFlashing)
	var during error
	rec.hook = map[string]func(){"toggle_yellow": func() { during = m.Restore(StateRed) }}
	fire(t, m, rec, EventBlink, StateFlashing, "toggle_yellow", "start blink")
	if during == nil {
		t.Error("Restore during Fire succeeded")
	}
}

func TestObserver(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	var seen []string
	m.SetObserver(func(from State, e Event, to State, id TransitionID) {
		tr := Transitions[id]
		if tr.From != from || tr.Event != e || tr.To != to {
			t.Errorf("observer: %s -%s-> %s, but Transitions[%d] is %+v", from, e, to, id, tr)
		}
		seen = append(seen, fmt.Sprintf("%s-%s->%s", from, e, to))
	})
	m.Fire(EventTick)   // RED → GREEN
	m.Fire(EventButton) // internal
	m.Fire(EventBlink)  // ignored: not observed
	m.SetObserver(nil)
	m.Fire(EventPowerOff)
	if want := []string{"RED-TICK->GREEN", "GREEN-BUTTON->GREEN"}; !slices.Equal(seen, want) {
		t.Errorf("observed %q, want %q", seen, want)
	}
}

func TestStepAndTable(t *testing.T) {
	g := GuardSet(0).With(GuardPedestrianWaiting, true)
	next, acts, id, r := Step(StateGreen, EventTick, g)
	if next != StateYellow || r != Taken || Transitions[id].Doc != "A waiting pedestrian ends the green phase." {
		t.Fatalf("Step = %s, %s, row %+v", next, r, Transitions[id])
	}
	if want := []Action{ActionStopPhase, ActionGreenOff, ActionClearRequest, ActionYellowOn, ActionStartAmber}; !slices.Equal(acts, want) {
		t.Errorf("actions %v, want %v", acts, want)
	}
	if tr := Transitions[4]; tr.Guard != "!pedestrian_waiting && !night" || tr.To != StateGreen || tr.Internal {
		t.Errorf("row 4 (the guard list form) = %+v", tr)
	}
	if tr := Transitions[5]; !tr.Internal || tr.Label != "" || tr.Guard != "!pedestrian_waiting" {
		t.Errorf("row 5 (internal) = %+v", tr)
	}
	if _, _, _, r := Step(StateGreen, EventButton, g); r != Ignored {
		t.Errorf("Step(GREEN, BUTTON, waiting) = %s, want ignored", r)
	}
	if StateFlashing.String() != "FLASHING" || State(200).String() != "State(200)" || EventAmberDone.String() != "AMBER_DONE" {
		t.Error("String methods")
	}
	if EventTick.Kind() != KindTimer || EventButton.Kind() != KindInput || EventDay.Kind() != KindUser {
		t.Error("Event kinds")
	}
	if TimerAmber.Event() != EventAmberDone || TimerPhase.String() != "phase" {
		t.Error("Timer methods")
	}
	if ActionStartBlink.String() != "start blink" || GuardPedestrianWaiting.String() != "pedestrian_waiting" {
		t.Error("Action and Guard names")
	}
	if durations["amber_time"] != 2*time.Second {
		t.Error("recorder durations")
	}
}
