package verify

// revGraph is the reverse of a graph's edges (of some kinds), in CSR form.
type revGraph struct {
	off []int32
	src []int32
}

func (r *revGraph) of(id int32) []int32 { return r.src[r.off[id]:r.off[id+1]] }

func reverse(g *graph, keep func(moveKind) bool) *revGraph {
	n := len(g.keys)
	r := &revGraph{off: make([]int32, n+1)}
	for _, e := range g.edges {
		if keep(e.kind) {
			r.off[e.dst+1]++
		}
	}
	for i := 0; i < n; i++ {
		r.off[i+1] += r.off[i]
	}
	r.src = make([]int32, r.off[n])
	fill := append([]int32(nil), r.off[:n]...)
	for id := int32(0); int(id) < n; id++ {
		for _, e := range g.succ(id) {
			if keep(e.kind) {
				r.src[fill[e.dst]] = id
				fill[e.dst]++
			}
		}
	}
	return r
}

// scc returns the strongly connected component of every node of g over the
// edges of the kinds keep accepts (iterative Tarjan).
func scc(g *graph, keep func(moveKind) bool) []int32 {
	n := len(g.keys)
	index := make([]int32, n)
	low := make([]int32, n)
	comp := make([]int32, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int32
	type frame struct {
		node int32
		next int32 // next edge position
	}
	var call []frame
	counter, ncomp := int32(0), int32(0)
	for root := int32(0); int(root) < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call = append(call, frame{root, g.edgeOff[root]})
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.node
			if f.next < g.edgeOff[v+1] {
				e := g.edges[f.next]
				f.next++
				if !keep(e.kind) {
					continue
				}
				w := e.dst
				if index[w] < 0 {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, g.edgeOff[w]})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			if low[v] == index[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = ncomp
					if w == v {
						break
					}
				}
				ncomp++
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].node
				if low[v] < low[p] {
					low[p] = low[v]
				}
			}
		}
	}
	return comp
}

// pathWithin returns a shortest path of nodes from src (excluded) to a node
// satisfying goal, following edges of kinds keep through nodes allowed by
// within, or nil.
func pathWithin(g *graph, src int32, keep func(moveKind) bool, within func(int32) bool, goal func(int32) bool) []int32 {
	prev := map[int32]int32{src: -1}
	queue := []int32{src}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, e := range g.succ(id) {
			if !keep(e.kind) || !within(e.dst) {
				continue
			}
			if goal(e.dst) {
				path := []int32{e.dst}
				for p := id; p != src; p = prev[p] {
					path = append(path, p)
				}
				for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return path
			}
			if _, ok := prev[e.dst]; !ok {
				prev[e.dst] = id
				queue = append(queue, e.dst)
			}
		}
	}
	return nil
}
