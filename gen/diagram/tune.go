package diagram

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// tuning holds per-state layout adjustments found by tune.
type tuning struct {
	leftLoops map[string]bool // self-loops drawn on the left of the state
	topReset  map[string]bool // the edge into the initial state leaves the top
}

// tune finds per-state adjustments that keep arrows out of self-loop
// labels. Graphviz draws a loop and its label on the right of the state,
// where they often collide with the state's other arrows, the worst blemish
// left in the TCP diagram. tune lays the graph out (Graphviz's JSON output
// gives the geometry), scores the clutter (how many arrows, labels and
// states overlap some label) and, for each state whose loop label is hit,
// tries moving its loops to the left, or making its arrow into the initial
// state leave from the top of the state; it keeps a change only if the
// total clutter falls. The result is deterministic and costs a handful of
// layouts.
//
// tune returns the zero tuning when there is nothing to improve or Graphviz
// cannot lay the graph out.
func tune(m *spec.Machine, l *layout) tuning {
	var loopStates []string
	resets := map[string]bool{}
	for _, e := range l.edges {
		if e.reset {
			resets[e.from] = true
		}
	}
	for _, s := range m.States {
		for _, e := range l.edges {
			if e.from == s.Name && e.to == s.Name {
				loopStates = append(loopStates, s.Name)
				break
			}
		}
	}
	if len(loopStates) == 0 {
		return tuning{}
	}
	cur := tuning{leftLoops: map[string]bool{}, topReset: map[string]bool{}}
	measure := func() (total int, hit map[string]bool, ok bool) {
		js, err := render(writeDot(m, l, cur), "json")
		if err != nil {
			return 0, nil, false
		}
		g, err := parseGeometry(js)
		if err != nil {
			return 0, nil, false
		}
		total, hit = g.clutter()
		return total, hit, true
	}
	best, hit, ok := measure()
	if !ok {
		return tuning{}
	}
	for round := 0; round < 2 && best > 0; round++ {
		improved := false
		for _, s := range loopStates {
			if !hit[s] {
				continue
			}
			knobs := []map[string]bool{cur.leftLoops}
			if resets[s] {
				knobs = append(knobs, cur.topReset)
			}
			for _, knob := range knobs {
				knob[s] = !knob[s]
				total, h, ok := measure()
				if ok && total < best {
					best, hit, improved = total, h, true
					break
				}
				knob[s] = !knob[s]
			}
		}
		if !improved {
			break
		}
	}
	for _, knob := range []map[string]bool{cur.leftLoops, cur.topReset} {
		for s, v := range knob {
			if !v {
				delete(knob, s)
			}
		}
	}
	return cur
}

// box is an axis-aligned rectangle in points.
type box struct{ x0, y0, x1, y1 float64 }

func (a box) overlaps(b box) bool {
	return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1
}

// crosses reports whether the segment p-q meets the box (Liang-Barsky).
func (a box) crosses(p, q [2]float64) bool {
	t0, t1 := 0.0, 1.0
	dx, dy := q[0]-p[0], q[1]-p[1]
	clip := func(den, num float64) bool { // keep the part where den*t <= num
		switch {
		case den == 0:
			return num >= 0
		case den > 0:
			if t := num / den; t < t1 {
				t1 = t
			}
		default:
			if t := num / den; t > t0 {
				t0 = t
			}
		}
		return t0 <= t1
	}
	return clip(-dx, p[0]-a.x0) && clip(dx, a.x1-p[0]) &&
		clip(-dy, p[1]-a.y0) && clip(dy, a.y1-p[1])
}

// geometry is the part of a laid-out graph the clutter score needs.
type geometry struct {
	nodes []geoNode
	edges []geoEdge
}

type geoNode struct {
	name string
	box  box
}

type geoEdge struct {
	tail, head string
	points     [][2]float64 // sampled along the drawn curve
	label      box
	hasLabel   bool
}

