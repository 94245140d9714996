// Covertable prints which transitions of spec/tcp793.yaml the real stack
// took, per test suite, from the counts the runtime and tests packages write
// when FSMTCP_COVERAGE_DIR is set:
//
//	FSMTCP_COVERAGE_DIR=/tmp/cov go test ./...
//	go run ./tests/covertable /tmp/cov
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/fsmgen/fsmgen/generated/tcpfsm"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: covertable DIR")
		os.Exit(2)
	}
	files, _ := filepath.Glob(filepath.Join(os.Args[1], "*.tsv"))
	sort.Strings(files)
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "covertable: no *.tsv files in", os.Args[1])
		os.Exit(1)
	}
	var suites []string
	counts := make([][tcpfsm.NumTransitions]uint64, len(files))
	for i, f := range files {
		suites = append(suites, strings.TrimSuffix(filepath.Base(f), ".tsv"))
		if err := read(f, &counts[i]); err != nil {
			fmt.Fprintln(os.Stderr, "covertable:", err)
			os.Exit(1)
		}
	}
	fmt.Printf("| # | from | event | guard | to | %s | total |\n", strings.Join(suites, " | "))
	fmt.Printf("|---|---|---|---|---|%s---|\n", strings.Repeat("---|", len(suites)))
	never := 0
	for id, t := range tcpfsm.Transitions {
		var total uint64
		cells := make([]string, len(suites))
		for i := range suites {
			cells[i] = strconv.FormatUint(counts[i][id], 10)
			total += counts[i][id]
		}
		if total == 0 {
			never++
		}
		fmt.Printf("| %d | %v | %v | %s | %v | %s | %d |\n", id, t.From, t.Event, t.Guard, t.To, strings.Join(cells, " | "), total)
	}
	fmt.Printf("\n%d of %d transitions taken by the stack; %d never (see runtime/coverage_test.go for the ones unreachable in practice).\n",
		tcpfsm.NumTransitions-never, tcpfsm.NumTransitions, never)
}

func read(path string, into *[tcpfsm.NumTransitions]uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var id int
		var n uint64
		if _, err := fmt.Sscanf(sc.Text(), "%d\t%d", &id, &n); err != nil || id < 0 || id >= tcpfsm.NumTransitions {
			return fmt.Errorf("%s: bad line %q (regenerated spec since the counts were written?)", path, sc.Text())
		}
		into[id] = n
	}
	return sc.Err()
}
