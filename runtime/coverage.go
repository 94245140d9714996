package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
)

// Transition coverage: which rows of tcpfsm.Transitions the real stack has
// taken. Recording is process-wide and off by default; when off it costs
// nothing (connections install no observer for it).
var (
	coverageOn   atomic.Bool
	coverageHits [tcpfsm.NumTransitions]atomic.Uint64
)

// RecordTransitionCoverage turns process-wide transition counting on or off
// for connections created afterwards.
func RecordTransitionCoverage(on bool) { coverageOn.Store(on) }

// TransitionCoverage returns how often each row of tcpfsm.Transitions was
// taken since recording started.
func TransitionCoverage() [tcpfsm.NumTransitions]uint64 {
	var out [tcpfsm.NumTransitions]uint64
	for i := range out {
		out[i] = coverageHits[i].Load()
	}
	return out
}

// CoverageTable formats hit counts as a Markdown table, one row per
// transition of the spec.
func CoverageTable(hits [tcpfsm.NumTransitions]uint64) string {
	var b strings.Builder
	b.WriteString("| # | from | event | guard | to | hits |\n| --- | --- | --- | --- | --- | --- |\n")
	for i, t := range tcpfsm.Transitions {
		fmt.Fprintf(&b, "| %d | %v | %v | %s | %v | %d |\n", i, t.From, t.Event, t.Guard, t.To, hits[i])
	}
	return b.String()
}

// WriteCoverage writes hits to dir/name as "row<TAB>count" lines, for
// aggregating coverage across test binaries.
func WriteCoverage(dir, name string, hits [tcpfsm.NumTransitions]uint64) error {
	var b strings.Builder
	for i, h := range hits {
		fmt.Fprintf(&b, "%d\t%d\n", i, h)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
}

// observe is the connection's transition observer: coverage, the user's
// Observer and the slog trace, whichever are on.
func (c *conn) observe(from tcpfsm.State, e tcpfsm.Event, to tcpfsm.State, id tcpfsm.TransitionID) {
	if coverageOn.Load() {
		coverageHits[id].Add(1)
	}
	if c.s.opts.Observer != nil {
		c.s.opts.Observer(from, e, to, id)
	}
	if c.s.opts.Trace != nil {
		c.trace(from, e, to, id)
	}
}
