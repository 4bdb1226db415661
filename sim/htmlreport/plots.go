package htmlreport

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/driftlab/driftlab/sim/history"
	"github.com/driftlab/driftlab/sim/invariant"
)

// Colours of the page and its plots.
var (
	colInside   = color.RGBA{R: 0xd9, G: 0x48, B: 0x1b, A: 0xff}  // sample overlapping a fault window
	colOutside  = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}  // sample outside every window
	colFault    = color.NRGBA{R: 0xf2, G: 0xa3, B: 0x3a, A: 0x48} // fault window shading
	colFaultBar = color.RGBA{R: 0xf2, G: 0xa3, B: 0x3a, A: 0xff}
	colSLO      = color.RGBA{R: 0xb0, G: 0x1c, B: 0x2e, A: 0xff}
	colBad      = color.RGBA{R: 0xc0, G: 0x00, B: 0x2a, A: 0xff}
	colGrey     = color.RGBA{R: 0x6b, G: 0x72, B: 0x80, A: 0xff}
	colGreen    = color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff}
	colPurple   = color.RGBA{R: 0x7b, G: 0x4f, B: 0xa6, A: 0xff}
	seriesCols  = []color.Color{colOutside, colInside, colPurple, colGreen, colFaultBar, colGrey}
)

const (
	plotW = 9.5 * vg.Inch
	plotH = 3.6 * vg.Inch
)

// legendItem is one entry of a plot's legend, drawn in HTML above the plot
// so that it never hides data.
type legendItem struct {
	Label string
	Color string // CSS colour
	Shape string // dot, cross, ring, square, band, line, dashed, bar
}

func css(c color.Color) string {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	if n.A == 0xff {
		return fmt.Sprintf("#%02x%02x%02x", n.R, n.G, n.B)
	}
	return fmt.Sprintf("rgba(%d,%d,%d,%.2f)", n.R, n.G, n.B, float64(n.A)/255)
}

// window is one fault window in seconds of run time.
type window struct {
	label    string
	from, to float64
}

func windowsOf(o *invariant.Outcome) []window {
	var ws []window
	for _, w := range o.Windows {
		ws = append(ws, window{label: fmt.Sprintf("fault %d %s", w.Index, w.Fault), from: w.StartMs / 1000, to: w.EndMs / 1000})
	}
	return ws
}

func inWindow(ws []window, from, to float64) bool {
	for _, w := range ws {
		if from <= w.to && to >= w.from {
			return true
		}
	}
	return false
}

func secs(d time.Duration) float64 { return d.Seconds() }

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

// union merges overlapping windows, so that shading does not stack.
func union(ws []window) []window {
	sorted := append([]window(nil), ws...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].from < sorted[j].from })
	var out []window
	for _, w := range sorted {
		if n := len(out); n > 0 && w.from <= out[n-1].to {
			out[n-1].to = math.Max(out[n-1].to, w.to)
			continue
		}
		out = append(out, w)
	}
	return out
}

// shade adds a translucent band over the union of the fault windows between
// ymin and ymax.
func shade(p *plot.Plot, ws []window, ymin, ymax float64) error {
	for _, w := range union(ws) {
		pg, err := plotter.NewPolygon(plotter.XYs{{X: w.from, Y: ymin}, {X: w.to, Y: ymin}, {X: w.to, Y: ymax}, {X: w.from, Y: ymax}})
		if err != nil {
			return err
		}
		pg.Color = colFault
		pg.LineStyle.Width = 0
		p.Add(pg)
	}
	return nil
}

func scatter(xys plotter.XYs, c color.Color, shape draw.GlyphDrawer, r vg.Length) (*plotter.Scatter, error) {
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: r, Shape: shape}
	return s, nil
}

func hline(y, x0, x1 float64, c color.Color, dashed bool) (*plotter.Line, error) {
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	}
	return l, nil
}

type sloLine struct {
	ms     float64
	label  string
	dashed bool
}

func sloLines(d *data) []sloLine {
	var out []sloLine
	slo := d.scenario.Invariants.Latency
	if v := slo.P99.Duration; v > 0 {
		out = append(out, sloLine{float64(v) / 1e6, "SLO p99 ≤ " + v.String(), false})
	}
	if v := slo.Max.Duration; v > 0 {
		out = append(out, sloLine{float64(v) / 1e6, "SLO max ≤ " + v.String(), true})
	}
	return out
}

