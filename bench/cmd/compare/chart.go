package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writeChart draws requests/s per comparison group as grouped bars (six
// connections next to one multiplexed connection) and saves it to name; the
// format follows the extension (.svg, .png, .pdf).
func writeChart(name string, r report) error {
	var groups []string
	seen := map[string]bool{}
	six := map[string]float64{}
	muxd := map[string]float64{}
	for _, x := range r.Results {
		if !seen[x.Group] {
			seen[x.Group] = true
			groups = append(groups, x.Group)
		}
		if x.Multiplexed {
			muxd[x.Group] = x.ReqPerSec
		} else {
			six[x.Group] = x.ReqPerSec
		}
	}
	sixVals := make(plotter.Values, len(groups))
	muxVals := make(plotter.Values, len(groups))
	labels := make([]string, len(groups))
	for i, g := range groups {
		sixVals[i], muxVals[i] = six[g], muxd[g]
		labels[i] = g
		if six[g] > 0 && muxd[g] > 0 {
			labels[i] = fmt.Sprintf("%s (%.1fx)", g, muxd[g]/six[g])
		}
	}

	p := plot.New()
	p.Title.Text = fmt.Sprintf("requests/s, rtt %v on the delayed leg, %d clients, %d B responses",
		r.Params.RTT, r.Params.Clients, r.Params.Size)
	p.Y.Label.Text = "requests/s (higher is better)"
	p.Y.Min = 0
	w := vg.Points(28)
	bars := []struct {
		label string
		vals  plotter.Values
		col   color.Color
		off   vg.Length
	}{
		{"six connections", sixVals, color.RGBA{R: 0xc0, G: 0x50, B: 0x40, A: 0xff}, -w / 2},
		{"one multiplexed connection", muxVals, color.RGBA{R: 0x30, G: 0x70, B: 0xb0, A: 0xff}, w / 2},
	}
	for _, b := range bars {
		bc, err := plotter.NewBarChart(b.vals, w)
		if err != nil {
			return err
		}
		bc.Color = b.col
		bc.LineStyle.Width = 0
		bc.Offset = b.off
		p.Add(bc)
		p.Legend.Add(b.label, bc)
	}
	// Room on both sides for the outer bars, and headroom for the legend.
	p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
	top := 0.0
	for i := range groups {
		top = max(top, sixVals[i], muxVals[i])
	}
	p.Y.Max = 1.3 * top
	p.Legend.Top = true
	p.NominalX(labels...)
	return p.Save(7*vg.Inch, 4*vg.Inch, name)
}
