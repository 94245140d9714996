// Package tests is fsmgen's generator test suite: malformed specs and their
// exact errors, golden files for the generated Go, an end-to-end run of the
// generated packages in a temporary module, a property test of the generated
// TCP machine against the reference interpreter, and BenchmarkTransition.
//
// Regenerate the golden files with
//
//	go test ./tests -run 'Golden|BadSpecs' -update
package tests

import (
	"bytes"
	"flag"
	"go/format"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fsmgen/fsmgen/gen/gogen"
	"github.com/fsmgen/fsmgen/gen/spec"
)

func init() {
	// Other test files of this package may declare -update too; share it.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files instead of comparing with them")
	}
}

// genUpdating reports whether -update was given.
func genUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// genSpec is a valid spec the generator is tested on.
type genSpec struct {
	name string // machine name: golden file testdata/golden/<name>_fsm.go.golden
	path string // relative to this directory
}

// genSpecs are the specs whose generated Go is golden-tested and run end to end.
var genSpecs = []genSpec{
	{"tcp793", "../spec/tcp793.yaml"},
	{"trafficlight", "testdata/trafficlight.yaml"},
	{"player", "testdata/player.yaml"},
}

// genParseSpec parses a spec file, failing the test on error.
func genParseSpec(t testing.TB, path string) *spec.Machine {
	t.Helper()
	m, err := spec.ParseFile(path)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return m
}

// genGoSource runs the Go emitter the way cmd/fsmgen does: the header records
// the spec's base name.
func genGoSource(t testing.TB, m *spec.Machine, path string) []byte {
	t.Helper()
	src, err := gogen.Generate(m, gogen.Config{Source: filepath.Base(path)})
	if err != nil {
		t.Fatalf("generating %s: %v", path, err)
	}
	return src
}

// genCheckGolden compares got with the golden file, or rewrites it under -update.
func genCheckGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if genUpdating() {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./tests -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test ./tests -update to accept):\n%s", golden, genLineDiff(want, got))
	}
}

// genLineDiff describes the first line where want and got differ.
func genLineDiff(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		w, g := "<EOF>", "<EOF>"
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return "(no line differs)"
}

// TestGoldenGo checks the generated Go of every valid spec against its golden
// file, and that generation is deterministic and gofmt'd.
func TestGoldenGo(t *testing.T) {
	for _, ts := range genSpecs {
		t.Run(ts.name, func(t *testing.T) {
			m := genParseSpec(t, ts.path)
			if m.Name != ts.name {
				t.Fatalf("machine name %q, want %q", m.Name, ts.name)
			}
			got := genGoSource(t, m, ts.path)

			// Deterministic: the same machine again, and a fresh parse.
			for i := 0; i < 3; i++ {
				if again := genGoSource(t, m, ts.path); !bytes.Equal(got, again) {
					t.Fatalf("second generation from the same machine differs:\n%s", genLineDiff(got, again))
				}
			}
			if again := genGoSource(t, genParseSpec(t, ts.path), ts.path); !bytes.Equal(got, again) {
				t.Fatalf("generation from a fresh parse differs:\n%s", genLineDiff(got, again))
			}

			if !bytes.HasPrefix(got, []byte(gogen.Header+"\n")) {
				t.Errorf("output does not start with %q", gogen.Header)
			}
			if gofmted, err := format.Source(got); err != nil {
				t.Errorf("output does not parse: %v", err)
			} else if !bytes.Equal(gofmted, got) {
				t.Errorf("output is not gofmt'd:\n%s", genLineDiff(got, gofmted))
			}

			genCheckGolden(t, filepath.Join("testdata", "golden", ts.name+"_fsm.go.golden"), got)
		})
	}
}

// TestGeneratedTCPFresh checks that the committed generated/tcpfsm package is
// what the generator produces from spec/tcp793.yaml now.
func TestGeneratedTCPFresh(t *testing.T) {
	const committed = "../generated/tcpfsm/tcp793_fsm.go"
	m := genParseSpec(t, "../spec/tcp793.yaml")
	got, err := gogen.Generate(m, gogen.Config{Source: "tcp793.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale; run go generate ./generated:\n%s", committed, genLineDiff(want, got))
	}
}