func sloLegend(l sloLine) legendItem {
	if l.dashed {
		return legendItem{l.label, css(colSLO), "dashed"}
	}
	return legendItem{l.label, css(colSLO), "line"}
}

// latencyPlot draws each sample at the moment its Pod became Ready, with
// its latency on a log scale, fault windows shaded and the SLO drawn.
func latencyPlot(d *data) (*plot.Plot, []legendItem, error) {
	p := newPlot("", "run time (s)", "latency (ms, log scale)")
	ws := windowsOf(d.outcome)
	var in, out, unres plotter.XYs
	ymin, ymax := math.Inf(1), math.Inf(-1)
	const floor = 0.1 // ms: a log scale has no zero; faster samples sit on the floor
	for _, s := range d.outcome.Samples {
		lat := float64(s.ReflectedAt-s.ChangedAt) / float64(time.Millisecond)
		lat = math.Max(lat, floor)
		pt := plotter.XY{X: secs(s.ChangedAt), Y: lat}
		switch {
		case s.Unresolved:
			unres = append(unres, pt)
		case inWindow(ws, secs(s.ChangedAt), secs(s.ReflectedAt)):
			in = append(in, pt)
		default:
			out = append(out, pt)
		}
		ymin, ymax = math.Min(ymin, lat), math.Max(ymax, lat)
	}
	slos := sloLines(d)
	for _, l := range slos {
		ymin, ymax = math.Min(ymin, l.ms), math.Max(ymax, l.ms)
	}
	if math.IsInf(ymin, 1) {
		ymin, ymax = 1, 1000
	}
	ymin, ymax = math.Max(ymin/2, floor/2), ymax*1.5
	xmax := math.Max(d.runEnd, 1)
	p.X.Min, p.X.Max = 0, xmax
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = ymin, ymax
	var legend []legendItem
	if len(ws) > 0 {
		legend = append(legend, legendItem{"fault window", css(colFault), "band"})
	}
	if err := shade(p, ws, ymin, ymax); err != nil {
		return nil, nil, err
	}
	for _, l := range slos {
		ln, err := hline(l.ms, 0, xmax, colSLO, l.dashed)
		if err != nil {
			return nil, nil, err
		}
		p.Add(ln)
		legend = append(legend, sloLegend(l))
	}
	for _, s := range []struct {
		xys   plotter.XYs
		c     color.Color
		shape draw.GlyphDrawer
		css   string
		label string
	}{
		{out, colOutside, draw.CircleGlyph{}, "dot", fmt.Sprintf("sample outside faults (%d)", len(out))},
		{in, colInside, draw.CircleGlyph{}, "dot", fmt.Sprintf("sample during a fault (%d)", len(in))},
		{unres, colBad, draw.CrossGlyph{}, "cross", fmt.Sprintf("never reflected, drawn at the run's end (%d)", len(unres))},
	} {
		if len(s.xys) == 0 {
			continue
		}
		sc, err := scatter(s.xys, s.c, s.shape, vg.Points(2.8))
		if err != nil {
			return nil, nil, err
		}
		p.Add(sc)
		legend = append(legend, legendItem{s.label, css(s.c), s.css})
	}
	return p, legend, nil
}

