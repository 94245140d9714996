package diagram

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// startNode is the DOT ID of the point the initial arrow starts from. Spec
// names start with a letter, so it cannot clash with a state.
const startNode = "_start"

// loopPad separates a self-loop's label from the loop: two no-break spaces,
// written as the HTML entities Graphviz decodes in labels.
const loopPad = "&#160;&#160;"

// Dot renders m as a Graphviz digraph, laid out top to bottom like the
// state diagram of RFC 9293 (Figure 5).
//
// Node IDs are the state names. A small point node "_start" points at the
// initial state, which is drawn bold; final states get a double outline.
// Each transition is an edge from each of its source states (a transition
// from a group becomes one edge per member), labelled with its Label or
// "EVENT [guard] / action, action"; transitions between the same pair of
// states share one arrow whose label has a line per transition (identical
// lines once). Internal transitions are dashed grey self-loops. Tooltips
// carry the docs.
//
// Layout hints: rankdir=TB with the initial state on top. Edges into the
// initial state (resets, like X -> CLOSED) have weight 0 and a shared head,
// and dot turns them into a fan out of the initial state instead of
// tangling them through the graph; other edges leading back up, to a state
// nearer the initial one by breadth-first distance, have constraint=false;
// so states rank by their distance along forward paths and sinks such as
// TIME-WAIT end at the bottom. Where an arrow would cross a self-loop's
// label, the loop moves to the left of its state or the state's reset arrow
// leaves from its top: Dot lays the graph out with the bundled Graphviz to
// find those (see tune), so the output still depends on nothing but m.
func Dot(m *spec.Machine) []byte {
	l := newLayout(m)
	return writeDot(m, l, tune(m, l))
}

// writeDot writes the DOT for m's layout l with the adjustments tu.
func writeDot(m *spec.Machine, l *layout, tu tuning) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("digraph %s {\n", dotID(m.Name))
	w("\tgraph [rankdir=TB, fontname=\"Helvetica\", fontsize=12, nodesep=0.5, ranksep=0.55, newrank=true];\n")
	w("\tnode [shape=box, style=\"rounded,filled\", fillcolor=\"#f4f6f8\", color=\"#33475b\", fontname=\"Helvetica\", fontsize=11, height=0.4, margin=\"0.15,0.06\"];\n")
	w("\tedge [fontname=\"Helvetica\", fontsize=9, color=\"#33475b\", fontcolor=\"#1f2d3d\", arrowsize=0.7];\n")

	if init := m.InitialState(); init != nil {
		w("\t%s [shape=point, width=0.12, style=filled, fillcolor=\"#33475b\", label=\"\", tooltip=\"start\"];\n", dotID(startNode))
	}
	for _, s := range m.States {
		attrs := []string{}
		if s.Initial {
			attrs = append(attrs, "penwidth=2")
		}
		if s.Final {
			attrs = append(attrs, "peripheries=2")
		}
		if tip := stateTooltip(s); tip != "" {
			attrs = append(attrs, "tooltip="+dotString(tip))
		}
		w("\t%s", dotID(s.Name))
		if len(attrs) > 0 {
			w(" [%s]", strings.Join(attrs, ", "))
		}
		w(";\n")
	}

	if init := m.InitialState(); init != nil {
		w("\t%s -> %s;\n", dotID(startNode), dotID(init.Name))
	}
	// A state with both an internal and an external self-loop draws them on
	// opposite sides, so that neither loop's label lands inside the other.
	loops := map[string]int{}
	for _, e := range l.edges {
		if e.from == e.to {
			loops[e.from]++
		}
	}
	twoLoops := map[string]bool{}
	for s, n := range loops {
		twoLoops[s] = n > 1
	}
	for _, e := range l.edges {
		var lines, docs []string
		for _, t := range e.trans {
			lines = appendNew(lines, transitionLabel(t))
			if t.Doc != "" {
				docs = appendNew(docs, t.Doc)
			}
		}
		left := e.from == e.to && tu.leftLoops[e.from] != (e.internal && twoLoops[e.from])
		label := dotLines(lines)
		if e.from == e.to {
			// Graphviz puts a loop's label flush against the loop; two
			// no-break spaces on the loop's side of each line keep them
			// apart.
			for i := range lines {
				lines[i] = dotEscape(lines[i])
				if left {
					lines[i] += loopPad
				} else {
					lines[i] = loopPad + lines[i]
				}
			}
			label = `"` + strings.Join(lines, `\n`) + `"`
		}
		attrs := []string{"label=" + label}
		if left {
			attrs = append(attrs, "tailport=w", "headport=w")
		}
		if len(docs) > 0 {
			attrs = append(attrs, "tooltip="+dotLines(docs))
		}
		if e.internal {
			attrs = append(attrs, "style=dashed", "color=\"#8a9bb0\"", "fontcolor=\"#5a6b80\"")
		}
		switch {
		case e.reset:
			// Left constrained: dot reverses these edges to break the cycles
			// they close, which fans them out of the initial state at the
			// top instead of tangling them; weight 0 lets them be long.
			attrs = append(attrs, "weight=0", "samehead=reset")
			if tu.topReset[e.from] {
				attrs = append(attrs, "tailport=n")
			}
		case e.back:
			attrs = append(attrs, "constraint=false")
		}
		w("\t%s -> %s [%s];\n", dotID(e.from), dotID(e.to), strings.Join(attrs, ", "))
	}
	w("}\n")
	return b.Bytes()
}

// stateTooltip is the hover text of a state: its doc, entry and exit actions.
func stateTooltip(s *spec.State) string {
	var lines []string
	if s.Doc != "" {
		lines = append(lines, strings.TrimSpace(s.Doc))
	}
	if len(s.Entry) > 0 {
		lines = append(lines, "entry / "+actionList(s.Entry))
	}
	if len(s.Exit) > 0 {
		lines = append(lines, "exit / "+actionList(s.Exit))
	}
	return strings.Join(lines, "\n")
}

// dotID quotes a DOT identifier. Spec names are letters, digits, '-' and
// '_', so quoting is all they need; a quote would be escaped as \".
func dotID(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// dotString quotes text for a DOT label or tooltip (an escString): quotes
// and backslashes are escaped, each newline becomes the centred line break
// \n, and an '&' that would start an HTML entity (Graphviz decodes those in
// labels) becomes &amp;, so Graphviz shows the text exactly as given.
func dotString(s string) string {
	return `"` + dotEscape(s) + `"`
}

// dotEscape is dotString without the quotes.
func dotEscape(s string) string {
	var b strings.Builder
	s = strings.ReplaceAll(s, "\r\n", "\n")
	for i, r := range s {
		switch r {
		case '&':
			if htmlEntity.MatchString(s[i:]) {
				b.WriteString("&amp;")
			} else {
				b.WriteByte('&')
			}
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// htmlEntity matches an HTML entity at the start of a string.
var htmlEntity = regexp.MustCompile(`^&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);`)

// appendNew appends s to list unless it is already there.
func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// dotLines quotes lines as one DOT label with a line break between them.
func dotLines(lines []string) string {
	return dotString(strings.Join(lines, "\n"))
}
