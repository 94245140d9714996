package diagram

import (
	"strings"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// transitionLabel is the text drawn on a transition's edge: its Label when
// the spec gives one, otherwise "EVENT [guard] / action, action".
func transitionLabel(t *spec.Transition) string {
	if t.Label != "" {
		return t.Label
	}
	return eventGuardActions(t)
}

// eventGuardActions spells a transition as "EVENT [guard] / action, action",
// leaving out the guard and action parts when they are empty.
func eventGuardActions(t *spec.Transition) string {
	var b strings.Builder
	b.WriteString(t.On)
	if len(t.Guard) > 0 {
		b.WriteString(" [")
		b.WriteString(t.GuardText())
		b.WriteString("]")
	}
	if len(t.Actions) > 0 {
		b.WriteString(" / ")
		b.WriteString(actionList(t.Actions))
	}
	return b.String()
}

// actionList joins actions in their spec spelling ("start TIMER" for timers).
func actionList(as []spec.Action) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}
