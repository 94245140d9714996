package runtime_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
	fsmrt "github.com/fsmgen/fsmgen/runtime"
)

// unreachableInPractice lists transitions of spec/tcp793.yaml that the real
// stack cannot take, with the reason. Every other transition must be
// exercised by this package's tests (the per-state conformance suite).
var unreachableInPractice = map[[3]string]string{
	{"SYN-RECEIVED", "RCV_FIN", "CLOSE-WAIT"}: "a FIN without ACK is dropped (§3.10.7.4 fifth) and a FIN with an acceptable ACK first moves SYN-RECEIVED to ESTABLISHED",
	{"LISTEN", "OPEN_ACTIVE", "SYN-SENT"}:     "the net API (like BSD sockets) has no call that turns a listening endpoint active",
	{"LISTEN", "SEND", "SYN-SENT"}:            "the net API cannot write on a listener",
	{"SYN-SENT", "SEND", "SYN-SENT"}:          "Dial returns only once ESTABLISHED, so no Write can precede it",
	{"SYN-RECEIVED", "SEND", "SYN-RECEIVED"}:  "Dial and Accept return only ESTABLISHED connections, so no Write can precede them",
	{"SYN-SENT", "CLOSE", "CLOSED"}:           "no handle exists before ESTABLISHED; a canceled Dial is an ABORT (§3.10.5)",
	{"SYN-RECEIVED", "CLOSE", "FIN-WAIT-1"}:   "no handle exists before ESTABLISHED; a canceled Dial or Stack.Close is an ABORT (§3.10.5)",
}

// TestMain records which spec transitions the tests drive the stack
// through; a full run (no -run filter) fails if any transition not listed
// in unreachableInPractice was never taken. With FSMTCP_COVERAGE_DIR set it
// also writes the counts there for aggregation with the other suites
// (see tests/covertable).
func TestMain(m *testing.M) {
	fsmrt.RecordTransitionCoverage(true)
	code := m.Run()
	hits := fsmrt.TransitionCoverage()
	if dir := os.Getenv("FSMTCP_COVERAGE_DIR"); dir != "" {
		if err := fsmrt.WriteCoverage(dir, "runtime.tsv", hits); err != nil {
			fmt.Fprintln(os.Stderr, "coverage:", err)
			code = 1
		}
	}
	if code == 0 && fullRun() {
		if missing := uncovered(hits); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: spec transitions never taken by the stack (add a test, or list them in unreachableInPractice with a reason):\n")
			for _, s := range missing {
				fmt.Fprintln(os.Stderr, "  ", s)
			}
			fmt.Fprint(os.Stderr, fsmrt.CoverageTable(hits))
			code = 1
		}
	}
	os.Exit(code)
}

// fullRun reports whether every test ran (no -run or -skip filter, no -short).
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

func uncovered(hits [tcpfsm.NumTransitions]uint64) []string {
	var out []string
	for i, t := range tcpfsm.Transitions {
		key := [3]string{t.From.String(), t.Event.String(), t.To.String()}
		if _, ok := unreachableInPractice[key]; hits[i] == 0 && !ok {
			g := ""
			if t.Guard != "" {
				g = " [" + t.Guard + "]"
			}
			out = append(out, fmt.Sprintf("#%d %v --%v%s--> %v", i, t.From, t.Event, g, t.To))
		}
	}
	return out
}

// TestUnreachableListIsAccurate keeps the exemption list honest: an
// exempted transition must exist in the spec.
func TestUnreachableListIsAccurate(t *testing.T) {
	for key := range unreachableInPractice {
		found := false
		for _, tr := range tcpfsm.Transitions {
			if [3]string{tr.From.String(), tr.Event.String(), tr.To.String()} == key {
				found = true
			}
		}
		if !found {
			t.Errorf("unreachableInPractice lists %v, which is not a transition of the spec", key)
		}
	}
}
