package qr

import (
	"bytes"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// MaxPNGSize is the largest PNG PNG renders, in pixels.
const MaxPNGSize = 8192

// recovery is the error-correction level of every code: Medium (~15%),
// enough for a scuffed label while keeping the symbol small.
const recovery = qrcode.Medium

// matrix returns the modules of content's QR symbol, quiet zone (4 modules)
// included; true is dark.
func matrix(content string) ([][]bool, error) {
	if content == "" {
		return nil, fmt.Errorf("%w: empty qr content", ErrInvalid)
	}
	q, err := qrcode.New(content, recovery)
	if err != nil {
		return nil, fmt.Errorf("%w: qr content: %v", ErrInvalid, err)
	}
	return q.Bitmap(), nil
}

// PNG renders content as a size×size pixel PNG with a 4-module quiet zone.
// A size too small for the symbol yields a larger image.
func PNG(content string, size int) ([]byte, error) {
	if size <= 0 || size > MaxPNGSize {
		return nil, fmt.Errorf("%w: png size %d: want 1 to %d pixels", ErrInvalid, size, MaxPNGSize)
	}
	if content == "" {
		return nil, fmt.Errorf("%w: empty qr content", ErrInvalid)
	}
	q, err := qrcode.New(content, recovery)
	if err != nil {
		return nil, fmt.Errorf("%w: qr content: %v", ErrInvalid, err)
	}
	b, err := q.PNG(size)
	if err != nil {
		return nil, fmt.Errorf("render png: %w", err)
	}
	return b, nil
}

// svgModule is the size of one module in the SVG's nominal pixel size.
const svgModule = 8

// SVG renders content as an SVG document: one unit per module in the view
// box (4-module quiet zone included), a white background and one black path
// of module-aligned rectangles drawn with crisp edges, so it scales to any
// size without blurring.
func SVG(content string) ([]byte, error) {
	m, err := matrix(content)
	if err != nil {
		return nil, err
	}
	n := len(m)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`+"\n", n, n, n*svgModule, n*svgModule)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", n, n)
	b.WriteString(`<path fill="#000000" d="`)
	runs(m, func(x, y, w int) {
		fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, w, w)
	})
	b.WriteString(`"/>` + "\n</svg>\n")
	return b.Bytes(), nil
}

// runs calls f for every horizontal run of dark modules: w modules from
// column x on row y.
func runs(m [][]bool, f func(x, y, w int)) {
	for y, row := range m {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			f(start, y, x-start)
		}
	}
}
