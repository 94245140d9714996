package tests

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// genBadSpecs lists every malformed spec under testdata/bad, one per error
// class. The exact error text is the golden file testdata/bad/NAME.err; each
// entry also names a fragment that file must contain, so that -update cannot
// quietly accept a message of the wrong class.
var genBadSpecs = []struct {
	file string
	want string
}{
	{"unknown_key.yaml", `unknown key "form" in transition; did you mean "from"?`},
	{"unknown_state.yaml", `unknown state "OPNE" in "to"; did you mean "OPEN"?`},
	{"unknown_event.yaml", `unknown event "puhs" in "on"; did you mean "push"?`},
	{"unknown_timer.yaml", `unknown timer "autoclose" in "start autoclose"; did you mean "auto_close"?`},
	{"group_order.yaml", `which is declared after it`},
	{"duplicate_names.yaml", `duplicate state "OPEN"`},
	{"no_initial.yaml", `no initial state`},
	{"two_initial.yaml", `is a second initial state`},
	{"unreachable.yaml", `state "LOCKED" is unreachable`},
	{"no_final_path.yaml", `state "JAMMED" cannot reach a final state`},
	{"nondeterministic_guard.yaml", `(both have guard "unlocked")`},
	{"nondeterministic_unguarded.yaml", `(neither has a guard)`},
	{"unhandled_pair.yaml", `unhandled: state "OPEN" has no transition for events pull, knock`},
	{"unhandled_guard.yaml", `unhandled: in state "OPEN" event "push" has no transition when clear && jammed`},
	{"dead_ignore.yaml", `ignore rule for event "knock" in state "SHUT" is dead`},
	{"dead_reject.yaml", `the guards of the transitions at testdata/bad/dead_reject.yaml:9:5, testdata/bad/dead_reject.yaml:10:5 cover every case`},
	{"rule_conflict.yaml", `is both rejected here and ignored`},
	{"yaml_syntax.yaml", `yaml_syntax.yaml:4:1: invalid YAML: did not find expected ',' or '}'`},
	{"yaml_tab.yaml", `yaml_tab.yaml:4:1: invalid YAML: found character that cannot start any token`},
	{"wrong_type.yaml", `to must be a single value, not a list`},
	{"bad_values.yaml", `unknown default policy "rejct"`},
	{"go_name_collision.yaml", `state "A_B" becomes Go name StateAB, as does state "A-B"`},
	{"reserved_names.yaml", `already declares as the type EventKind`},
}

// genErrLine is one error line: file:line:col: message.
var genErrLine = regexp.MustCompile(`^testdata/bad/[a-z_]+\.yaml:[1-9][0-9]*:[1-9][0-9]*: [^\n]+$`)

// TestBadSpecs parses every malformed spec and compares the exact error text
// with its golden .err file (go test ./tests -run BadSpecs -update rewrites them).
func TestBadSpecs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, c := range genBadSpecs {
		listed = append(listed, c.file)
	}
	for _, f := range files {
		if !slices.Contains(listed, filepath.Base(f)) {
			t.Errorf("%s is not listed in genBadSpecs", f)
		}
	}
	for _, c := range genBadSpecs {
		t.Run(strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
			path := "testdata/bad/" + c.file
			m, err := spec.ParseFile(path)
			if err == nil {
				t.Fatalf("ParseFile(%s) = machine %q, nil; want an error", path, m.Name)
			}
			if m != nil {
				t.Errorf("ParseFile returned a machine along with the error")
			}
			var list spec.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty spec.ErrorList: %v", err, err)
			}
			got := err.Error()
			for _, line := range strings.Split(got, "\n") {
				if !genErrLine.MatchString(line) {
					t.Errorf("error line %q is not file:line:col: message", line)
				}
			}
			for i := 1; i < len(list); i++ {
				a, b := list[i-1].Pos, list[i].Pos
				if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
					t.Errorf("errors not sorted by position: %s before %s", a, b)
				}
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("error does not contain %q:\n%s", c.want, got)
			}
			genCheckGolden(t, strings.TrimSuffix(path, ".yaml")+".err", []byte(got+"\n"))
		})
	}
}

// TestBadSpecsUnchecked checks that the semantic errors come from Validate:
// the same specs parse without it.
func TestBadSpecsUnchecked(t *testing.T) {
	for _, file := range []string{
		"no_initial.yaml", "two_initial.yaml", "unreachable.yaml", "no_final_path.yaml",
		"nondeterministic_guard.yaml", "nondeterministic_unguarded.yaml",
		"unhandled_pair.yaml", "unhandled_guard.yaml", "dead_ignore.yaml", "dead_reject.yaml", "rule_conflict.yaml",
	} {
		path := "testdata/bad/" + file
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := spec.ParseUnchecked(path, src)
		if err != nil {
			t.Errorf("ParseUnchecked(%s): %v", path, err)
			continue
		}
		if err := spec.Validate(m); err == nil {
			t.Errorf("Validate(%s) = nil, want an error", path)
		}
	}
}
