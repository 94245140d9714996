package tests

import (
	"fmt"
	"os"
	"testing"

	fsmrt "github.com/fsmgen/fsmgen/runtime"
)

// TestMain records the spec transitions the simulation, HTTP and interop
// tests drive the stack through; with FSMTCP_COVERAGE_DIR set the counts are
// written there so tests/covertable can print them together with the
// runtime package's (conformance) counts.
func TestMain(m *testing.M) {
	fsmrt.RecordTransitionCoverage(true)
	code := m.Run()
	if dir := os.Getenv("FSMTCP_COVERAGE_DIR"); dir != "" {
		if err := fsmrt.WriteCoverage(dir, "tests.tsv", fsmrt.TransitionCoverage()); err != nil {
			fmt.Fprintln(os.Stderr, "coverage:", err)
			code = 1
		}
	}
	os.Exit(code)
}
