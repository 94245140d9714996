package gogen_test

import (
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsmgen/fsmgen/gen/gogen"
	"github.com/fsmgen/fsmgen/gen/spec"
)

// TestMinimalMachineCompiles: a machine with no actions, guards or timers
// still yields a package that compiles and vets (no unused handler, every
// type used by the error types has String).
func TestMinimalMachineCompiles(t *testing.T) {
	m, err := spec.Parse("bare.yaml", []byte(`machine: bare
states:
  - {name: A, initial: true, final: true}
  - {name: B}
events:
  - {name: GO}
transitions:
  - {from: A, on: GO, to: B}
  - {from: B, on: GO, to: A}
`))
	if err != nil {
		t.Fatal(err)
	}
	src, err := gogen.Generate(m, gogen.Config{Source: "bare.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if formatted, err := format.Source(src); err != nil || string(formatted) != string(src) {
		t.Fatalf("output is not gofmt'd (err %v)", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/bare\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bare_fsm.go"), src, 0o644)
	cmd := exec.Command("go", "vet", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet on the generated package: %v\n%s", err, out)
	}
}