// percentilePlot compares p50/p90/p99/max outside the fault windows with
// each window.
func percentilePlot(d *data) (*plot.Plot, []legendItem, error) {
	p := newPlot("", "", "latency (ms)")
	type series struct {
		label string
		st    invariant.LatencyStats
	}
	var ss []series
	if len(d.outcome.Windows) == 0 {
		ss = append(ss, series{fmt.Sprintf("all samples (%d)", d.outcome.Latency.Count), d.outcome.Latency})
	} else {
		ss = append(ss, series{fmt.Sprintf("outside faults (%d samples)", d.outcome.Outside.Count), d.outcome.Outside})
		for _, w := range d.outcome.Windows {
			ss = append(ss, series{fmt.Sprintf("in fault %d %s, %.1f–%.1f s (%d samples)", w.Index, w.Fault, w.StartMs/1000, w.EndMs/1000, w.Latency.Count), w.Latency})
		}
	}
	var legend []legendItem
	n := len(ss)
	width := vg.Points(math.Min(44, 150/float64(n)))
	for i, s := range ss {
		vals := plotter.Values{s.st.P50, s.st.P90, s.st.P99, s.st.Max}
		b, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, nil, err
		}
		c := seriesCols[i%len(seriesCols)]
		b.Color = c
		b.LineStyle.Width = 0
		b.Offset = width * vg.Length(float64(i)-float64(n-1)/2)
		p.Add(b)
		legend = append(legend, legendItem{s.label, css(c), "bar"})
	}
	p.NominalX("p50", "p90", "p99", "max")
	top := 0.0
	for _, s := range ss {
		top = math.Max(top, s.st.Max)
	}
	top = math.Max(top*1.15, 1)
	for _, l := range sloLines(d) {
		if l.ms > 4*top { // far above every bar: drawing it would flatten them
			legend = append(legend, legendItem{l.label + " (far above every bar, not drawn)", css(colSLO), sloLegend(l).Shape})
			continue
		}
		top = math.Max(top, l.ms*1.1)
		ln, err := hline(l.ms, -0.5, 3.5, colSLO, l.dashed)
		if err != nil {
			return nil, nil, err
		}
		p.Add(ln)
		legend = append(legend, sloLegend(l))
	}
	p.X.Min, p.X.Max = -0.5, 3.5
	p.Y.Min, p.Y.Max = 0, top
	return p, legend, nil
}

