package diagram

import (
	"bytes"
	"encoding/xml"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// Specs under tests/testdata written for these tests, and the flagship spec
// (tested when present).
const (
	trafficSpec = "../../tests/testdata/diagram_traffic.yaml"
	escapeSpec  = "../../tests/testdata/diagram_escape.yaml"
	sketchSpec  = "../../tests/testdata/diagram_tcp_sketch.yaml"
	tcpSpec     = "../../spec/tcp793.yaml"
)

func load(t *testing.T, path string) *spec.Machine {
	t.Helper()
	m, err := spec.ParseFile(path)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return m
}

func parse(t *testing.T, name, src string) *spec.Machine {
	t.Helper()
	m, err := spec.Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return m
}

const tinySrc = `machine: tiny
default: ignore
states:
  - {name: A, initial: true}
  - {name: B-2, final: true, doc: 'say "hi"'}
events:
  - {name: go}
  - {name: back}
  - {name: poke}
transitions:
  - {from: A, on: go, guard: "ok && !busy", to: B-2, actions: [x, y]}
  - {from: B-2, on: back, to: A, label: "back\\ \"home\"\nnow"}
  - {from: A, on: back, to: A}
  - {from: [A, B-2], on: poke, actions: [z]}
`

func TestDotTiny(t *testing.T) {
	got := string(Dot(parse(t, "tiny.yaml", tinySrc)))
	want := `digraph "tiny" {
	graph [rankdir=TB, fontname="Helvetica", fontsize=12, nodesep=0.5, ranksep=0.55, newrank=true];
	node [shape=box, style="rounded,filled", fillcolor="#f4f6f8", color="#33475b", fontname="Helvetica", fontsize=11, height=0.4, margin="0.15,0.06"];
	edge [fontname="Helvetica", fontsize=9, color="#33475b", fontcolor="#1f2d3d", arrowsize=0.7];
	"_start" [shape=point, width=0.12, style=filled, fillcolor="#33475b", label="", tooltip="start"];
	"A" [penwidth=2];
	"B-2" [peripheries=2, tooltip="say \"hi\""];
	"_start" -> "A";
	"A" -> "B-2" [label="go [ok && !busy] / x, y"];
	"B-2" -> "A" [label="back\\ \"home\"\nnow", weight=0, samehead=reset];
	"A" -> "A" [label="&#160;&#160;back"];
	"A" -> "A" [label="poke / z&#160;&#160;", tailport=w, headport=w, style=dashed, color="#8a9bb0", fontcolor="#5a6b80"];
	"B-2" -> "B-2" [label="&#160;&#160;poke / z", style=dashed, color="#8a9bb0", fontcolor="#5a6b80"];
}
`
	if got != want {
		t.Errorf("Dot mismatch\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDotString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash \N`, `"back\\slash \\N"`},
		{"two\nlines\r\nthree", `"two\nlines\nthree"`},
		{`a && b & c`, `"a && b & c"`},
		{`&lt; &#60; &#x3c; &amp`, `"&amp;lt; &amp;#60; &amp;#x3c; &amp"`},
		{`ends with \`, `"ends with \\"`},
	} {
		if got := dotString(c.in); got != c.want {
			t.Errorf("dotString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// dotEdge is one "FROM" -> "TO" [attrs] statement of a DOT graph.
type dotEdge struct{ from, to, attrs string }

var labelRE = regexp.MustCompile(`label="((?:[^"\\]|\\.)*)"`)

var dotEdgeRE = regexp.MustCompile(`(?m)^\t"([^"]*)" -> "([^"]*)"(?: \[(.*)\])?;$`)

func dotEdges(dot []byte) []dotEdge {
	var out []dotEdge
	for _, m := range dotEdgeRE.FindAllSubmatch(dot, -1) {
		out = append(out, dotEdge{string(m[1]), string(m[2]), string(m[3])})
	}
	return out
}

// TestDotTransitions checks that every (source state, transition) is drawn:
// an edge from the source to the target (the source for internal
// transitions) whose label has the transition's label as a line.
func TestDotTransitions(t *testing.T) {
	for _, path := range []string{trafficSpec, escapeSpec, sketchSpec, tcpSpec} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := load(t, path)
			edges := dotEdges(Dot(m))
			if len(edges) == 0 || edges[0].from != startNode || edges[0].to != m.InitialState().Name {
				t.Fatalf("first edge %v, want %s -> initial state", edges[0], startNode)
			}
			for _, tr := range m.Transitions {
				for _, from := range tr.From {
					line := dotEscape(transitionLabel(tr))
					found := false
					for _, e := range edges {
						if e.from != from || e.to != tr.Target(from) ||
							strings.Contains(e.attrs, "style=dashed") != tr.Internal() {
							continue
						}
						label := labelRE.FindStringSubmatch(e.attrs)[1]
						label = `\n` + strings.ReplaceAll(label, loopPad, "") + `\n`
						if strings.Contains(label, `\n`+line+`\n`) {
							found = true
						}
					}
					if !found {
						t.Errorf("no edge %s -> %s labelled %q", from, tr.Target(from), line)
					}
				}
			}
		})
	}
}

