// Package diagram renders a parsed state-machine spec as pictures and
// documentation: Graphviz DOT (Dot), SVG laid out by Graphviz (SVG), a
// Mermaid stateDiagram-v2 (Mermaid) and a Markdown reference page
// (Markdown).
//
// Every emitter is deterministic: the same *spec.Machine always yields the
// same bytes, so generated files can be checked in and diffed.
package diagram
