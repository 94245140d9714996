// Fsmgen generates Go state machines, diagrams and docs from YAML specs.
//
// Usage:
//
//	fsmgen generate [-out DIR] [-package NAME] SPEC.yaml
//	fsmgen check SPEC.yaml...
//	fsmgen diagram [-format dot|svg|mermaid|markdown] [-o FILE] SPEC.yaml
//	fsmgen verify [-cap N] [-retries N] [-reorder] [-loss=false] [-dup=false] [-users LIST] [-spec-timers] [-v] SPEC.yaml
//	fsmgen paths [-o FILE] [-package NAME] SPEC.yaml
//
// generate writes, for a spec whose machine is NAME and package PKG:
//
//	DIR/PKG/NAME_fsm.go   the Go package (typed states and events, Step, Machine)
//	DIR/NAME.dot          Graphviz source
//	DIR/NAME.svg          the rendered diagram
//	DIR/NAME.md           Mermaid diagram and transition table
//
// Output is deterministic and written atomically, and nothing is written when
// the spec has errors. Errors are reported as SPEC.yaml:line:col: message.
// Exit status: 0 success, 1 spec or generation errors, 2 usage errors.
//
// In a Go package, a directive such as
//
//	//go:generate go run github.com/fsmgen/fsmgen/cmd/fsmgen generate -out . ../spec/tcp793.yaml
//
// makes go generate regenerate the output.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fsmgen/fsmgen/gen/atomicfile"
	"github.com/fsmgen/fsmgen/gen/diagram"
	"github.com/fsmgen/fsmgen/gen/gogen"
	"github.com/fsmgen/fsmgen/gen/spec"
)

const usage = `fsmgen generates Go state machines, diagrams and docs from YAML specs.

Usage:

	fsmgen generate [-out DIR] [-package NAME] SPEC.yaml
	fsmgen check SPEC.yaml...
	fsmgen diagram [-format dot|svg|mermaid|markdown] [-o FILE] SPEC.yaml
	fsmgen verify [-cap N] [-retries N] [-reorder] [-loss=false] [-dup=false] [-users LIST] [-spec-timers] [-v] SPEC.yaml
	fsmgen paths [-o FILE] [-package NAME] SPEC.yaml

Run "fsmgen COMMAND -h" for a command's flags. Exit status: 0 success,
1 spec or generation errors, 2 usage errors.
`

// errUsage marks errors that exit with status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "generate":
		err = generate(rest, stderr)
	case "check":
		err = check(rest, stdout, stderr)
	case "diagram":
		err = diagramCmd(rest, stdout, stderr)
	case "verify":
		err = verifyCmd(rest, stdout, stderr)
	case "paths":
		err = pathsCmd(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fsmgen: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var quiet silent
	switch {
	case err == nil:
		return 0
	case errors.As(err, &quiet):
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, err)
	return 1
}

// newFlags returns a FlagSet that prints the command's usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: fsmgen %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags and requires exactly n positional arguments (n < 0: at least one).
func parseArgs(fs *flag.FlagSet, args []string, n int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if (n >= 0 && fs.NArg() != n) || (n < 0 && fs.NArg() == 0) {
		fs.Usage()
		return errUsage
	}
	return nil
}

func generate(args []string, stderr io.Writer) error {
	fs := newFlags("generate", "generate [-out DIR] [-package NAME] SPEC.yaml", stderr)
	out := fs.String("out", ".", "output `directory`: the Go package goes to DIR/PACKAGE/, diagrams and docs to DIR/")
	pkg := fs.String("package", "", "Go package `name` (default: the spec's package)")
	if err := parseArgs(fs, args, 1); err != nil {
		return err
	}
	path := fs.Arg(0)
	m, err := spec.ParseFile(path)
	if err != nil {
		return err
	}
	if *pkg != "" {
		m.Package = *pkg
	}
	files, err := Outputs(m, filepath.Base(path), *out)
	if err != nil {
		return err
	}
	return atomicfile.WriteAll(files)
}

// Outputs renders every generated file for m in memory. source is the spec's
// file name as recorded in the Go header (a base name, so output does not
// depend on where fsmgen runs).
func Outputs(m *spec.Machine, source, dir string) ([]atomicfile.File, error) {
	goSrc, err := gogen.Generate(m, gogen.Config{Source: source})
	if err != nil {
		return nil, err
	}
	svg, err := diagram.SVG(m)
	if err != nil {
		return nil, fmt.Errorf("fsmgen: rendering SVG: %w", err)
	}
	return []atomicfile.File{
		{Path: filepath.Join(dir, m.Package, m.Name+"_fsm.go"), Data: goSrc},
		{Path: filepath.Join(dir, m.Name+".dot"), Data: diagram.Dot(m)},
		{Path: filepath.Join(dir, m.Name+".svg"), Data: svg},
		{Path: filepath.Join(dir, m.Name+".md"), Data: diagram.Markdown(m)},
	}, nil
}

func check(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check SPEC.yaml...", stderr)
	if err := parseArgs(fs, args, -1); err != nil {
		return err
	}
	var failed error
	for _, path := range fs.Args() {
		m, err := spec.ParseFile(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			failed = errors.New("fsmgen: check failed")
			continue
		}
		fmt.Fprintf(stdout, "%s: ok: machine %s, %d states, %d events, %d transitions\n", path, m.Name, len(m.States), len(m.Events), len(m.Transitions))
	}
	if failed != nil {
		return silent{failed}
	}
	return nil
}

// silent is an error already reported to the user; run exits 1 without printing it.
type silent struct{ error }

func diagramCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("diagram", "diagram [-format dot|svg|mermaid|markdown] [-o FILE] SPEC.yaml", stderr)
	format := fs.String("format", "svg", "output `format`: dot, svg, mermaid or markdown")
	outPath := fs.String("o", "", "output `file` (default: standard output)")
	if err := parseArgs(fs, args, 1); err != nil {
		return err
	}
	m, err := spec.ParseFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var data []byte
	switch *format {
	case "dot":
		data = diagram.Dot(m)
	case "svg":
		if data, err = diagram.SVG(m); err != nil {
			return err
		}
	case "mermaid":
		data = diagram.Mermaid(m)
	case "markdown", "md":
		data = diagram.Markdown(m)
	default:
		fmt.Fprintf(stderr, "fsmgen diagram: unknown format %q (want dot, svg, mermaid or markdown)\n", *format)
		return errUsage
	}
	if *outPath == "" {
		_, err = stdout.Write(data)
		return err
	}
	return atomicfile.Write(*outPath, data, 0o644)
}
