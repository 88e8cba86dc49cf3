package main

import (
	"errors"

	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
)

// outlineCanvas draws text as filled glyph outlines taken from the font file
// (the Liberation fonts compiled into gonum/plot) instead of passing strings
// to the canvas underneath. An SVG drawn through it has no text elements and
// names no font, so it looks the same whatever fonts a viewer has installed,
// and a PNG drawn through it has the same letters as the SVG.
type outlineCanvas struct {
	vg.CanvasSizer

	buf     sfnt.Buffer
	drawn   []string // every string drawn, in order
	missing []rune   // characters the font has no glyph for (drawn as its .notdef box)
}

// FillString fills the outlines of str's glyphs with the current color, the
// baseline starting at pt. Advances and kerning are the ones gonum's
// font.Face.Width measures with, so text ends where the layout expects.
func (c *outlineCanvas) FillString(f font.Face, pt vg.Point, str string) {
	c.drawn = append(c.drawn, str)
	if f.Face == nil || f.Font.Size == 0 {
		return
	}
	// With ppem set to the font's units per em, sfnt reports outlines and
	// advances in font units, as font.Face.Width asks for them.
	ppem := fixed.Int26_6(f.Face.UnitsPerEm())
	scale := f.Font.Size / vg.Length(ppem)
	var (
		path    vg.Path
		x       fixed.Int26_6 // pen position, font units
		prev    sfnt.GlyphIndex
		hasPrev bool
	)
	at := func(p fixed.Point26_6) vg.Point {
		// sfnt's y axis points down, vg's up.
		return vg.Point{X: pt.X + vg.Length(x+p.X)*scale, Y: pt.Y - vg.Length(p.Y)*scale}
	}
	for _, r := range str {
		idx, err := f.Face.GlyphIndex(&c.buf, r)
		if err != nil || idx == 0 {
			c.missing = append(c.missing, r)
		}
		if hasPrev {
			k, err := f.Face.Kern(&c.buf, prev, idx, ppem, 0)
			if err == nil {
				x += k
			} else if !errors.Is(err, sfnt.ErrNotFound) {
				panic(err) // as font.Face.Width does: the font file is broken
			}
		}
		segs, err := f.Face.LoadGlyph(&c.buf, idx, ppem, nil)
		if err != nil {
			panic(err) // as above
		}
		for _, s := range segs {
			switch s.Op {
			case sfnt.SegmentOpMoveTo:
				if len(path) > 0 {
					path.Close()
				}
				path.Move(at(s.Args[0]))
			case sfnt.SegmentOpLineTo:
				path.Line(at(s.Args[0]))
			case sfnt.SegmentOpQuadTo:
				path.QuadTo(at(s.Args[0]), at(s.Args[1]))
			case sfnt.SegmentOpCubeTo:
				path.CubeTo(at(s.Args[0]), at(s.Args[1]), at(s.Args[2]))
			}
		}
		adv, err := f.Face.GlyphAdvance(&c.buf, idx, ppem, 0)
		if err != nil {
			panic(err) // as above
		}
		x += adv
		prev, hasPrev = idx, true
	}
	if len(path) > 0 {
		path.Close()
		c.Fill(path)
	}
}
