package verify

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// coverageFindings reports states no peer entered and transitions no peer
// took, over every exploration.
func (v *verifier) coverageFindings() {
	x := v.x
	for i, s := range x.states {
		if !v.cov.states[i] {
			v.report.Findings = append(v.report.Findings, &Finding{Severity: Warning, Kind: "unreachable-state", Pos: s.Pos,
				Msg: fmt.Sprintf("state %s is never entered by either peer", s.Name)})
		}
	}
	for _, t := range x.m.Transitions {
		var missing []string
		for _, f := range t.From {
			if !v.cov.rows[[2]int{t.Index, x.stateIdx[f]}] {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			continue
		}
		to := t.To
		if t.Internal() {
			to = "(internal)"
		}
		guard := ""
		if len(t.Guard) > 0 {
			guard = " [" + t.GuardText() + "]"
		}
		where := ""
		if len(missing) < len(t.From) {
			where = " from " + strings.Join(missing, ", ")
		}
		v.report.Findings = append(v.report.Findings, &Finding{Severity: Warning, Kind: "untaken-transition", Pos: t.Pos,
			Msg: fmt.Sprintf("transition %s --%s%s--> %s is never taken%s", t.FromText, t.On, guard, to, where)})
	}
	sort.SliceStable(v.report.Findings, func(i, j int) bool {
		a, b := v.report.Findings[i], v.report.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		return false
	})
}

// Write prints the report: the explorations, each property's verdict with
// its counterexample, the findings with their traces, and a summary line.
// verbose adds the witnesses of reachable properties.
func (r *Report) Write(w io.Writer, verbose bool) error {
	var b strings.Builder
	o := r.Options
	var ch []string
	if o.Loss {
		ch = append(ch, "lossy")
	}
	if o.Dup {
		ch = append(ch, "duplicating")
	}
	if o.Reorder {
		ch = append(ch, "reordering")
	} else {
		ch = append(ch, "FIFO")
	}
	host := "none"
	if len(r.HostTimers) > 0 {
		host = strings.Join(r.HostTimers, ", ")
	}
	fmt.Fprintf(&b, "verify %s: peers A and B; channels of capacity %d (%s); retries %d; host timers: %s\n",
		r.Machine, o.Capacity, strings.Join(ch, ", "), o.Retries, host)
	for _, s := range r.Scenarios {
		cut := ""
		if s.Truncated {
			cut = " (cut short)"
		}
		fmt.Fprintf(&b, "  scenario %s (%s): %d start configurations, %d states, %d transitions%s\n", s.Name, s.Mode, s.Starts, s.States, s.Transitions, cut)
	}
	for _, p := range r.Properties {
		pr := p.Property
		verdict := "proved"
		if !p.Proved {
			verdict = "VIOLATED"
		}
		from := "[initial, initial]"
		if pr.From[0] != "" || pr.From[1] != "" {
			from = fmt.Sprintf("[%s, %s]", orInitial(pr.From[0]), orInitial(pr.From[1]))
		}
		fmt.Fprintf(&b, "property %s: %s: %s [%s, %s] from %s: %s\n", pr.Name, verdict, pr.Kind, pr.Goal[0], pr.Goal[1], from, p.Detail)
		if p.Trace != nil && (!p.Proved || verbose) {
			p.Trace.write(&b, "    ")
		}
		if p.Proved {
			continue
		}
		if p.Rest != nil {
			fmt.Fprintf(&b, "  then, from step %d:\n", p.Rest.First-1)
			p.Rest.write(&b, "    ")
		}
		if p.Cycle != nil {
			fmt.Fprintf(&b, "  and round again, back to step %d:\n", p.Cycle.First-1)
			p.Cycle.write(&b, "    ")
		}
	}
	errs, warns := 0, 0
	for _, f := range r.Findings {
		if f.Severity == Error {
			errs++
		} else {
			warns++
		}
		pos := ""
		if f.Pos.File != "" {
			pos = f.Pos.String() + ": "
		}
		sc := ""
		if f.Scenario != "" {
			sc = " (scenario " + f.Scenario + ")"
		}
		fmt.Fprintf(&b, "%s: %s%s%s\n", f.Severity, pos, f.Msg, sc)
		if f.Trace != nil {
			f.Trace.write(&b, "    ")
		}
		if f.Cycle != nil {
			fmt.Fprintf(&b, "  and back to step %d:\n", f.Cycle.First-1)
			f.Cycle.write(&b, "    ")
		}
	}
	fmt.Fprintf(&b, "summary: %d states, %d transitions explored; %d of %d properties proved; %s, %s\n",
		r.States, r.Transitions, r.Proved(), len(r.Properties), count(errs, "error"), count(warns, "warning"))
	_, err := io.WriteString(w, b.String())
	return err
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func orInitial(s string) string {
	if s == "" {
		return "initial"
	}
	return s
}
