package main

import (
	"image/color"
	"strconv"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Colors: one hue per side of a comparison; the pale ones mark p99.
var (
	sixColor     = color.RGBA{R: 0xc0, G: 0x50, B: 0x40, A: 0xff}
	sixPaleColor = color.RGBA{R: 0xe8, G: 0xb0, B: 0xa8, A: 0xff}
	muxColor     = color.RGBA{R: 0x30, G: 0x70, B: 0xb0, A: 0xff}
	muxPaleColor = color.RGBA{R: 0xa8, G: 0xc4, B: 0xe4, A: 0xff}
	captionColor = color.Gray{Y: 0x30}
)

// Layout: every figure's text is Liberation Sans, one of the fonts compiled
// into gonum/plot; the margin keeps everything off the edges, and
// headingGap (times the text scale) separates the heading's parts.
var (
	sansTypeface = font.Font{Typeface: "Liberation", Variant: "Sans"}
	figureMargin = vg.Points(10)
	headingGap   = vg.Points(4)
)

// textStyle is Liberation Sans of size points, bold or not, left-aligned.
func textStyle(size vg.Length, bold bool) text.Style {
	f := font.From(sansTypeface, size)
	if bold {
		f.Weight = xfont.WeightBold
	}
	return text.Style{Color: color.Black, Font: f, Handler: plot.DefaultTextHandler}
}

// newPanel returns a plot whose every text uses Liberation Sans, sized by k
// (see chartSize.textScale), with the given title and axis labels.
func newPanel(k vg.Length, title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = textStyle(11*k, true).Font
	p.Title.Padding = 6 * k
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(sansTypeface, 10*k)
		ax.Tick.Label.Font = font.From(sansTypeface, 9*k)
		ax.Padding = 2 * k
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Y.Tick.Marker = plainTicks{}
	return p
}

// plainTicks places ticks as plot.DefaultTicks does but labels them with as
// few digits as their values need (500, not 500.00).
type plainTicks struct{}

// Ticks returns DefaultTicks' ticks between lo and hi, relabelled.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// legendEntry is one swatch and its label in a figure's legend row.
type legendEntry struct {
	label string
	thumb plot.Thumbnailer
}

// heading is the text above a figure's panels: a bold title, a caption, and
// a legend row, each wrapped to the figure's width.
type heading struct {
	title   string
	caption string
	legend  []legendEntry
}

// draw draws the heading at the top of dc, scaled by k, and returns the
// canvas that is left below it.
func (h heading) draw(dc draw.Canvas, k vg.Length) draw.Canvas {
	x, width := dc.Min.X+figureMargin, dc.Max.X-dc.Min.X-2*figureMargin
	y := dc.Max.Y - figureMargin
	put := func(sty text.Style, s string) {
		for _, line := range wrap(s, sty, width) {
			y = fillLine(dc, sty, x, y, line)
		}
	}
	put(textStyle(13*k, true), h.title)
	y -= headingGap * k
	caption := textStyle(10*k, false)
	caption.Color = captionColor
	put(caption, h.caption)
	y -= headingGap * k
	y = drawLegendRow(dc, h.legend, textStyle(10*k, false), x, y, width)
	rest := dc
	rest.Max.Y = y - headingGap*k
	return rest
}

// fillLine draws one line of text in sty with its top left corner at (x,
// top) and returns the top of the next line.
func fillLine(dc draw.Canvas, sty text.Style, x, top vg.Length, s string) vg.Length {
	f := font.DefaultCache.Lookup(sty.Font, sty.Font.Size)
	e := f.Extents()
	dc.SetColor(sty.Color)
	dc.FillString(f, vg.Point{X: x, Y: top - e.Ascent}, s)
	return top - e.Height
}

// drawLegendRow lays the entries out left to right from (x0, top), starting
// a new line when the next would pass width, and returns the y below them.
func drawLegendRow(dc draw.Canvas, entries []legendEntry, sty text.Style, x0, top, width vg.Length) vg.Length {
	e := sty.FontExtents()
	sw := sty.Font.Size * 1.6 // swatch width
	gap := sty.Font.Size
	x, y := x0, top
	for _, en := range entries {
		w := sw + gap/2 + sty.Width(en.label)
		if x > x0 && x+w > x0+width {
			x, y = x0, y-e.Height
		}
		base := y - e.Ascent
		box := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x, Y: base},
			Max: vg.Point{X: x + sw, Y: base + sty.Font.Size*0.7},
		}}
		en.thumb.Thumbnail(&box)
		fillLine(dc, sty, x+sw+gap/2, y, en.label)
		x += w + gap*1.5
	}
	return y - e.Height
}

// wrap splits s into lines no wider than width in sty, breaking at spaces; a
// single word wider than width gets a line of its own.
func wrap(s string, sty text.Style, width vg.Length) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			if line != "" && sty.Width(line+" "+w) > width {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		lines = append(lines, line)
	}
	return lines
}

// drawPanels draws the plots side by side in dc, splitting its width evenly
// and leaving the figure's margin around them.
func drawPanels(dc draw.Canvas, k vg.Length, panels ...*plot.Plot) {
	inner := draw.Crop(dc, figureMargin, -figureMargin, figureMargin, 0)
	w := (inner.Max.X - inner.Min.X) / vg.Length(len(panels))
	for i, p := range panels {
		c := inner
		c.Min.X = inner.Min.X + vg.Length(i)*w
		c.Max.X = c.Min.X + w
		if i > 0 {
			c.Min.X += 8 * k // gap between panels
		}
		p.Draw(c)
	}
}
