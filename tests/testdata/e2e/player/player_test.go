// Hand-written end-to-end tests of the package generated from
// tests/testdata/player.yaml; tests/e2e_test.go copies this file next to the
// generated code and the generated recorder (support_test.go).

package player

import (
	"errors"
	"slices"
	"testing"
)

// fire delivers e and checks the resulting error, state and actions.
func fire(t *testing.T, m *Machine, rec *recorder, e Event, wantState State, wantLog ...string) error {
	t.Helper()
	rec.log = nil
	err := m.Fire(e)
	if m.State() != wantState {
		t.Errorf("after %s: state %s, want %s", e, m.State(), wantState)
	}
	if !slices.Equal(rec.log, wantLog) {
		t.Errorf("after %s: ran %q, want %q", e, rec.log, wantLog)
	}
	return err
}

// rejected checks that err is the rejection of e in s with reason.
func rejected(t *testing.T, err error, s State, e Event, reason string) {
	t.Helper()
	var rj *RejectedError
	if !errors.As(err, &rj) || !errors.Is(err, ErrRejected) {
		t.Fatalf("%s in %s: Fire = %v, want a *RejectedError", e, s, err)
	}
	if rj.State != s || rj.Event != e || rj.Reason != reason {
		t.Errorf("%s in %s: %+v, want reason %q", e, s, *rj, reason)
	}
	if want := "player: " + e.String() + " in state " + s.String() + ": " + reason; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestNestedGroups(t *testing.T) {
	members := map[string][]State{
		"active": {StatePlaying, StateBuffering},
		"loaded": {StatePaused, StatePlaying, StateBuffering},
		"busy":   {StateLoading, StatePaused, StatePlaying, StateBuffering},
	}
	for _, s := range States {
		for group, in := range map[string]bool{"active": s.InActive(), "loaded": s.InLoaded(), "busy": s.InBusy()} {
			if want := slices.Contains(members[group], s); in != want {
				t.Errorf("%s.In%s() = %v, want %v", s, group, in, want)
			}
		}
	}
}

func TestPlayback(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	if err := fire(t, m, rec, EventStop, StateStopped); err != nil { // ignore rule
		t.Fatal(err)
	}
	if err := fire(t, m, rec, EventLoad, StateLoading, "open_media", "show_spinner"); err != nil {
		t.Fatal(err)
	}
	// Guarded transition disabled: the reject rule's reason.
	rejected(t, fire(t, m, rec, EventPlay, StateLoading), StateLoading, EventPlay, "still loading")
	rec.guards = GuardSet(0).With(GuardHeaderReady, true)
	if err := fire(t, m, rec, EventPlay, StatePlaying, "hide_spinner", "resume", "start_clock"); err != nil {
		t.Fatal(err)
	}
	// Internal transitions from a group and from "*" with an on-list.
	for _, e := range []Event{EventTick, EventVolumeUp, EventVolumeDown, EventData} {
		want := map[Event]string{EventTick: "advance", EventVolumeUp: "set_volume", EventVolumeDown: "set_volume", EventData: "buffer"}[e]
		if err := fire(t, m, rec, e, StatePlaying, want); err != nil {
			t.Fatal(err)
		}
	}
	if err := fire(t, m, rec, EventStall, StateBuffering, "stop_clock", "show_spinner"); err != nil {
		t.Fatal(err)
	}
	rec.guards = GuardSet(0).With(GuardLowWater, true)
	if err := fire(t, m, rec, EventData, StateBuffering, "buffer"); err != nil {
		t.Fatal(err)
	}
	rec.guards = 0
	if err := fire(t, m, rec, EventData, StatePlaying, "hide_spinner", "buffer", "start_clock"); err != nil {
		t.Fatal(err)
	}
	if err := fire(t, m, rec, EventPause, StatePaused, "stop_clock", "suspend"); err != nil {
		t.Fatal(err)
	}
	if err := fire(t, m, rec, EventPause, StatePaused); err != nil { // ignore rule
		t.Fatal(err)
	}
	rejected(t, fire(t, m, rec, EventLoad, StatePaused), StatePaused, EventLoad, "media already loaded; STOP first")
	if err := fire(t, m, rec, EventFail, StateFailed, "close_media", "report", "show_error"); err != nil {
		t.Fatal(err)
	}
	rejected(t, fire(t, m, rec, EventPlay, StateFailed), StateFailed, EventPlay, "nothing loaded")
	// default: reject, no rule.
	rejected(t, fire(t, m, rec, EventTick, StateFailed), StateFailed, EventTick, "no transition")
	if err := fire(t, m, rec, EventReset, StateStopped, "clear_error"); err != nil {
		t.Fatal(err)
	}
}

// TestVolumeEverywhere checks the "*" transition in every state, started by
// Restore (which runs no entry action).
func TestVolumeEverywhere(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	for _, s := range States {
		if err := m.Restore(s); err != nil {
			t.Fatal(err)
		}
		if err := fire(t, m, rec, EventVolumeDown, s, "set_volume"); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	n := 0
	for _, tr := range Transitions {
		if tr.Event == EventVolumeUp || tr.Event == EventVolumeDown {
			n++
			if !tr.Internal || tr.To != tr.From {
				t.Errorf("volume row %+v is not internal", tr)
			}
		}
	}
	if n != 2*NumStates {
		t.Errorf("%d volume rows, want %d", n, 2*NumStates)
	}
}

// TestQueuedRejection checks that an event queued from inside an action runs
// after the transition and that its rejection is what the outer Fire returns.
func TestQueuedRejection(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	rec.hook = map[string]func(){"open_media": func() {
		if err := m.Fire(EventPause); err != nil {
			t.Errorf("Fire from a handler = %v, want nil (queued)", err)
		}
	}}
	err := fire(t, m, rec, EventLoad, StateLoading, "open_media", "show_spinner")
	rejected(t, err, StateLoading, EventPause, "no transition")

	// A queued event stops the queue when it is rejected.
	rec.hook = map[string]func(){"decode_header": func() {
		m.Fire(EventLoad) // rejected in PAUSED
		m.Fire(EventPlay) // dropped
	}}
	err = fire(t, m, rec, EventData, StatePaused, "hide_spinner", "decode_header")
	rejected(t, err, StatePaused, EventLoad, "media already loaded; STOP first")
}

func TestObserverSeesInternal(t *testing.T) {
	rec := &recorder{}
	m := New(rec)
	m.Restore(StatePlaying)
	var ids []TransitionID
	m.SetObserver(func(from State, e Event, to State, id TransitionID) { ids = append(ids, id) })
	m.Fire(EventTick)
	m.Fire(EventLoad) // rejected: not observed
	if len(ids) != 1 || !Transitions[ids[0]].Internal || Transitions[ids[0]].Event != EventTick {
		t.Errorf("observed rows %v", ids)
	}
}
