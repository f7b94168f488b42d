package qr

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-pdf/fpdf"
	"golang.org/x/text/encoding/charmap"
)

// Label sheet geometry, in millimetres: A4 portrait pages holding a grid of
// LabelColumns × LabelRows labels of LabelWidth × LabelHeight, edge to edge
// horizontally (3 × 70 = 210) and centred vertically (0.5 mm above and
// below 8 × 37 = 296), the common "3×8, 70×37 mm" self-adhesive sheet.
// Each label holds, LabelPadding in from its edges, the QR symbol (its quiet
// zone included) in a 33 mm square on the left, and on the right the label
// text (Helvetica 9 pt, wrapped, at most 5 lines) with the short code
// (Courier bold 11 pt) at the bottom.
const (
	PageWidth     = 210.0
	PageHeight    = 297.0
	LabelColumns  = 3
	LabelRows     = 8
	LabelsPerPage = LabelColumns * LabelRows
	LabelWidth    = 70.0
	LabelHeight   = 37.0
	LabelPadding  = 2.0

	sheetLeft = (PageWidth - LabelColumns*LabelWidth) / 2
	sheetTop  = (PageHeight - LabelRows*LabelHeight) / 2
	qrBox     = LabelHeight - 2*LabelPadding
	textGap   = 1.5
	textLeft  = LabelPadding + qrBox + textGap
	textWidth = LabelWidth - textLeft - 3.0
	textSize  = 9.0
	textLine  = 3.9
	textLines = 5
	codeSize  = 11.0
)

// Label is one label to print: the code's symbol, Text (the code's Label
// when empty) and the code's ShortCode.
type Label struct {
	Code Code
	Text string
}

func (l Label) text() string {
	if l.Text != "" {
		return l.Text
	}
	return l.Code.Label
}

// CheckPrintable reports (ErrInvalid) text that label sheets cannot print:
// they use the PDF core fonts, so text must be within Windows-1252 (Latin
// letters with accents, digits, common punctuation).
func CheckPrintable(text string) error {
	if _, err := charmap.Windows1252.NewEncoder().String(text); err != nil {
		return fmt.Errorf("%w: label %q has characters the label sheet cannot print (Latin-1/Windows-1252 only)", ErrInvalid, text)
	}
	return nil
}

// WriteLabels lays out one label per entry on A4 pages (see LabelColumns
// for the geometry) and writes the PDF to w. Every label is checked before
// anything is written. progress, if not nil, is called after each label.
func WriteLabels(w io.Writer, labels []Label, progress func(done, total int)) error {
	if len(labels) == 0 {
		return fmt.Errorf("%w: no labels to print", ErrInvalid)
	}
	enc := charmap.Windows1252.NewEncoder()
	texts := make([]string, len(labels))
	for i, l := range labels {
		if _, ok := normToken(l.Code.Token); !ok || l.Code.URL == "" {
			return fmt.Errorf("%w: label %d: not a minted code", ErrInvalid, i+1)
		}
		t, err := enc.String(strings.Join(strings.Fields(l.text()), " "))
		if err != nil {
			return fmt.Errorf("label %d: %w", i+1, CheckPrintable(l.text()))
		}
		texts[i] = t
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetTitle("QR labels", true)
	pdf.SetCreator("privnum", true)
	pdf.SetFillColor(0, 0, 0)
	pdf.SetTextColor(0, 0, 0)
	for i, l := range labels {
		slot := i % LabelsPerPage
		if slot == 0 {
			pdf.AddPage()
		}
		x := sheetLeft + float64(slot%LabelColumns)*LabelWidth
		y := sheetTop + float64(slot/LabelColumns)*LabelHeight
		if err := drawLabel(pdf, x, y, l.Code, texts[i]); err != nil {
			return fmt.Errorf("label %d: %w", i+1, err)
		}
		if progress != nil {
			progress(i+1, len(labels))
		}
	}
	if err := pdf.Output(w); err != nil {
		return fmt.Errorf("write label sheet: %w", err)
	}
	return nil
}

// drawLabel draws one label with its top-left corner at (x, y); text is
// already in Windows-1252.
func drawLabel(pdf *fpdf.Fpdf, x, y float64, c Code, text string) error {
	m, err := matrix(c.URL)
	if err != nil {
		return err
	}
	// The symbol as one filled path of module-aligned rectangles: crisp at
	// any printer resolution, no seams between modules.
	mod := qrBox / float64(len(m))
	qx, qy := x+LabelPadding, y+LabelPadding
	runs(m, func(cx, cy, w int) {
		x0, y0 := qx+float64(cx)*mod, qy+float64(cy)*mod
		x1, y1 := x0+float64(w)*mod, y0+mod
		pdf.MoveTo(x0, y0)
		pdf.LineTo(x1, y0)
		pdf.LineTo(x1, y1)
		pdf.LineTo(x0, y1)
		pdf.ClosePath()
	})
	pdf.DrawPath("F")

	tx := x + textLeft
	pdf.SetFont("Helvetica", "", textSize)
	lineY := y + LabelPadding + 4*mod + 2.6 // first baseline: cap tops level with the symbol's top
	for _, line := range wrap(pdf, text, textWidth, textLines) {
		pdf.Text(tx, lineY, line)
		lineY += textLine
	}
	pdf.SetFont("Courier", "B", codeSize)
	pdf.Text(tx, y+LabelHeight-LabelPadding-4*mod, ShortCode(c.Token))
	if pdf.Err() {
		return pdf.Error()
	}
	return nil
}

// ellipsis is "…" in Windows-1252.
const ellipsis = "\x85"

// wrap breaks text (Windows-1252) into at most n lines no wider than width
// in the current font, breaking at spaces, or inside words longer than a
// line; text beyond n lines is cut with an ellipsis.
func wrap(pdf *fpdf.Fpdf, text string, width float64, n int) []string {
	var lines []string
	line := ""
	fits := func(s string) bool { return pdf.GetStringWidth(s) <= width }
	for _, word := range strings.Fields(text) {
		cand := word
		if line != "" {
			cand = line + " " + word
		}
		if fits(cand) {
			line = cand
			continue
		}
		if line != "" {
			lines = append(lines, line)
		}
		line = word
		for !fits(line) {
			cut := len(line) - 1
			for cut > 1 && !fits(line[:cut]) {
				cut--
			}
			lines = append(lines, line[:cut])
			line = line[cut:]
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	if len(lines) > n {
		last := lines[n-1]
		for last != "" && !fits(last+ellipsis) {
			last = last[:len(last)-1]
		}
		lines = append(lines[:n-1], last+ellipsis)
	}
	return lines
}