// TestDotRanking checks the layout hints on the TCP sketch: edges into the
// initial state are left for dot to reverse (weight 0), edges back up are
// unconstrained, and edges down or across keep constraining the ranks.
func TestDotRanking(t *testing.T) {
	m := load(t, sketchSpec)
	attrs := map[[2]string]string{}
	for _, e := range dotEdges(Dot(m)) {
		attrs[[2]string{e.from, e.to}] = e.attrs
	}
	for _, c := range []struct {
		from, to string
		want     string // substring of the attributes, or "!" + absent one
	}{
		{"TIME-WAIT", "CLOSED", "weight=0"},
		{"LISTEN", "CLOSED", "weight=0"},
		{"SYN-RECEIVED", "LISTEN", "constraint=false"},
		{"LISTEN", "SYN-SENT", "!constraint=false"}, // same BFS distance, kept
		{"SYN-SENT", "SYN-RECEIVED", "!constraint=false"},
		{"FIN-WAIT-2", "TIME-WAIT", "!constraint=false"},
		{"CLOSING", "TIME-WAIT", "!constraint=false"},
	} {
		a, ok := attrs[[2]string{c.from, c.to}]
		if !ok {
			t.Errorf("no edge %s -> %s", c.from, c.to)
			continue
		}
		if neg, ok := strings.CutPrefix(c.want, "!"); ok {
			if strings.Contains(a, neg) {
				t.Errorf("%s -> %s has %s: [%s]", c.from, c.to, neg, a)
			}
		} else if !strings.Contains(a, c.want) {
			t.Errorf("%s -> %s lacks %s: [%s]", c.from, c.to, c.want, a)
		}
	}
}

// svgGroup is a <g class="node|edge"> of a Graphviz SVG: its title and the
// y coordinate of its first text.
type svgGroup struct {
	class, title string
	y            float64
}

// parseSVG checks that b is well-formed XML and returns its node and edge
// groups in document order.
func parseSVG(t *testing.T, b []byte) []svgGroup {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []svgGroup
	var stack []int // per open <g>: index in out, or -1
	var inTitle, inText bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			switch tok.Name.Local {
			case "g":
				idx := -1
				for _, a := range tok.Attr {
					if a.Name.Local == "class" && (a.Value == "node" || a.Value == "edge") {
						out = append(out, svgGroup{class: a.Value, y: -1e9})
						idx = len(out) - 1
					}
				}
				stack = append(stack, idx)
			case "title":
				inTitle = true
			case "text":
				inText = true
				if g := current(stack); g >= 0 && out[g].y == -1e9 {
					for _, a := range tok.Attr {
						if a.Name.Local == "y" {
							out[g].y, _ = strconv.ParseFloat(a.Value, 64)
						}
					}
				}
			}
		case xml.EndElement:
			switch tok.Name.Local {
			case "g":
				stack = stack[:len(stack)-1]
			case "title":
				inTitle = false
			case "text":
				inText = false
			}
		case xml.CharData:
			if g := current(stack); inTitle && g >= 0 && out[g].title == "" {
				out[g].title = string(tok)
			}
			_ = inText
		}
	}
	return out
}

// current returns the innermost open node or edge group, or -1.
func current(stack []int) int {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] >= 0 {
			return stack[i]
		}
	}
	return -1
}

