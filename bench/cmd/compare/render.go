package main

import (
	"fmt"
	"image/color"
	"io"

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

// String prints the size as -chart-size takes it; it implements flag.Value.
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

// render draws fig on a white background on base through an outlineCanvas,
// so its text is glyph outlines, and returns that canvas for inspection.
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
