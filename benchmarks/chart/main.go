// Command chart draws the output of the benchmarks (go test -bench) as an
// SVG bar chart: one group of bars per case and configuration (N, delay),
// one colour per implementation, the median over repeated runs.
//
// The height of a bar is the throughput: lock+unlock cycles per second for
// Sequential and Parallel, acquisitions per second for Contended, extends
// per second for Extend, on a log scale; or, with -base, the throughput
// relative to the base implementation in the same group, on a linear scale.
//
//	go run ./chart -in out/bench.txt -out ../docs/benchmarks.svg
//	go run ./chart -in out/bench.txt -base redsync -impls ours,redsync,floor -out ratio.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	var (
		in    = flag.String("in", "out/bench.txt", "benchmark output to read (- for stdin)")
		out   = flag.String("out", "-", "SVG file to write (- for stdout)")
		base  = flag.String("base", "", "plot throughput relative to this implementation (e.g. redsync) instead of operations per second")
		impls = flag.String("impls", "", "comma-separated implementations to plot, in this order (default: all)")
		title = flag.String("title", "Lock throughput by case, masters (N) and implementation", "chart title")
	)
	flag.Parse()
	if err := run(*in, *out, *base, *impls, *title); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(in, out, base, impls, title string) error {
	r := io.Reader(os.Stdin)
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	data, err := parse(r)
	if err != nil {
		return err
	}
	if impls != "" {
		data.keep(strings.Split(impls, ","))
	}
	if base != "" {
		if err := data.relativeTo(base); err != nil {
			return err
		}
	}
	if len(data.groups) == 0 {
		return fmt.Errorf("no benchmark results to plot in %s", in)
	}
	svg := render(data, base, title)
	if out == "-" {
		_, err = os.Stdout.WriteString(svg)
		return err
	}
	return os.WriteFile(out, []byte(svg), 0o644)
}

// dataset is the throughput of every implementation in every group.
type dataset struct {
	groups []string                      // in order of first appearance
	impls  []string                      // legend order
	values map[string]map[string]float64 // group -> impl -> median throughput
	runs   int                           // the most runs of any one benchmark
}