func TestSVG(t *testing.T) {
	for _, path := range []string{trafficSpec, escapeSpec, sketchSpec, tcpSpec} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := load(t, path)
			svg, err := SVG(m)
			if err != nil {
				t.Fatal(err)
			}
			again, err := SVG(m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(svg, again) {
				t.Error("two SVG renders differ")
			}
			groups := parseSVG(t, svg)
			nodes := map[string]bool{}
			var edgeTitles []string
			for _, g := range groups {
				if g.class == "node" {
					nodes[g.title] = true
				} else {
					edgeTitles = append(edgeTitles, g.title)
				}
			}
			for _, s := range m.States {
				if !nodes[s.Name] {
					t.Errorf("no <g class=\"node\"> titled %q", s.Name)
				}
			}
			var want []string
			for _, e := range dotEdges(Dot(m)) {
				want = append(want, e.from+"->"+e.to)
			}
			// Graphviz writes the edges in its own order.
			sort.Strings(edgeTitles)
			sort.Strings(want)
			if strings.Join(edgeTitles, "\n") != strings.Join(want, "\n") {
				t.Errorf("SVG edges:\n%s\nDOT edges:\n%s", strings.Join(edgeTitles, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestSVGTopToBottom checks the Figure 5 shape: the initial state CLOSED is
// the top state and TIME-WAIT the bottom one.
func TestSVGTopToBottom(t *testing.T) {
	for _, path := range []string{sketchSpec, tcpSpec} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := load(t, path)
			svg, err := SVG(m)
			if err != nil {
				t.Fatal(err)
			}
			y := map[string]float64{}
			for _, g := range parseSVG(t, svg) {
				if g.class == "node" && m.StateByName(g.title) != nil {
					y[g.title] = g.y // SVG y grows downwards
				}
			}
			for name, v := range y {
				if name != "CLOSED" && v <= y["CLOSED"] {
					t.Errorf("%s (y=%v) is not below CLOSED (y=%v)", name, v, y["CLOSED"])
				}
				if name != "TIME-WAIT" && v >= y["TIME-WAIT"] {
					t.Errorf("%s (y=%v) is not above TIME-WAIT (y=%v)", name, v, y["TIME-WAIT"])
				}
			}
		})
	}
}

func TestSVGConcurrent(t *testing.T) {
	m := load(t, trafficSpec)
	want, err := SVG(m)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := SVG(m)
			if err != nil {
				t.Error(err)
			} else if !bytes.Equal(got, want) {
				t.Error("concurrent SVG render differs")
			}
		}()
	}
	wg.Wait()
}

func TestDeterministic(t *testing.T) {
	for _, path := range []string{trafficSpec, escapeSpec, sketchSpec, tcpSpec} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			a, b := load(t, path), load(t, path)
			for name, f := range map[string]func(*spec.Machine) []byte{"Dot": Dot, "Mermaid": Mermaid, "Markdown": Markdown} {
				if !bytes.Equal(f(a), f(b)) {
					t.Errorf("%s differs between two parses of the same spec", name)
				}
			}
		})
	}
}

func TestMermaid(t *testing.T) {
	got := string(Mermaid(load(t, escapeSpec)))
	want := `stateDiagram-v2
    state "note" as note_
    state "Wait-State" as Wait_State
    state "end" as end_
    [*] --> idle
    idle --> note_ : a#58; b#59; c #35; d #37;#37; e #quot;f#quot; #lt;g#gt; #amp; h #amp;amp#59; direction#32;TB {i} |j| \k \N
    note_ --> Wait_State : go [ready #amp;#amp; !busy] / prep, fire
    Wait_State --> end_ : two lines
    idle --> idle : stop / log
    note_ --> note_ : stop / log
    end_ --> [*]
`
	if got != want {
		t.Errorf("Mermaid mismatch\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestMermaidSafe checks every Mermaid output line for what would break
// Mermaid's state-diagram parser.
func TestMermaidSafe(t *testing.T) {
	for _, path := range []string{trafficSpec, escapeSpec, sketchSpec, tcpSpec} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := load(t, path)
			out := string(Mermaid(m))
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if lines[0] != "stateDiagram-v2" {
				t.Fatalf("first line %q", lines[0])
			}
			arrows := 0
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, "    state ") {
					continue
				}
				from, rest, ok := strings.Cut(strings.TrimSpace(l), " --> ")
				if !ok {
					t.Errorf("unexpected line %q", l)
					continue
				}
				to, label, _ := strings.Cut(rest, " : ")
				for _, id := range []string{from, to} {
					if id != "[*]" && !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(id) {
						t.Errorf("bad state ID %q in %q", id, l)
					}
				}
				bare := strings.ReplaceAll(label, "<br/>", "")
				bare = regexp.MustCompile(`#([0-9]+|[a-z]+);`).ReplaceAllString(bare, "")
				if strings.ContainsAny(bare, ":;#%\"<>&") || regexp.MustCompile(`(?i)direction\s`).MatchString(bare) {
					t.Errorf("unescaped label in %q", l)
				}
				arrows++
			}
			edges := len(newLayout(m).edges) + 1 // + [*] --> initial
			for _, s := range m.States {
				if s.Final {
					edges++
				}
			}
			if arrows != edges {
				t.Errorf("%d arrows, want %d", arrows, edges)
			}
		})
	}
}

