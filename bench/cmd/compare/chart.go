package main

import (
	"fmt"
	"image/color"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// pair is one comparison group's two results; a side the -strategies filter
// left out is nil.
type pair struct {
	group    string
	six, mux *result
}

// pairs groups r's results by comparison group, in table order.
func (r report) pairs() []pair {
	var ps []pair
	for i := range r.Results {
		x := &r.Results[i]
		j := slices.IndexFunc(ps, func(p pair) bool { return p.group == x.Group })
		if j < 0 {
			ps = append(ps, pair{group: x.Group})
			j = len(ps) - 1
		}
		if x.Multiplexed {
			ps[j].mux = x
		} else {
			ps[j].six = x
		}
	}
	return ps
}

// compareFigure draws r as two panels, requests/s and p50/p99 latency, each
// a group of bars per comparison (six connections next to one multiplexed
// connection) labelled with its value. The title gives the measured ratio;
// the caption the link, the delayed legs, the workload and the model's
// prediction.
func compareFigure(r report) figure {
	return func(dc draw.Canvas) {
		k := scaleOf(dc)
		ps := r.pairs()
		rest := heading{
			title:   compareTitle(ps),
			caption: compareCaption(r, ps),
			legend: []legendEntry{
				{"six connections", swatch{sixColor}},
				{"one multiplexed connection", swatch{muxColor}},
				{"p99 latency", swatch{sixPaleColor, muxPaleColor}},
			},
		}.draw(dc, k)
		// Each panel gets half the width; about 50 points of it go to the
		// y axis's ticks and label.
		dataW := (dc.Max.X-dc.Min.X-2*figureMargin)/2 - 50*k
		rate := newPanel(k, "requests/s (higher is better)", "", "requests/s")
		lat := newPanel(k, "latency (lower is better)", "", "ms: p50 solid, p99 pale")
		var rateTicks, latTicks []string
		var six, mux, six50, six99, mux50, mux99 []float64
		for _, p := range ps {
			tick := p.group
			if p.mux != nil && p.mux.Ratio > 0 {
				tick = fmt.Sprintf("%s (%.1fx)", p.group, p.mux.Ratio)
			}
			rateTicks, latTicks = append(rateTicks, tick), append(latTicks, p.group)
			s, m := valueOf(p.six), valueOf(p.mux)
			six, mux = append(six, s.ReqPerSec), append(mux, m.ReqPerSec)
			six50, six99 = append(six50, s.P50ms), append(six99, s.P99ms)
			mux50, mux99 = append(mux50, m.P50ms), append(mux99, m.P99ms)
		}
		addBars(rate, k, dataW, []barSeries{{six, sixColor}, {mux, muxColor}})
		addBars(lat, k, dataW, []barSeries{{six50, sixColor}, {six99, sixPaleColor}, {mux50, muxColor}, {mux99, muxPaleColor}})
		rate.NominalX(rateTicks...)
		lat.NominalX(latTicks...)
		drawPanels(rest, k, rate, lat)
	}
}

// valueOf is *x, or a zero result for a side that was not run.
func valueOf(x *result) result {
	if x == nil {
		return result{}
	}
	return *x
}

// compareTitle states the measured gain: the range of the groups' ratios.
func compareTitle(ps []pair) string {
	var ratios []float64
	for _, p := range ps {
		if p.mux != nil && p.mux.Ratio > 0 {
			ratios = append(ratios, p.mux.Ratio)
		}
	}
	switch {
	case len(ratios) == 0:
		return "Six connections against one multiplexed connection"
	case slices.Min(ratios) == slices.Max(ratios) || len(ratios) == 1:
		return fmt.Sprintf("One multiplexed connection: %.1fx the requests/s of six connections", ratios[0])
	default:
		return fmt.Sprintf("One multiplexed connection: %.1fx to %.1fx the requests/s of six connections",
			slices.Min(ratios), slices.Max(ratios))
	}
}

// compareCaption names the link and where its delay sits, the workload, and
// what the model predicts for each side.
func compareCaption(r report, ps []pair) string {
	p := r.Params
	var legs []string
	for _, x := range ps {
		leg := valueOf(x.six).DelayedLeg
		if leg == "" {
			leg = valueOf(x.mux).DelayedLeg
		}
		legs = append(legs, x.group+" "+leg)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s on the delayed leg: %s. %d clients, %d requests",
		r.describeLink(), strings.Join(legs, ", "), p.Clients, p.Requests)
	if p.Runs > 1 {
		fmt.Fprintf(&b, " (median of %d runs)", p.Runs)
	}
	fmt.Fprintf(&b, ", %d B responses, think %v. ", p.Size, p.Think)
	six, mux := p.model(false), p.model(true)
	fmt.Fprintf(&b, "Model ceil(requests/concurrency) × (rtt + think): six connections %v (%s req/s), one multiplexed connection (up to %d streams) %v (%s req/s).",
		six, modelRate(p.Requests, six), p.Streams, mux, modelRate(p.Requests, mux))
	return b.String()
}

// modelRate is n requests over d as requests/s ("-" for no time at all).
func modelRate(n int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return formatValue(float64(n) / d.Seconds())
}

// formatValue prints a bar's value with three or so significant digits.
func formatValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// barSeries is one bar per comparison group, in one color.
type barSeries struct {
	values plotter.Values
	color  color.Color
}

// addBars adds the series to p side by side within each group, sized to fit
// dataW, each bar labelled with its value above it (0 marks a strategy that
// was not run: no bar, no label).
func addBars(p *plot.Plot, k, dataW vg.Length, series []barSeries) {
	n := len(series)
	groups := len(series[0].values)
	w := max(1, min(dataW/vg.Length(groups)*0.8/vg.Length(n), 40*k))
	// Labels shrink (down to 6 points) until the widest fits its bar with a
	// little room to spare.
	size := 9 * k
	widest := vg.Length(0)
	for _, s := range series {
		for _, v := range s.values {
			widest = max(widest, textStyle(size, false).Width(formatValue(v)))
		}
	}
	if widest > w*0.9 {
		size = max(6, size*w*0.9/widest)
	}
	p.Y.Min = 0
	for i, s := range series {
		bc, err := plotter.NewBarChart(s.values, w)
		if err != nil {
			panic(err) // only for a non-positive width, which w never is
		}
		bc.Color = s.color
		bc.LineStyle.Width = 0
		bc.Offset = (vg.Length(i) - vg.Length(n-1)/2) * w
		p.Add(bc)
		var xys plotter.XYs
		var texts []string
		for j, v := range s.values {
			if v > 0 {
				xys = append(xys, plotter.XY{X: float64(j), Y: v})
				texts = append(texts, formatValue(v))
			}
		}
		if len(xys) == 0 {
			continue
		}
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
		if err != nil {
			panic(err) // the points and labels are built in pairs above
		}
		for j := range labels.TextStyle {
			sty := textStyle(size, false)
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
			labels.TextStyle[j] = sty
		}
		labels.Offset = vg.Point{X: bc.Offset, Y: 2 * k}
		p.Add(labels)
	}
}

// swatch is a legend thumbnail: its colors side by side.
type swatch []color.Color

// Thumbnail fills c's rectangle with the colors as equal vertical stripes.
func (s swatch) Thumbnail(c *draw.Canvas) {
	w := (c.Max.X - c.Min.X) / vg.Length(len(s))
	for i, col := range s {
		r := c.Rectangle
		r.Min.X = c.Min.X + vg.Length(i)*w
		r.Max.X = r.Min.X + w
		c.SetColor(col)
		c.Fill(r.Path())
	}
}

// scaleOf is the text scale (see chartSize.textScale) for a canvas dc's size.
func scaleOf(dc draw.Canvas) vg.Length {
	size := chartSize{W: int((dc.Max.X - dc.Min.X) / vg.Inch * 96), H: int((dc.Max.Y - dc.Min.Y) / vg.Inch * 96)}
	return size.textScale()
}
