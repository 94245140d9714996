package diagram

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sync"

	"github.com/goccy/go-graphviz"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// graphvizMu serialises use of go-graphviz: it runs Graphviz in a single
// WebAssembly instance shared by the whole process, which is not safe for
// concurrent use.
var graphvizMu sync.Mutex

// SVG renders Dot(m) to SVG with Graphviz's dot layout (go-graphviz, which
// runs Graphviz compiled to WebAssembly, so no cgo or installed Graphviz is
// needed). The output is deterministic. Nodes are <g class="node"> elements
// titled with the state name; edges are <g class="edge"> elements titled
// "FROM->TO", one per DOT edge; docs are tooltips. It is safe for
// concurrent use (calls are serialised).
func SVG(m *spec.Machine) ([]byte, error) {
	svg, err := render(Dot(m), graphviz.SVG)
	if err != nil {
		return nil, err
	}
	// Edges attached to compass ports (loops on the left, resets leaving
	// the top) get the ports in their titles ("RED:w->RED:w"); keep titles
	// "FROM->TO" so they name states.
	return portTitle.ReplaceAll(svg, []byte("<title>$1&#45;&gt;$2</title>")), nil
}

// portTitle matches an edge title with a compass port on either end.
var portTitle = regexp.MustCompile(`<title>([^<:]*)(?::[nsew]+)?&#45;&gt;([^<:]*)(?::[nsew]+)?</title>`)

// render lays out DOT source with dot and renders it in format (SVG, or
// "json" for the layout geometry).
func render(dot []byte, format graphviz.Format) (out []byte, err error) {
	graphvizMu.Lock()
	defer graphvizMu.Unlock()

	ctx := context.Background()
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("diagram: starting graphviz: %w", err)
	}
	defer func() {
		if cerr := gv.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("diagram: closing graphviz: %w", cerr)
		}
	}()
	g, err := graphviz.ParseBytes(dot)
	if err != nil {
		return nil, fmt.Errorf("diagram: parsing DOT: %w", err)
	}
	defer func() {
		if cerr := g.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("diagram: closing graph: %w", cerr)
		}
	}()
	var buf bytes.Buffer
	if err := gv.Render(ctx, g, format, &buf); err != nil {
		return nil, fmt.Errorf("diagram: rendering %s: %w", format, err)
	}
	return buf.Bytes(), nil
}
