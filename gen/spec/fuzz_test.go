package spec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// FuzzParse feeds any bytes to the parser and validator: they must never
// panic, and must return either a machine or positioned errors (file:line:col
// with a message), never both or neither.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../../spec/*.yaml", "../../tests/testdata/*.yaml", "../../tests/testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := spec.Parse("fuzz.yaml", src)
		switch {
		case err == nil && m == nil:
			t.Fatal("no machine and no error")
		case err != nil && m != nil:
			t.Fatal("both a machine and an error")
		case err != nil:
			var list spec.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 || strings.TrimSpace(e.Msg) == "" {
					t.Fatalf("badly positioned error: %q", e.Error())
				}
			}
		default:
			// A valid spec must also step: every (state, event) pair answers.
			for _, s := range m.States {
				for _, e := range m.Events {
					m.Step(s.Name, e.Name, func(string) bool { return false })
				}
			}
		}
	})
}
