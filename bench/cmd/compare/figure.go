package main

import (
	"fmt"
	"image/color"
	"io"
	"strconv"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// A figure is a whole picture (heading, legend and panels) that draws itself
// onto any canvas; the same figure is saved as SVG and as PNG.
type figure func(dc draw.Canvas)

// chartSize is a figure's size in pixels at 96 per inch: the PNG's pixels,
// and the size a browser shows the SVG at.
type chartSize struct{ W, H int }

// defaultChartSize suits a README; 640x360 suits a terminal image viewer and
// 1280x720 a slide (13.33 x 7.5 inches, presentation software's 16:9).
var defaultChartSize = chartSize{W: 960, H: 540}

// minChartSize is the smallest figure whose text still fits.
var minChartSize = chartSize{W: 640, H: 360}

func (s *chartSize) String() string { return fmt.Sprintf("%dx%d", s.W, s.H) }

// Set parses WxH, e.g. 960x540; it implements flag.Value.
func (s *chartSize) Set(v string) error {
	var w, h int
	if n, err := fmt.Sscanf(v, "%dx%d", &w, &h); err != nil || n != 2 || fmt.Sprintf("%dx%d", w, h) != v {
		return fmt.Errorf("want WIDTHxHEIGHT in pixels, e.g. %v", &defaultChartSize)
	}
	if w < minChartSize.W || h < minChartSize.H {
		return fmt.Errorf("%dx%d is smaller than %v", w, h, &minChartSize)
	}
	s.W, s.H = w, h
	return nil
}

// lengths returns the size in vg units (96 pixels = 1 inch).
func (s chartSize) lengths() (w, h vg.Length) {
	return vg.Length(s.W) * vg.Inch / 96, vg.Length(s.H) * vg.Inch / 96
}

// textScale is how much larger than at the README size text is drawn: text
// grows with the figure (a slide looks like the README picture, only
// bigger) and shrinks with it down to 0.8, below which a smaller figure
// wraps its text more instead.
func (s chartSize) textScale() vg.Length {
	return vg.Length(max(0.8, min(float64(s.W)/float64(defaultChartSize.W), float64(s.H)/float64(defaultChartSize.H))))
}

// Colors: one hue per side of a comparison; the pale ones mark p99.
var (
	sixColor      = color.RGBA{R: 0xc0, G: 0x50, B: 0x40, A: 0xff}
	sixPaleColor  = color.RGBA{R: 0xe8, G: 0xb0, B: 0xa8, A: 0xff}
	muxColor      = color.RGBA{R: 0x30, G: 0x70, B: 0xb0, A: 0xff}
	muxPaleColor  = color.RGBA{R: 0xa8, G: 0xc4, B: 0xe4, A: 0xff}
	captionColor  = color.Gray{Y: 0x30}
	sansTypeface  = font.Font{Typeface: "Liberation", Variant: "Sans"}
	figureMargin  = vg.Points(10)
	headingGapPts = vg.Points(4)
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
	y -= headingGapPts * k
	caption := textStyle(10*k, false)
	caption.Color = captionColor
	put(caption, h.caption)
	y -= headingGapPts * k
	y = drawLegendRow(dc, h.legend, textStyle(10*k, false), x, y, width)
	rest := dc
	rest.Max.Y = y - headingGapPts*k
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

// render draws fig on a size canvas through an outlineCanvas, so its text is
// glyph outlines, and returns that canvas for inspection.
func render(base vg.CanvasSizer, fig figure) *outlineCanvas {
	oc := &outlineCanvas{CanvasSizer: base}
	dc := draw.New(oc)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	fig(dc)
	return oc
}

// writeSVG writes fig as a self-contained SVG of the given size.
func writeSVG(w io.Writer, size chartSize, fig figure) (*outlineCanvas, error) {
	c := vgsvg.New(size.lengths())
	oc := render(c, fig)
	_, err := c.WriteTo(w)
	return oc, err
}

// writePNG writes fig as a PNG of size pixels.
func writePNG(w io.Writer, size chartSize, fig figure) (*outlineCanvas, error) {
	width, height := size.lengths()
	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	oc := render(c, fig)
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return oc, err
}

// saveFigure writes fig to base+".svg" and base+".png" and returns their names.
func saveFigure(base string, size chartSize, fig figure) ([]string, error) {
	names := []string{base + ".svg", base + ".png"}
	for i, write := range []func(io.Writer, chartSize, figure) (*outlineCanvas, error){writeSVG, writePNG} {
		if err := writeFile(names[i], func(w io.Writer) error {
			_, err := write(w, size, fig)
			return err
		}); err != nil {
			return nil, err
		}
	}
	return names, nil
}