// clutter counts, for every edge label, the other edges that pass through
// it, the labels it overlaps and the states it covers. It also reports the
// states whose self-loop labels are hit.
func (g *geometry) clutter() (int, map[string]bool) {
	total := 0
	hit := map[string]bool{}
	for i, e := range g.edges {
		if !e.hasLabel {
			continue
		}
		n := 0
		for j, o := range g.edges {
			if j == i {
				continue
			}
			if o.hasLabel && j > i && e.label.overlaps(o.label) {
				n++
			}
			for k := 1; k < len(o.points); k++ {
				if e.label.crosses(o.points[k-1], o.points[k]) {
					n++
					break
				}
			}
		}
		for _, nd := range g.nodes {
			if e.label.overlaps(nd.box) {
				n++
			}
		}
		total += n
		if n > 0 && e.tail == e.head {
			hit[e.tail] = true
		}
	}
	return total, hit
}

// jsonGraph is the subset of Graphviz's -Tjson output used here.
type jsonGraph struct {
	Objects []struct {
		Name   string `json:"name"`
		Pos    string `json:"pos"`
		Width  string `json:"width"`
		Height string `json:"height"`
	} `json:"objects"`
	Edges []struct {
		Tail  int      `json:"tail"`
		Head  int      `json:"head"`
		Draw  []xdotOp `json:"_draw_"`
		LDraw []xdotOp `json:"_ldraw_"`
	} `json:"edges"`
}

type xdotOp struct {
	Op     string       `json:"op"`
	Points [][2]float64 `json:"points"`
	Pt     [2]float64   `json:"pt"`
	Align  string       `json:"align"`
	Width  float64      `json:"width"`
	Size   float64      `json:"size"`
}

func parseGeometry(js []byte) (*geometry, error) {
	var jg jsonGraph
	if err := json.Unmarshal(js, &jg); err != nil {
		return nil, err
	}
	g := &geometry{}
	for _, o := range jg.Objects {
		x, y := parsePoint(o.Pos)
		w, _ := strconv.ParseFloat(o.Width, 64)
		h, _ := strconv.ParseFloat(o.Height, 64)
		w, h = w*72/2, h*72/2
		g.nodes = append(g.nodes, geoNode{name: o.Name, box: box{x - w, y - h, x + w, y + h}})
	}
	name := func(i int) string {
		if i >= 0 && i < len(g.nodes) {
			return g.nodes[i].name
		}
		return ""
	}
	for _, je := range jg.Edges {
		e := geoEdge{tail: name(je.Tail), head: name(je.Head)}
		for _, op := range je.Draw {
			if op.Op == "b" || op.Op == "B" {
				e.points = append(e.points, sampleBezier(op.Points)...)
			}
		}
		size := 14.0
		lb := box{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
		for _, op := range je.LDraw {
			switch op.Op {
			case "F":
				size = op.Size
			case "T":
				x0 := op.Pt[0] - op.Width/2
				switch op.Align {
				case "l":
					x0 = op.Pt[0]
				case "r":
					x0 = op.Pt[0] - op.Width
				}
				lb.x0 = math.Min(lb.x0, x0)
				lb.x1 = math.Max(lb.x1, x0+op.Width)
				lb.y0 = math.Min(lb.y0, op.Pt[1]-0.25*size)
				lb.y1 = math.Max(lb.y1, op.Pt[1]+0.8*size)
				e.hasLabel = true
			}
		}
		if e.hasLabel {
			e.label = lb
		}
		g.edges = append(g.edges, e)
	}
	return g, nil
}

// sampleBezier samples a piecewise cubic Bézier curve (1+3n control points).
func sampleBezier(pts [][2]float64) [][2]float64 {
	var out [][2]float64
	for i := 0; i+3 < len(pts); i += 3 {
		p0, p1, p2, p3 := pts[i], pts[i+1], pts[i+2], pts[i+3]
		for k := 0; k <= 8; k++ {
			t := float64(k) / 8
			u := 1 - t
			a, b, c, d := u*u*u, 3*u*u*t, 3*u*t*t, t*t*t
			out = append(out, [2]float64{
				a*p0[0] + b*p1[0] + c*p2[0] + d*p3[0],
				a*p0[1] + b*p1[1] + c*p2[1] + d*p3[1],
			})
		}
	}
	return out
}

func parsePoint(s string) (float64, float64) {
	xs, ys, _ := strings.Cut(s, ",")
	x, _ := strconv.ParseFloat(xs, 64)
	y, _ := strconv.ParseFloat(ys, 64)
	return x, y
}