// timelinePlot puts fault windows, workload operations, Pod readiness,
// the operator's lost watches and relists, status writes and violations on
// one time axis, one row each.
func timelinePlot(d *data) (*plot.Plot, []legendItem, error) {
	p := newPlot("", "run time (s)", "")
	ws := windowsOf(d.outcome)
	rows := []string{"violations", "status write", "watch lost / relist", "Pod ready", "op annotate", "op delete", "op scale", "op create"}
	faultRow := map[int]float64{}
	for i, w := range d.outcome.Windows {
		faultRow[i] = float64(len(rows))
		rows = append(rows, ws[i].label)
		_ = w
	}
	row := map[string]float64{}
	var ticks plot.ConstantTicks
	for i, r := range rows {
		row[r] = float64(i)
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: r})
	}
	p.Y.Tick.Marker = ticks
	top := float64(len(rows)) - 0.4
	p.Y.Min, p.Y.Max = -0.6, top
	xmax := math.Max(d.runEnd, 1)
	p.X.Min, p.X.Max = 0, xmax
	var legend []legendItem
	if err := shade(p, ws, -0.6, top); err != nil {
		return nil, nil, err
	}
	for i, w := range ws {
		y := faultRow[i]
		pg, err := plotter.NewPolygon(plotter.XYs{{X: w.from, Y: y - 0.28}, {X: w.to, Y: y - 0.28}, {X: w.to, Y: y + 0.28}, {X: w.from, Y: y + 0.28}})
		if err != nil {
			return nil, nil, err
		}
		pg.Color = colFaultBar
		pg.LineStyle.Width = 0
		p.Add(pg)
		if i == 0 {
			legend = append(legend, legendItem{"fault on", css(colFaultBar), "bar"})
		}
	}
	pts := map[string]plotter.XYs{}
	var failedWrites, relists plotter.XYs
	for _, r := range d.records {
		t := secs(r.T)
		switch {
		case r.Kind == history.KindOp:
			key := "op " + r.Op
			if _, ok := row[key]; ok {
				pts[key] = append(pts[key], plotter.XY{X: t, Y: row[key]})
			}
		case r.Kind == history.KindPodReady:
			pts["Pod ready"] = append(pts["Pod ready"], plotter.XY{X: t, Y: row["Pod ready"]})
		case r.Kind == history.KindStatusWrite && r.Err != "":
			failedWrites = append(failedWrites, plotter.XY{X: t, Y: row["status write"]})
		case r.Kind == history.KindReported:
			pts["status write"] = append(pts["status write"], plotter.XY{X: t, Y: row["status write"]})
		case r.Kind == history.KindWatchEnd && lostWatch(r.Op):
			pts["watch lost / relist"] = append(pts["watch lost / relist"], plotter.XY{X: t, Y: row["watch lost / relist"]})
		case r.Kind == history.KindRelist:
			relists = append(relists, plotter.XY{X: t, Y: row["watch lost / relist"]})
		}
	}
	for _, v := range d.outcome.Violations {
		pts["violations"] = append(pts["violations"], plotter.XY{X: secs(v.T), Y: row["violations"]})
	}
	var slow plotter.XYs // samples over the p99 SLO: what makes the latency invariant fail
	if lim := d.scenario.Invariants.Latency.P99.Duration; lim > 0 {
		for _, s := range d.outcome.Samples {
			if !s.Unresolved && s.ReflectedAt-s.ChangedAt > lim {
				slow = append(slow, plotter.XY{X: secs(s.ChangedAt), Y: row["violations"]})
			}
		}
	}
	if len(slow) > 0 {
		sc, err := scatter(slow, colInside, draw.TriangleGlyph{}, vg.Points(3.2))
		if err != nil {
			return nil, nil, err
		}
		p.Add(sc)
		legend = append(legend, legendItem{fmt.Sprintf("Pod whose sample is over the SLO p99 (%d)", len(slow)), css(colInside), "dot"})
	}
	for _, r := range rows {
		if len(pts[r]) == 0 {
			continue
		}
		c, shape, cs, label := color.Color(colOutside), draw.GlyphDrawer(draw.BoxGlyph{}), "square", ""
		switch r {
		case "violations":
			c, shape, cs, label = colBad, draw.CrossGlyph{}, "cross", "invariant violated"
		case "status write":
			c, shape, cs, label = colGreen, draw.CircleGlyph{}, "dot", "status committed (truth)"
		case "Pod ready":
			c, shape, cs, label = colPurple, draw.CircleGlyph{}, "dot", "Pod became Ready (truth)"
		case "watch lost / relist":
			c, shape, cs, label = colBad, draw.CrossGlyph{}, "cross", "operator watch ended early (connection lost, terminated, gone, error)"
		case "op create":
			label = "workload operation"
		}
		sc, err := scatter(pts[r], c, shape, vg.Points(2.6))
		if err != nil {
			return nil, nil, err
		}
		p.Add(sc)
		if label != "" {
			legend = append(legend, legendItem{label, css(c), cs})
		}
	}
	if len(relists) > 0 {
		sc, err := scatter(relists, colGreen, draw.TriangleGlyph{}, vg.Points(3.2))
		if err != nil {
			return nil, nil, err
		}
		p.Add(sc)
		legend = append(legend, legendItem{fmt.Sprintf("operator informer relisted (%d)", len(relists)), css(colGreen), "dot"})
	}
	if len(failedWrites) > 0 {
		sc, err := scatter(failedWrites, colBad, draw.RingGlyph{}, vg.Points(3.6))
		if err != nil {
			return nil, nil, err
		}
		p.Add(sc)
		legend = append(legend, legendItem{fmt.Sprintf("status write rejected, e.g. conflict (%d)", len(failedWrites)), css(colBad), "ring"})
	}
	return p, legend, nil
}

// lostWatch reports whether a watch-end cause is an early end, one that
// blinds the informer until it watches again or relists (not a watch's
// own timeout or the operator stopping).
func lostWatch(cause string) bool {
	return cause != "timeout" && cause != "stopped"
}

var svgHead = regexp.MustCompile(`(?s)^.*?<svg width="[^"]*" height="[^"]*"`)

// svg renders a plot to SVG markup for inlining in HTML: no XML prologue,
// sized by the page (viewBox kept), with an accessible label.
func svg(p *plot.Plot, label string) (string, error) {
	c := vgsvg.New(plotW, plotH)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	loc := svgHead.FindStringIndex(s)
	if loc == nil {
		return "", fmt.Errorf("htmlreport: unexpected SVG from gonum/plot: %.80q", s)
	}
	label = strings.NewReplacer(`"`, "'", "<", "", ">", "").Replace(label)
	return `<svg class="plot" role="img" aria-label="` + label + `"` + s[loc[1]:], nil
}
