package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chartSizes are the sizes the charts must fit: a terminal image viewer, the
// README, and a slide (13.33 x 7.5 inches, presentation software's 16:9).
var chartSizes = []chartSize{{W: 640, H: 360}, defaultChartSize, {W: 1280, H: 720}}

// checkSVG fails t unless svg is well-formed XML whose root is an <svg> of
// the given size with at least minPaths paths, no text element and no
// reference to a font: nothing in it depends on what a viewer has installed.
func checkSVG(t *testing.T, svg []byte, size chartSize, minPaths int) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root, paths := "", 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = el.Name.Local
			w, h := size.lengths()
			want := map[string]string{"width": fmt.Sprintf("%gpt", w.Points()), "height": fmt.Sprintf("%gpt", h.Points())}
			for _, a := range el.Attr {
				if v, ok := want[a.Name.Local]; ok && a.Value != v {
					t.Errorf("<svg %s=%q>, want %q", a.Name.Local, a.Value, v)
				}
			}
		}
		switch el.Name.Local {
		case "path":
			paths++
		case "text", "tspan", "textPath", "font", "font-face", "style":
			t.Errorf("SVG has a <%s> element: its look depends on the viewer's fonts", el.Name.Local)
		}
		for _, a := range el.Attr {
			if strings.Contains(strings.ToLower(a.Name.Local+"="+a.Value), "font") {
				t.Errorf("SVG <%s> names a font: %s=%q", el.Name.Local, a.Name.Local, a.Value)
			}
		}
	}
	if root != "svg" || paths < minPaths {
		t.Errorf("SVG root <%s> with %d paths; want <svg> with at least %d, a path per string drawn", root, paths, minPaths)
	}
}

// checkPNG fails t unless img is a PNG of size pixels whose outer band (half
// the figure's margin) is blank: nothing ran off an edge.
func checkPNG(t *testing.T, raw []byte, size chartSize) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != size.W || b.Dy() != size.H {
		t.Fatalf("PNG is %dx%d, want %v", b.Dx(), b.Dy(), &size)
	}
	band := int(figureMargin.Points() / 72 * 96 / 2)
	inked := 0
	var first image.Point
	for _, edge := range []image.Rectangle{
		image.Rect(b.Min.X, b.Min.Y, b.Max.X, b.Min.Y+band), // top
		image.Rect(b.Min.X, b.Max.Y-band, b.Max.X, b.Max.Y), // bottom
		image.Rect(b.Min.X, b.Min.Y, b.Min.X+band, b.Max.Y), // left
		image.Rect(b.Max.X-band, b.Min.Y, b.Max.X, b.Max.Y), // right
	} {
		for y := edge.Min.Y; y < edge.Max.Y; y++ {
			for x := edge.Min.X; x < edge.Max.X; x++ {
				if r, g, bl, _ := img.At(x, y).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
					if inked == 0 {
						first = image.Pt(x, y)
					}
					inked++
				}
			}
		}
	}
	if inked > 0 {
		t.Errorf("%d pixels (corners twice) drawn within %d px of the edge, the first at %v: something is clipped", inked, band, first)
	}
	if !hasInk(img, sixColor) || !hasInk(img, muxColor) {
		t.Errorf("PNG lacks the six-connection or the multiplexed color")
	}
}

// hasInk reports whether some pixel of img is exactly c, looking at every
// fourth pixel in each direction: enough to find a bar.
func hasInk(img image.Image, c color.Color) bool {
	cr, cg, cb, _ := c.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			if r, g, bl, _ := img.At(x, y).RGBA(); r == cr && g == cg && bl == cb {
				return true
			}
		}
	}
	return false
}

// renderBoth draws fig at size as SVG and PNG, checks both, and returns the
// text the SVG drew.
func renderBoth(t *testing.T, fig figure, size chartSize) string {
	t.Helper()
	var svg, pngBuf bytes.Buffer
	oc, err := writeSVG(&svg, size, fig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writePNG(&pngBuf, size, fig); err != nil {
		t.Fatal(err)
	}
	if len(oc.missing) > 0 {
		t.Errorf("no glyph in the font for %q", oc.missing)
	}
	checkSVG(t, svg.Bytes(), size, len(oc.drawn))
	checkPNG(t, pngBuf.Bytes(), size)
	return strings.Join(oc.drawn, "\n")
}

// TestCompareChartFitsAndSaysItAll: at each size both images are valid and
// unclipped; the bars carry their values (requests/s, p50 and p99), and the
// caption names the rtt, every delayed leg, clients, requests and the model's
// prediction for both sides.
func TestCompareChartFitsAndSaysItAll(t *testing.T) {
	r := sampleReport()
	for _, size := range chartSizes {
		t.Run(size.String(), func(t *testing.T) {
			text := renderBoth(t, compareFigure(r), size)
			flat := strings.Join(strings.Fields(text), " ")
			var want []string
			for _, x := range r.Results {
				want = append(want, formatValue(x.ReqPerSec), formatValue(x.P50ms), formatValue(x.P99ms), x.DelayedLeg)
			}
			want = append(want, "9.3x to 10.1x", "rtt 40ms", "60 clients", "600 requests", "think 10ms",
				"six connections 5s (120 req/s)", "up to 100 streams) 500ms (1200 req/s)", "p99")
			for _, w := range want {
				if !strings.Contains(flat, w) {
					t.Errorf("chart text lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestSweepChartFitsAndShowsModel: the sweep's picture is valid and
// unclipped at each size, with a panel per group naming its delayed leg, the
// swept values on the x axis, and the model in the caption and legend.
func TestSweepChartFitsAndShowsModel(t *testing.T) {
	sr := sampleSweep()
	for _, size := range chartSizes {
		t.Run(size.String(), func(t *testing.T) {
			text := renderBoth(t, sweepFigure(sr), size)
			flat := strings.Join(strings.Fields(text), " ")
			for _, w := range []string{"http (client->backend)", "demux (proxy->upstream)", "mux (client->server)",
				"rtt (ms)", "ceil(requests/k) × (rtt + think)", "model", "60 clients", "600 requests",
				"10.0x the requests/s at rtt 0s, 10.0x at 40ms"} {
				if !strings.Contains(flat, w) {
					t.Errorf("sweep chart text lacks %q:\n%s", w, text)
				}
			}
			for _, tick := range []string{"\n0\n", "\n10\n", "\n40\n"} {
				if !strings.Contains("\n"+text+"\n", tick) {
					t.Errorf("no x tick %q:\n%s", strings.TrimSpace(tick), text)
				}
			}
		})
	}
}

// TestCheckedInPicturesAreSelfContained: the pictures README shows, under
// docs/, are valid and unclipped, and their SVGs depend on no font.
func TestCheckedInPicturesAreSelfContained(t *testing.T) {
	for _, name := range []string{"compare", "sweep-rtt"} {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("..", "..", "..", "docs", name)
			raw, err := os.ReadFile(base + ".png")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			size := chartSize{W: cfg.Width, H: cfg.Height}
			checkPNG(t, raw, size)
			svg, err := os.ReadFile(base + ".svg")
			if err != nil {
				t.Fatal(err)
			}
			checkSVG(t, svg, size, 50) // dozens of strings, a path each
		})
	}
}