// line matches a result line: name (less the -GOMAXPROCS suffix),
// iterations, then "value unit" pairs.
var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.+)$`)

// preferred is the legend order; other implementations follow as found.
var preferred = []string{"ours", "redsync", "floor", "mem"}

func parse(r io.Reader) (*dataset, error) {
	samples := map[string]map[string][]float64{}
	var groups, found []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		group, impl, ok := split(m[1])
		if !ok {
			continue
		}
		v, ok := throughput(m[2])
		if !ok {
			continue
		}
		if samples[group] == nil {
			samples[group] = map[string][]float64{}
			groups = append(groups, group)
		}
		if !slices.Contains(found, impl) {
			found = append(found, impl)
		}
		samples[group][impl] = append(samples[group][impl], v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	d := &dataset{groups: groups, values: map[string]map[string]float64{}}
	for _, p := range preferred {
		if slices.Contains(found, p) {
			d.impls = append(d.impls, p)
		}
	}
	for _, f := range found {
		if !slices.Contains(d.impls, f) {
			d.impls = append(d.impls, f)
		}
	}
	for g, byImpl := range samples {
		d.values[g] = map[string]float64{}
		for impl, xs := range byImpl {
			d.values[g][impl] = median(xs)
			d.runs = max(d.runs, len(xs))
		}
	}
	return d, nil
}

// split turns "Contended/N=3/delay=10ms/impl=ours" into the group
// "Contended N=3 delay=10ms" and the implementation "ours".
func split(name string) (group, impl string, ok bool) {
	parts := strings.Split(name, "/")
	rest := parts[:0:0]
	for _, p := range parts {
		if v, found := strings.CutPrefix(p, "impl="); found {
			impl = v
		} else {
			rest = append(rest, p)
		}
	}
	return strings.Join(rest, " "), impl, impl != ""
}

// throughput reads the operations per second of one result: cycles/s or
// acq/s when reported, else 1e9 / ns/op.
func throughput(fields string) (float64, bool) {
	f := strings.Fields(fields)
	metrics := map[string]float64{}
	for i := 0; i+1 < len(f); i += 2 {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			metrics[f[i+1]] = v
		}
	}
	for _, unit := range []string{"cycles/s", "acq/s"} {
		if v, ok := metrics[unit]; ok && v > 0 {
			return v, true
		}
	}
	if ns, ok := metrics["ns/op"]; ok && ns > 0 {
		return 1e9 / ns, true
	}
	return 0, false
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// keep drops every implementation not in impls and orders the legend as
// impls does.
func (d *dataset) keep(impls []string) {
	var order []string
	for _, i := range impls {
		if i = strings.TrimSpace(i); slices.Contains(d.impls, i) {
			order = append(order, i)
		}
	}
	d.impls = order
	for _, byImpl := range d.values {
		for impl := range byImpl {
			if !slices.Contains(order, impl) {
				delete(byImpl, impl)
			}
		}
	}
	d.groups = slices.DeleteFunc(d.groups, func(g string) bool { return len(d.values[g]) == 0 })
}

// relativeTo divides every value by base's in the same group, dropping the
// groups that lack base.
func (d *dataset) relativeTo(base string) error {
	if !slices.Contains(d.impls, base) {
		return fmt.Errorf("no results for the base implementation %q", base)
	}
	d.groups = slices.DeleteFunc(d.groups, func(g string) bool {
		b, ok := d.values[g][base]
		if !ok || b <= 0 {
			return true
		}
		for impl, v := range d.values[g] {
			d.values[g][impl] = v / b
		}
		return false
	})
	return nil
}

// Layout, in SVG user units (px).
const (
	barW     = 16.0
	barGap   = 2.0
	groupGap = 28.0
	plotH    = 340.0
	left     = 90.0
	right    = 20.0
	top      = 80.0
	bottom   = 110.0
)

// palette colours the implementations in legend order.
var palette = []string{"#1f77b4", "#d62728", "#7f7f7f", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// scale maps a value to a height above the x axis, and lists the ticks.
type scale struct {
	y     func(v float64) float64 // 0 at the axis, plotH at the top
	ticks []float64
	label func(v float64) string
}

func logScale(lo, hi float64) scale {
	a, b := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	s := scale{
		y:     func(v float64) float64 { return (math.Log10(v) - a) / (b - a) * plotH },
		label: si,
	}
	for e := a; e <= b; e++ {
		s.ticks = append(s.ticks, math.Pow(10, e))
	}
	return s
}

func linearScale(hi float64) scale {
	step := niceStep(hi / 5)
	top := math.Ceil(hi/step) * step
	s := scale{
		y:     func(v float64) float64 { return v / top * plotH },
		label: func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "×" },
	}
	for v := 0.0; v <= top+step/2; v += step {
		s.ticks = append(s.ticks, math.Round(v/step)*step)
	}
	return s
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// si formats v with a k or M suffix: 1, 10, 1k, 12.5k, 3M.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(round3(v/1e6), 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(round3(v/1e3), 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(round3(v), 'f', -1, 64)
}

// round3 keeps three significant digits.
func round3(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

func render(d *dataset, base, title string) string {
	lo, hi := math.Inf(1), 0.0
	for _, g := range d.groups {
		for _, v := range d.values[g] {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	var (
		sc     scale
		yLabel string
		value  func(float64) string
	)
	if base != "" {
		sc = linearScale(hi)
		yLabel = "throughput relative to " + base + " (×, higher is better)"
		value = func(v float64) string { return strconv.FormatFloat(round3(v), 'f', -1, 64) + "×" }
	} else {
		sc = logScale(lo, hi)
		yLabel = "operations per second (log scale, higher is better)"
		value = si
	}

	width := left + right
	for _, g := range d.groups {
		width += groupWidth(g, len(d.values[g])) + groupGap
	}
	width = max(width, 640)
	height := top + plotH + bottom
	axisY := top + plotH

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>`)
	p(`<text x="%.0f" y="24" font-size="15" font-weight="bold">%s</text>`, left, esc(title))

	// Legend.
	x := left
	for i, impl := range d.impls {
		p(`<rect x="%.1f" y="38" width="12" height="12" fill="%s"/>`, x, palette[i%len(palette)])
		p(`<text x="%.1f" y="48">%s</text>`, x+16, esc(impl))
		x += 24 + 7*float64(len(impl)) + 12
	}

	// Y axis: grid lines and tick labels.
	for _, t := range sc.ticks {
		y := axisY - sc.y(t)
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y, width-right, y)
		p(`<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, left-6, y, esc(sc.label(t)))
	}
	p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, left, top, left, axisY)
	p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, left, axisY, width-right, axisY)
	p(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`, top+plotH/2, esc(yLabel))

	// Bars, group by group, centred in room wide enough for the labels;
	// a faint line parts one case from the next.
	x = left + groupGap/2
	prevCase := ""
	for _, g := range d.groups {
		name, conf, _ := strings.Cut(g, " ")
		if prevCase != "" && name != prevCase {
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb" stroke-dasharray="3 3"/>`, x-groupGap/2, top, x-groupGap/2, axisY+44)
		}
		prevCase = name
		n := len(d.values[g])
		room := groupWidth(g, n)
		start := x
		x += (room - float64(n)*(barW+barGap)) / 2
		for i, impl := range d.impls {
			v, ok := d.values[g][impl]
			if !ok {
				continue
			}
			h := max(sc.y(v), 0)
			p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x, axisY-h, barW, h, palette[i%len(palette)], esc(g), esc(impl), esc(value(v)))
			p(`<text transform="translate(%.1f %.1f) rotate(-90)" font-size="9">%s</text>`, x+barW/2+3, axisY-h-3, esc(value(v)))
			x += barW + barGap
		}
		// The group's label: the case, then its configuration.
		mid := start + room/2
		x = start + room
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, mid, axisY+16, esc(name))
		for i, c := range strings.Fields(conf) {
			p(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">%s</text>`, mid, axisY+30+float64(i)*13, esc(c))
		}
		x += groupGap
	}

	p(`<text x="%.1f" y="%.1f" text-anchor="middle">case and configuration (N = Redis masters; delay = retry delay)</text>`, left+(width-left-right)/2, axisY+72)
	p(`<text x="%.1f" y="%.1f" fill="#444" font-size="10">operation: Sequential, Parallel = lock+unlock cycle; Contended = acquisition; Extend = extend. Median of up to %d runs.</text>`, left, axisY+92, d.runs)
	p(`</svg>`)
	return b.String()
}

// groupWidth is the room a group of n bars takes: its bars, or its widest
// label line at about 6.5 units a character, whichever is wider.
func groupWidth(group string, n int) float64 {
	widest := 0
	for _, w := range strings.Fields(group) {
		widest = max(widest, len(w))
	}
	return max(float64(n)*(barW+barGap), 6.5*float64(widest))
}

func esc(s string) string { return html.EscapeString(s) }
