// Command compare runs the peers benchmarks (fsmgen vs gVisor netstack vs
// the kernel) several times, prints a Markdown table of the medians with
// the ratios fsmgen/netstack and fsmgen/kernel, and writes a bar chart SVG.
//
// Run it from tests/peers:
//
//	go run ./cmd/compare                      # -count 5, writes perf.svg
//	go run ./cmd/compare -count 3 -raw perf.txt
//	go run ./cmd/compare -from perf.txt       # re-render saved output
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

func main() {
	count := flag.Int("count", 5, "runs of each throughput/handshake benchmark (-count)")
	idleCount := flag.Int("idlecount", 3, "runs of the idle-connection benchmarks")
	benchtime := flag.String("benchtime", "1s", "-benchtime for the throughput/handshake benchmarks")
	timers := flag.Bool("timers", true, "also run BenchmarkIdleTimerCPU (100k TIME-WAIT connections)")
	svgPath := flag.String("svg", "perf.svg", "bar chart to write (empty: none)")
	mdPath := flag.String("md", "", "also write the Markdown to this file")
	rawPath := flag.String("raw", "", "save the raw benchmark output to this file")
	from := flag.String("from", "", "parse this saved benchmark output instead of running")
	flag.Parse()

	var raw []byte
	if *from != "" {
		var err error
		if raw, err = os.ReadFile(*from); err != nil {
			log.Fatal(err)
		}
	} else {
		runs := [][]string{
			{"-bench", "^Benchmark(Bulk|LossyBulk|Handshake)$", "-benchtime", *benchtime, "-count", strconv.Itoa(*count)},
			{"-bench", "^BenchmarkIdleConns$", "-benchtime", "1x", "-count", strconv.Itoa(*idleCount)},
		}
		if *timers {
			runs = append(runs, []string{"-bench", "^BenchmarkIdleTimerCPU$", "-benchtime", "1x", "-count", strconv.Itoa(*idleCount)})
		}
		var buf bytes.Buffer
		for _, r := range runs {
			args := append([]string{"test", "-run", "^$", "-timeout", "60m"}, r...)
			fmt.Fprintf(os.Stderr, "$ go %s\n", strings.Join(args, " "))
			cmd := exec.Command("go", args...)
			cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				log.Fatalf("go test: %v", err)
			}
		}
		raw = buf.Bytes()
		if *rawPath != "" {
			if err := os.WriteFile(*rawPath, raw, 0o644); err != nil {
				log.Fatal(err)
			}
		}
	}

	res := parse(raw)
	md := markdown(res)
	fmt.Print(md)
	if *mdPath != "" {
		if err := os.WriteFile(*mdPath, []byte(md), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *svgPath != "" {
		if err := os.WriteFile(*svgPath, []byte(chart(res)), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *svgPath)
	}
}

// results maps "BenchmarkBulk/fsmgen/mtu1500" (GOMAXPROCS suffix removed)
// and a unit ("MB/s", "allocs/op", ...) to every value seen.
type results map[string]map[string][]float64

func parse(raw []byte) results {
	res := results{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a result line
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res
}

// median returns the median of name's unit, and whether there was any.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

// row is one line of the table: the benchmark names of each stack (empty:
// not run) and what the target says about fsmgen/netstack.
type row struct {
	label, unit          string
	fsmgen, netstack, kn string
	better               int    // +1 higher is better, -1 lower is better
	target               string // shown
	check                func(f, n float64) bool
	scale                float64 // display divisor (e.g. 1024 for KiB)
}

func rows() []row {
	atLeast := func(k float64) func(f, n float64) bool { return func(f, n float64) bool { return f >= k*n } }
	atMost := func(k float64) func(f, n float64) bool { return func(f, n float64) bool { return f <= k*n } }
	var rs []row
	for _, mtu := range []string{"1500", "65535"} {
		rs = append(rs, row{label: "Bulk, MTU " + mtu, unit: "MB/s",
			fsmgen: "BenchmarkBulk/fsmgen/mtu" + mtu, netstack: "BenchmarkBulk/netstack/mtu" + mtu, kn: "BenchmarkBulk/kernel",
			better: +1, target: "≥ 1× netstack", check: atLeast(1)})
	}
	for _, mtu := range []string{"1500", "65535"} {
		rs = append(rs, row{label: "Bulk allocs per 64 KiB write, MTU " + mtu, unit: "allocs/op",
			fsmgen: "BenchmarkBulk/fsmgen/mtu" + mtu, netstack: "BenchmarkBulk/netstack/mtu" + mtu, kn: "BenchmarkBulk/kernel",
			better: -1, target: "≈ 0", check: func(f, n float64) bool { return f < 0.5 }})
	}
	rs = append(rs, row{label: "Lossy bulk (1% loss), MTU 1500", unit: "MB/s",
		fsmgen: "BenchmarkLossyBulk/fsmgen/mtu1500", netstack: "BenchmarkLossyBulk/netstack/mtu1500",
		better: +1, target: "≥ 1× netstack", check: atLeast(1)})
	for _, mtu := range []string{"1500", "65535"} {
		rs = append(rs, row{label: "Handshake, MTU " + mtu, unit: "handshakes/s",
			fsmgen: "BenchmarkHandshake/fsmgen/mtu" + mtu, netstack: "BenchmarkHandshake/netstack/mtu" + mtu, kn: "BenchmarkHandshake/kernel",
			better: +1, target: "≥ 2× netstack", check: atLeast(2)})
	}
	rs = append(rs,
		row{label: "Idle connection, Go heap (both ends)", unit: "heapB/conn",
			fsmgen: "BenchmarkIdleConns/fsmgen", netstack: "BenchmarkIdleConns/netstack", kn: "BenchmarkIdleConns/kernel",
			better: -1, target: "≤ ¼ netstack", check: atMost(0.25)},
		row{label: "Idle connection, goroutines", unit: "goroutines/conn",
			fsmgen: "BenchmarkIdleConns/fsmgen", netstack: "BenchmarkIdleConns/netstack", kn: "BenchmarkIdleConns/kernel",
			better: -1, target: "0", check: func(f, n float64) bool { return f < 0.001 }},
	)
	return rs
}

func fmtVal(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func ratio(a, b float64, okA, okB bool) string {
	if !okA || !okB {
		return "–"
	}
	if b == 0 {
		if a == 0 {
			return "1×"
		}
		return "∞"
	}
	return fmtVal(a/b) + "×"
}

func markdown(r results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s\n\n", machine())
	b.WriteString("| Benchmark | Unit | fsmgen | netstack | kernel | fsmgen/netstack | fsmgen/kernel | Target | Met |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, row := range rows() {
		f, okF := r.median(row.fsmgen, row.unit)
		n, okN := r.median(row.netstack, row.unit)
		k, okK := r.median(row.kn, row.unit)
		if !okF && !okN {
			continue
		}
		cell := func(v float64, ok bool) string {
			if !ok {
				return "–"
			}
			return fmtVal(v)
		}
		met := "–"
		if okF && okN && row.check != nil {
			met = "no"
			if row.check(f, n) {
				met = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.label, row.unit,
			cell(f, okF), cell(n, okN), cell(k, okK), ratio(f, n, okF, okN), ratio(f, k, okF, okK), row.target, met)
	}
	if k, ok := r.median("BenchmarkIdleConns/kernel", "kernelB/conn"); ok {
		c, _ := r.median("BenchmarkIdleConns/kernel", "conns")
		fmt.Fprintf(&b, "\nKernel idle connections (%s, both ends) also hold ≈ %s B/conn of kernel memory (slab + TCP buffers, machine-wide delta).\n", fmtVal(c), fmtVal(k))
	}
	if timerRows := timerBenches(r); len(timerRows) > 0 {
		b.WriteString("\n| Idle fsmgen connections in TIME-WAIT | Armed timers | Process CPU while idle (ms per s) |\n| ---: | ---: | ---: |\n")
		for _, name := range timerRows {
			c, _ := r.median(name, "timewait-conns")
			t, _ := r.median(name, "armed-timers")
			cpu, _ := r.median(name, "cpu-ms/s")
			fmt.Fprintf(&b, "| %s | %s | %s |\n", fmtVal(c), fmtVal(t), fmtVal(cpu))
		}
	}
	fmt.Fprintf(&b, "\nMedians of %d runs (idle: %d); ratios are of medians.\n", maxRuns(r, "BenchmarkBulk/fsmgen/mtu1500"), maxRuns(r, "BenchmarkIdleConns/fsmgen"))
	return b.String()
}

// timerBenches lists the BenchmarkIdleTimerCPU results by connection count.
func timerBenches(r results) []string {
	var names []string
	for name := range r {
		if strings.HasPrefix(name, "BenchmarkIdleTimerCPU/") {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		na, _ := r.median(a, "timewait-conns")
		nb, _ := r.median(b, "timewait-conns")
		return int(na - nb)
	})
	return names
}

func maxRuns(r results, name string) int {
	n := 0
	for _, vs := range r[name] {
		n = max(n, len(vs))
	}
	return n
}

// machine describes the host: Go version, CPUs, CPU model, kernel.
func machine() string {
	gover := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		gover = strings.TrimSpace(string(out))
	}
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, %s/%s, nproc %d, %s%s", gover, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, kernel)
}

// chart draws one small bar chart per table row (values, not ratios), in a
// grid, as hand-written SVG.
func chart(r results) string {
	type panel struct {
		title, note string
		better      int
		bars        []bar
	}
	var ps []panel
	for _, row := range rows() {
		if row.unit == "goroutines/conn" || row.unit == "allocs/op" {
			continue // zeros for us; the table says it
		}
		p := panel{title: row.label, better: row.better}
		f, okF := r.median(row.fsmgen, row.unit)
		n, okN := r.median(row.netstack, row.unit)
		if okF && okN {
			p.note = "fsmgen/netstack " + ratio(f, n, okF, okN)
		}
		if row.kn != "" && strings.HasPrefix(row.label, "Bulk") {
			p.note += "; kernel: loopback, MTU 65536"
		}
		if row.unit == "heapB/conn" {
			if k, ok := r.median(row.kn, "kernelB/conn"); ok {
				p.note += "; kernel also ≈ " + fmtVal(k) + " B in-kernel"
			}
		}
		for _, s := range []struct{ name, bench string }{{"fsmgen", row.fsmgen}, {"netstack", row.netstack}, {"kernel", row.kn}} {
			if v, ok := r.median(s.bench, row.unit); ok {
				p.bars = append(p.bars, bar{s.name, v, row.unit})
			}
		}
		if len(p.bars) > 0 {
			ps = append(ps, p)
		}
	}
	if names := timerBenches(r); len(names) > 0 {
		p := panel{title: "Idle CPU, TIME-WAIT timers armed", better: -1, note: "fsmgen, whole process, 3 s idle (1 ms/s = 0.1% of a core)"}
		for _, name := range names {
			c, _ := r.median(name, "timewait-conns")
			cpu, _ := r.median(name, "cpu-ms/s")
			label := fmtVal(c)
			if c >= 1000 {
				label = fmtVal(c/1000) + "k"
			}
			p.bars = append(p.bars, bar{label + " conns", cpu, "CPU ms per s"})
		}
		ps = append(ps, p)
	}
	const (
		cols   = 3
		pw, ph = 310, 215 // panel size
		margin = 20
		top    = 50
	)
	rowsN := (len(ps) + cols - 1) / cols
	w := cols*pw + 2*margin
	h := top + rowsN*ph + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="26" font-size="18" font-weight="bold">fsmgen vs gVisor netstack vs kernel (medians)</text>`+"\n", margin)
	fmt.Fprintf(&b, `<text x="%d" y="42" font-size="11" fill="#555">%s</text>`+"\n", margin, xmlEscape(machine()))
	colors := map[string]string{"fsmgen": "#1f77b4", "netstack": "#ff7f0e", "kernel": "#7f7f7f"}
	for i, p := range ps {
		x0 := margin + (i%cols)*pw
		y0 := top + (i/cols)*ph
		dir := "higher is better"
		if p.better < 0 {
			dir = "lower is better"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", x0+10, y0+20, xmlEscape(p.title))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555">%s, %s</text>`+"\n", x0+10, y0+35, xmlEscape(p.bars[0].unit), dir)
		if p.note != "" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555">%s</text>`+"\n", x0+10, y0+50, xmlEscape(p.note))
		}
		maxV := 0.0
		for _, br := range p.bars {
			maxV = max(maxV, br.v)
		}
		const (
			barH   = 30
			gap    = 14
			labelW = 70
		)
		plotW := float64(pw - labelW - 80)
		for j, br := range p.bars {
			y := y0 + 62 + j*(barH+gap)
			bw := 0.0
			if maxV > 0 {
				bw = br.v / maxV * plotW
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>`+"\n", x0+labelW, y+barH/2+4, br.name)
			color, ok := colors[br.name]
			if !ok {
				color = colors["fsmgen"]
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0+labelW+6, y, math.Max(bw, 1), barH, color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="12">%s</text>`+"\n", float64(x0+labelW+10)+bw, y+barH/2+4, fmtVal(br.v))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

type bar struct {
	name string
	v    float64
	unit string
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
