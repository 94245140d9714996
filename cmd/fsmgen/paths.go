package main

import (
	"io"
	"path/filepath"

	"github.com/fsmgen/fsmgen/gen/atomicfile"
	"github.com/fsmgen/fsmgen/gen/pathtest"
	"github.com/fsmgen/fsmgen/gen/spec"
)

// pathsCmd writes the path tests of the spec's generated package (package
// gen/pathtest): a _test.go file covering every transition row.
func pathsCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("paths", "paths [-o FILE] [-package NAME] SPEC.yaml", stderr)
	outPath := fs.String("o", "", "output `file`, e.g. DIR/PACKAGE/NAME_paths_test.go (default: standard output)")
	pkg := fs.String("package", "", "Go package `name` (default: the spec's package)")
	if err := parseArgs(fs, args, 1); err != nil {
		return err
	}
	path := fs.Arg(0)
	m, err := spec.ParseFile(path)
	if err != nil {
		return err
	}
	src, err := pathtest.Generate(m, pathtest.Config{Source: filepath.Base(path), Package: *pkg})
	if err != nil {
		return err
	}
	if *outPath == "" {
		_, err = stdout.Write(src)
		return err
	}
	return atomicfile.Write(*outPath, src, 0o644)
}
