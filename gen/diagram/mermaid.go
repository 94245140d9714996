package diagram

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// Mermaid renders m as a Mermaid stateDiagram-v2, the flavour GitHub and
// GitLab draw inside ```mermaid fences.
//
// The diagram shows what Dot shows: "[*] --> initial", "final --> [*]", and
// one arrow per (source, target) pair whose label has a line (<br/>) per
// transition, each the transition's Label or "EVENT [guard] / action,
// action"; internal transitions are self-loops. States whose names Mermaid
// cannot use as IDs (SYN-SENT, or keywords such as "note") get an alias:
// state "SYN-SENT" as SYN_SENT. Label characters that Mermaid's parser
// treats as syntax (: ; # % " < > &) are written as Mermaid entity codes
// such as #58; and render as the original characters.
func Mermaid(m *spec.Machine) []byte {
	ids := mermaidIDs(m)
	var b bytes.Buffer
	b.WriteString("stateDiagram-v2\n")
	for _, s := range m.States {
		if ids[s.Name] != s.Name {
			fmt.Fprintf(&b, "    state \"%s\" as %s\n", mermaidStateText(s.Name), ids[s.Name])
		}
	}
	if init := m.InitialState(); init != nil {
		fmt.Fprintf(&b, "    [*] --> %s\n", ids[init.Name])
	}
	for _, e := range newLayout(m).edges {
		var lines []string
		for _, t := range e.trans {
			lines = appendNew(lines, mermaidText(transitionLabel(t)))
		}
		fmt.Fprintf(&b, "    %s --> %s : %s\n", ids[e.from], ids[e.to], strings.Join(lines, "<br/>"))
	}
	for _, s := range m.States {
		if s.Final {
			fmt.Fprintf(&b, "    %s --> [*]\n", ids[s.Name])
		}
	}
	return b.Bytes()
}

// mermaidReserved are words Mermaid's state-diagram lexer reads as keywords
// (case-insensitively) where a state ID would go.
var mermaidReserved = map[string]bool{
	"state": true, "note": true, "end": true, "default": true, "direction": true,
	"class": true, "classdef": true, "style": true, "scale": true, "hide": true,
	"acctitle": true, "accdescr": true, "as": true, "left": true, "right": true,
	"of": true, "statediagram": true, "statediagram-v2": true,
}

var nonIDChar = regexp.MustCompile(`[^A-Za-z0-9_]`)

// mermaidIDs maps each state name to the ID used in the diagram: the name
// itself when Mermaid accepts it, otherwise the name with other characters
// replaced by '_' (and '_' appended until it is unique and not a keyword).
func mermaidIDs(m *spec.Machine) map[string]string {
	ids := make(map[string]string, len(m.States))
	used := map[string]bool{}
	for _, s := range m.States {
		if !nonIDChar.MatchString(s.Name) && !mermaidReserved[strings.ToLower(s.Name)] {
			ids[s.Name] = s.Name
			used[s.Name] = true
		}
	}
	for _, s := range m.States {
		if _, ok := ids[s.Name]; ok {
			continue
		}
		id := nonIDChar.ReplaceAllString(s.Name, "_")
		for used[id] || mermaidReserved[strings.ToLower(id)] || id == "" {
			id += "_"
		}
		ids[s.Name] = id
		used[id] = true
	}
	return ids
}

// mermaidStateText makes a state name safe inside state "..." (which ends
// at the next quote).
func mermaidStateText(s string) string {
	return strings.ReplaceAll(s, `"`, "#quot;")
}

// mermaidEntities are the label characters Mermaid would misread: ':' and
// ';' end a transition label, '#' starts a comment or entity, "%%" starts a
// comment, and the rest are HTML-significant in the rendered label.
var mermaidEntities = map[rune]string{
	':': "#58;", ';': "#59;", '#': "#35;", '%': "#37;",
	'"': "#quot;", '<': "#lt;", '>': "#gt;", '&': "#amp;",
}

// mermaidDirection matches text the lexer would take for a direction
// statement anywhere on a line.
var mermaidDirection = regexp.MustCompile(`(?i)(direction)\s+(TB|BT|RL|LR)`)

// mermaidText escapes one line of label text for a transition label.
func mermaidText(s string) string {
	var b strings.Builder
	for _, r := range strings.Join(strings.Fields(s), " ") {
		if e, ok := mermaidEntities[r]; ok {
			b.WriteString(e)
		} else {
			b.WriteRune(r)
		}
	}
	return mermaidDirection.ReplaceAllString(b.String(), "${1}#32;${2}")
}