func TestMermaidIDs(t *testing.T) {
	m := parse(t, "ids.yaml", `machine: ids
default: ignore
states:
  - {name: State, initial: true}
  - {name: A-B}
  - {name: AB}
  - {name: End-1}
events: [{name: e}]
transitions:
  - {from: State, on: e, to: A-B}
  - {from: A-B, on: e, to: AB}
  - {from: AB, on: e, to: End-1}
`)
	ids := mermaidIDs(m)
	want := map[string]string{"State": "State_", "A-B": "A_B", "AB": "AB", "End-1": "End_1"}
	for name, id := range want {
		if ids[name] != id {
			t.Errorf("ID of %q = %q, want %q", name, ids[name], id)
		}
	}
}

// tables splits a Markdown page into its tables, keyed by the preceding
// "## " heading, each as rows of cells (header and separator dropped).
func tables(t *testing.T, md string) map[string][][]string {
	t.Helper()
	out := map[string][][]string{}
	heading := ""
	lines := strings.Split(md, "\n")
	for i, l := range lines {
		if h, ok := strings.CutPrefix(l, "## "); ok {
			heading = h
			continue
		}
		if !strings.HasPrefix(l, "|") || i > 0 && strings.HasPrefix(lines[i-1], "|") {
			continue
		}
		header := splitRow(l)
		rows := [][]string{}
		for j := i + 2; j < len(lines) && strings.HasPrefix(lines[j], "|"); j++ {
			row := splitRow(lines[j])
			if len(row) != len(header) {
				t.Errorf("table %q row %q has %d cells, header has %d", heading, lines[j], len(row), len(header))
			}
			rows = append(rows, row)
		}
		out[heading] = rows
	}
	return out
}

// splitRow splits a table row at unescaped pipes.
func splitRow(l string) []string {
	var cells []string
	var cur strings.Builder
	for i := 1; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			cur.WriteString(`\|`)
			i++
		case l[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(l[i])
		}
	}
	return cells
}

func TestMarkdown(t *testing.T) {
	for _, path := range []string{trafficSpec, escapeSpec, sketchSpec, tcpSpec} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := load(t, path)
			md := string(Markdown(m))
			if !strings.HasPrefix(md, "<!-- Code generated by fsmgen from "+filepath.Base(path)+". DO NOT EDIT. -->\n\n# "+m.Name+"\n") {
				t.Errorf("unexpected start:\n%s", md[:min(len(md), 200)])
			}
			if !strings.Contains(md, "```mermaid\n"+string(Mermaid(m))+"```\n") {
				t.Error("Mermaid diagram missing")
			}
			tabs := tables(t, md)
			transitions := 0
			for _, tr := range m.Transitions {
				transitions += len(tr.From)
			}
			for _, c := range []struct {
				heading string
				rows    int
			}{
				{"States", len(m.States)},
				{"Events", len(m.Events)},
				{"Timers", len(m.Timers)},
				{"Groups", len(m.Groups)},
				{"Transitions", transitions},
				{"Ignored events", len(m.Ignores)},
				{"Rejected events", len(m.Rejects)},
			} {
				if got := len(tabs[c.heading]); got != c.rows {
					t.Errorf("table %q has %d rows, want %d", c.heading, got, c.rows)
				}
			}
			// The transition rows follow the state order.
			row := 0
			for _, s := range m.States {
				for _, tr := range m.Transitions {
					if !contains(tr.From, s.Name) {
						continue
					}
					r := tabs["Transitions"][row]
					if r[0] != code(s.Name) || r[1] != code(tr.On) {
						t.Errorf("transition row %d = %q, want state %s event %s", row, r, s.Name, tr.On)
					}
					row++
				}
			}
		})
	}
}

func TestMarkdownEscaping(t *testing.T) {
	md := string(Markdown(load(t, escapeSpec)))
	for _, want := range []string{
		"| `idle` | Two lines \\| with a pipe, &lt;ACK> and 2\\*MSL.<br><br>A second paragraph. | | | initial |",
		"| `note` | `go` | `ready && !busy` | `prep`, `fire` | `Wait-State` | |",
		"| `idle` | `stop` | | `log` | *internal* | |",
	} {
		if !strings.Contains(md, want+"\n") {
			t.Errorf("missing row %s", want)
		}
	}
}
