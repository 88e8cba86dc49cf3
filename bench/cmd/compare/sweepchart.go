package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// modelColor draws the legend's model line (each panel's model lines take
// their side's color).
var modelColor = color.Gray{Y: 0x50}

// sweepFigure draws one panel per comparison group: measured requests/s of
// six connections and of one multiplexed connection against the swept
// parameter, as solid lines with dots, and the model's prediction for each
// as a dashed line in the same color, on a log scale.
func sweepFigure(sr sweepReport) figure {
	return func(dc draw.Canvas) {
		k := scaleOf(dc)
		six, mux := sideLine(sixColor, false), sideLine(muxColor, false)
		model := sideLine(modelColor, true)
		rest := heading{
			title:   sweepTitle(sr),
			caption: sweepCaption(sr),
			legend: []legendEntry{
				{"six connections, measured", six},
				{"one multiplexed connection, measured", mux},
				{"model (same color, dashed)", model},
			},
		}.draw(dc, k)
		var panels []*plot.Plot
		for _, g := range sr.groups() {
			panels = append(panels, sweepPanel(sr, g, k))
		}
		drawPanels(rest, k, panels...)
	}
}

// sideLine is a legend thumbnail: a line in c, dashed for the model.
func sideLine(c color.Color, dashed bool) *plotter.Line {
	l := &plotter.Line{LineStyle: draw.LineStyle{Color: c, Width: vg.Points(2)}}
	if dashed {
		l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return l
}

// groups lists the comparison groups measured, in table order, with each
// one's delayed leg.
func (sr sweepReport) groups() [][2]string {
	var gs [][2]string
	for _, pt := range sr.Points {
		for _, x := range pt.Results {
			if !slices.ContainsFunc(gs, func(g [2]string) bool { return g[0] == x.Group }) {
				gs = append(gs, [2]string{x.Group, x.DelayedLeg})
			}
		}
	}
	return gs
}

// sweepPanel is one group's panel: x the swept value, y requests/s.
func sweepPanel(sr sweepReport, g [2]string, k vg.Length) *plot.Plot {
	xLabel := "clients"
	if sr.Param == "rtt" {
		xLabel = "rtt (ms) on the delayed leg"
	}
	p := newPanel(k, fmt.Sprintf("%s (%s)", g[0], g[1]), xLabel, "requests/s (log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	var xs []float64
	for _, side := range []struct {
		multiplexed bool
		color       color.Color
	}{{false, sixColor}, {true, muxColor}} {
		var measured, model plotter.XYs
		for _, pt := range sr.Points {
			for _, x := range pt.Results {
				if x.Group != g[0] || x.Multiplexed != side.multiplexed {
					continue
				}
				if x.ReqPerSec > 0 {
					measured = append(measured, plotter.XY{X: pt.Value, Y: x.ReqPerSec})
				}
				if m := modelReqPerSec(pt.Params, x); m > 0 {
					model = append(model, plotter.XY{X: pt.Value, Y: m})
				}
				xs = append(xs, pt.Value)
			}
		}
		if len(model) > 0 {
			l, err := plotter.NewLine(model)
			if err != nil {
				panic(err) // only for NaN or infinite values; these are finite and positive
			}
			l.LineStyle = sideLine(side.color, true).LineStyle
			p.Add(l)
		}
		if len(measured) > 0 {
			l, s, err := plotter.NewLinePoints(measured)
			if err != nil {
				panic(err) // as above
			}
			l.LineStyle = sideLine(side.color, false).LineStyle
			s.Color, s.Shape, s.Radius = side.color, draw.CircleGlyph{}, 2.5*k
			p.Add(l, s)
		}
	}
	// Ticks at the swept values themselves; a wide range of counts reads
	// better on a log scale.
	slices.Sort(xs)
	xs = slices.Compact(xs)
	if len(xs) > 1 && xs[0] > 0 && xs[len(xs)-1]/xs[0] >= 8 && sr.Param == "clients" {
		p.X.Scale = plot.LogScale{}
	}
	var ticks []plot.Tick
	for _, x := range xs {
		ticks = append(ticks, plot.Tick{Value: x, Label: fmt.Sprintf("%g", x)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	return p
}

// sweepTitle states how the gain changes from the first value to the last:
// the multiplexed/six-connection ratio averaged over the groups.
func sweepTitle(sr sweepReport) string {
	name := sr.Param
	if len(sr.Points) < 2 {
		return "Six connections against one multiplexed connection as " + name + " changes"
	}
	first, last := sr.Points[0], sr.Points[len(sr.Points)-1]
	a, b := meanRatio(first.Results), meanRatio(last.Results)
	if a == 0 || b == 0 {
		return "Six connections against one multiplexed connection as " + name + " changes"
	}
	return fmt.Sprintf("One multiplexed connection against six: %.1fx the requests/s at %s %s, %.1fx at %s",
		a, name, sr.spec.format(first.Value), b, sr.spec.format(last.Value))
}

// meanRatio averages the multiplexed results' ratios to their baselines.
func meanRatio(rs []result) float64 {
	sum, n := 0.0, 0
	for _, x := range rs {
		if x.Ratio > 0 {
			sum, n = sum+x.Ratio, n+1
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// sweepCaption gives the model and the workload that stays fixed.
func sweepCaption(sr sweepReport) string {
	p := sr.Params
	s := fmt.Sprintf("Measured requests/s (solid) and the model requests / (ceil(requests/k) × (rtt + think)) (dashed), "+
		"k = min(clients, 6) for six connections and min(clients, %d streams) for one multiplexed connection. "+
		"Loopback TCP with the delay on each pair's delayed leg (in the panel titles). %d requests", p.Streams, p.Requests)
	if p.Runs > 1 {
		s += fmt.Sprintf(" (median of %d runs)", p.Runs)
	}
	if sr.Param != "clients" {
		s += fmt.Sprintf(", %d clients", p.Clients)
	}
	if sr.Param != "rtt" {
		s += fmt.Sprintf(", rtt %v", p.RTT)
	}
	return s + fmt.Sprintf(", %d B responses, think %v.", p.Size, p.Think)
}

// logTicks labels a log axis at 1, 2 and 5 times each power of ten, and
// marks the other integer multiples without a label.
type logTicks struct{}

// Ticks returns the ticks between lo and hi (both > 0).
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = fmt.Sprintf("%g", v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}
