package pathtest

import (
	"bytes"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fsmgen/fsmgen/gen/gogen"
	"github.com/fsmgen/fsmgen/gen/spec"
)

// door has guards (one negated, one conjunction), a timer, entry and exit
// actions, a group, an internal transition and a self-target.
const door = `machine: door
package: door
states:
  - {name: SHUT, initial: true, final: true, entry: [light_off]}
  - {name: OPEN, entry: [light_on, start auto], exit: [stop auto]}
  - {name: LOCKED}
  - {name: ALARM, entry: [siren]}
groups:
  - {name: closed, states: [SHUT, LOCKED]}
events:
  - {name: open, kind: user}
  - {name: close, kind: user}
  - {name: lock, kind: user}
  - {name: unlock, kind: user}
  - {name: force}
  - {name: auto_close, kind: timer}
timers:
  - {name: auto, duration: hold, event: auto_close}
transitions:
  - {from: SHUT, on: open, to: OPEN}
  - {from: OPEN, on: close, to: SHUT}
  - {from: OPEN, on: auto_close, to: SHUT, actions: [chime]}
  - {from: OPEN, on: open, to: OPEN, actions: [chime]}
  - {from: SHUT, on: lock, guard: has_key, to: LOCKED, actions: [bolt]}
  - {from: SHUT, on: lock, guard: "!has_key", actions: [beep]}
  - {from: LOCKED, on: unlock, guard: "has_key && !alarm_set", to: SHUT, actions: [unbolt]}
  - {from: LOCKED, on: unlock, guard: "has_key && alarm_set", to: ALARM}
  - {from: closed, on: force, to: ALARM}
  - {from: ALARM, on: unlock, guard: has_key, to: SHUT, actions: [silence]}
default: ignore
`

// plain has no guards and no timers (a spec without any action is left
// out: gogen's output for it does not compile).
const plain = `machine: plain
states:
  - {name: X, initial: true, final: true}
  - {name: Y}
events:
  - {name: e}
transitions:
  - {from: X, on: e, to: Y, actions: [ping]}
  - {from: Y, on: e, to: X}
`

func parse(t *testing.T, src string) *spec.Machine {
	t.Helper()
	m, err := spec.Parse("door.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func path(c *Case) string {
	var parts []string
	for _, s := range c.Steps {
		g := ""
		for _, name := range []string{"has_key", "alarm_set"} {
			if v, ok := s.Guards[name]; ok {
				if !v {
					g += "!"
				}
				g += name + " "
			}
		}
		parts = append(parts, s.Event+"("+strings.TrimSpace(g)+")->"+s.Row.To)
	}
	return strings.Join(parts, " ")
}

func TestPlan(t *testing.T) {
	m := parse(t, door)
	rows, cases, uncovered := Plan(m)
	if len(rows) != 11 || len(cases) != 11 || len(uncovered) != 0 {
		t.Fatalf("%d rows, %d cases, %d uncovered", len(rows), len(cases), len(uncovered))
	}
	want := []string{
		"open()->OPEN",
		"open()->OPEN close()->SHUT",
		"open()->OPEN auto_close()->SHUT",
		"open()->OPEN open()->OPEN",
		"lock(has_key)->LOCKED",
		"lock(!has_key)->SHUT",
		"lock(has_key)->LOCKED unlock(has_key !alarm_set)->SHUT",
		"lock(has_key)->LOCKED unlock(has_key alarm_set)->ALARM",
		"force()->ALARM",
		"lock(has_key)->LOCKED force()->ALARM",
		"force()->ALARM unlock(has_key)->SHUT",
	}
	for i, c := range cases {
		if got := path(c); got != want[i] {
			t.Errorf("case %d (%s): %s, want %s", i, caseName(c.Row), got, want[i])
		}
		if c.Row.ID != i || c.Steps[len(c.Steps)-1].Row != c.Row {
			t.Errorf("case %d does not end with its row", i)
		}
	}
	// Actions in machine order: exit, transition, entry.
	last := cases[2].Steps[1]
	var acts []string
	for _, a := range last.Actions {
		acts = append(acts, a.String())
	}
	if got := strings.Join(acts, ","); got != "stop auto,chime,light_off" {
		t.Errorf("actions %s", got)
	}
}

func TestGenerateDeterministicAndFormatted(t *testing.T) {
	m := parse(t, door)
	a, err := Generate(m, Config{Source: "door.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(parse(t, door), Config{Source: "door.yaml"})
	if !bytes.Equal(a, b) {
		t.Error("output differs between runs")
	}
	f, err := format.Source(a)
	if err != nil || !bytes.Equal(f, a) {
		t.Errorf("output is not gofmt'd: %v", err)
	}
	if !bytes.HasPrefix(a, []byte(Header+"\n// Source: door.yaml\n\npackage door\n")) {
		t.Errorf("header:\n%s", a[:200])
	}
}

// TestEmittedTestsPass builds each generated package with its path tests in
// a temporary module and runs them; then checks that tests generated from a
// different spec fail against the same code.
func TestEmittedTestsPass(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skip("no go tool")
	}
	gotest := func(t *testing.T, fsm *spec.Machine, paths *spec.Machine) (string, error) {
		dir := t.TempDir()
		code, err := gogen.Generate(fsm, gogen.Config{Source: "spec.yaml"})
		if err != nil {
			t.Fatal(err)
		}
		tests, err := Generate(paths, Config{Source: "spec.yaml", Package: fsm.Package})
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{
			"go.mod":                    []byte("module example.com/pathtest\n\ngo 1.26\n"),
			fsm.Name + "_fsm.go":        code,
			fsm.Name + "_paths_test.go": tests,
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(goTool, "test", "-count=1", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, src := range []string{door, plain} {
		m := parse(t, src)
		if out, err := gotest(t, m, m); err != nil {
			t.Fatalf("%s: emitted tests fail: %v\n%s", m.Name, err, out)
		}
	}
	// A spec whose ALARM silencing runs another action: the tests expect
	// it, the code does not.
	changed := parse(t, strings.Replace(door, "actions: [silence]", "actions: [silence, light_on]", 1))
	out, err := gotest(t, parse(t, door), changed)
	if err == nil || !strings.Contains(out, `ran ["silence" "light_off"], want ["silence" "light_on" "light_off"]`) {
		t.Fatalf("diverging spec not caught: %v\n%s", err, out)
	}
}

// TestTCPPathsUpToDate checks the committed path tests of generated/tcpfsm
// against spec/tcp793.yaml.
func TestTCPPathsUpToDate(t *testing.T) {
	committed, err := os.ReadFile("../../generated/tcpfsm/tcp793_paths_test.go")
	if err != nil {
		t.Skip(err)
	}
	m, err := spec.ParseFile("../../spec/tcp793.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(m, Config{Source: "tcp793.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Error("generated/tcpfsm/tcp793_paths_test.go is stale; regenerate it: cd generated && go run github.com/fsmgen/fsmgen/cmd/fsmgen paths -o tcpfsm/tcp793_paths_test.go ../spec/tcp793.yaml")
	}
}
