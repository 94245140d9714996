// Package generated holds fsmgen's committed output for spec/tcp793.yaml: the
// Go package tcpfsm, the Graphviz and SVG diagrams, and the Markdown doc.
// Regenerate with "go generate ./..." from the module root; CI fails if the
// committed files differ from what the generator writes.
package generated

//go:generate go run github.com/fsmgen/fsmgen/cmd/fsmgen generate -out . ../spec/tcp793.yaml
//go:generate go run github.com/fsmgen/fsmgen/cmd/fsmgen paths -o tcpfsm/tcp793_paths_test.go ../spec/tcp793.yaml
