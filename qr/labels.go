package qr

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

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

// CheckPrintable reports (ErrInvalid) text that label sheets cannot print
// with the PDF core fonts, which hold Windows-1252 only (Latin letters with
// accents, digits, common punctuation). Other text needs a Sheet with a
// Font (FindFont).
func CheckPrintable(text string) error {
	if !coreFontText(text) {
		return fmt.Errorf("label %q has characters the core fonts cannot print (Latin-1/Windows-1252 only; %s): %w", text, FontHint, ErrInvalid)
	}
	return nil
}

// Sheet lays out label sheets.
type Sheet struct {
	// Font prints the label text. Nil: the PDF core font Helvetica, which
	// prints Windows-1252 text only.
	Font *Font
}

// WriteLabels writes labels with the core fonts: Sheet{}.Write.
func WriteLabels(w io.Writer, labels []Label, progress func(done, total int)) error {
	return Sheet{}.Write(w, labels, progress)
}

// Write lays out one label per entry on A4 pages (see LabelColumns for the
// geometry) and writes the PDF to w. Every label is checked before
// anything is written: text that the sheet's font has no glyphs for is a
// *GlyphError naming them. progress, if not nil, is called after each
// label.
func (s Sheet) Write(w io.Writer, labels []Label, progress func(done, total int)) error {
	if len(labels) == 0 {
		return fmt.Errorf("%w: no labels to print", ErrInvalid)
	}
	enc := charmap.Windows1252.NewEncoder()
	texts := make([]string, len(labels))
	for i, l := range labels {
		if _, ok := normToken(l.Code.Token); !ok || l.Code.URL == "" {
			return fmt.Errorf("%w: label %d: not a minted code", ErrInvalid, i+1)
		}
		text := strings.Join(strings.Fields(l.text()), " ")
		if s.Font != nil {
			if m := s.Font.Missing(text); len(m) > 0 {
				return fmt.Errorf("label %d: %w", i+1, &GlyphError{Text: text, Missing: m, Font: s.Font.Path})
			}
			texts[i] = text
			continue
		}
		t, err := enc.String(text)
		if err != nil {
			e := &GlyphError{Text: text}
			for _, r := range text {
				if !coreFontText(string(r)) && !slices.Contains(e.Missing, r) {
					e.Missing = append(e.Missing, r)
				}
			}
			return fmt.Errorf("label %d: %w", i+1, e)
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
	tf := textFont{family: "Helvetica", ellipsis: "\x85"}
	if s.Font != nil {
		tf = textFont{family: "labeltext", utf8: true, ellipsis: "…"}
		if !s.Font.cmap['…'] {
			tf.ellipsis = "..."
		}
		pdf.AddUTF8FontFromBytes(tf.family, "", s.Font.ttf)
		if pdf.Err() {
			return fmt.Errorf("font %s: %w", s.Font.Path, pdf.Error())
		}
	}
	for i, l := range labels {
		slot := i % LabelsPerPage
		if slot == 0 {
			pdf.AddPage()
		}
		x := sheetLeft + float64(slot%LabelColumns)*LabelWidth
		y := sheetTop + float64(slot/LabelColumns)*LabelHeight
		if err := drawLabel(pdf, x, y, l.Code, texts[i], tf); err != nil {
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

// textFont is the font of the label text: a core font with text in
// Windows-1252, or a UTF-8 TrueType font.
type textFont struct {
	family   string
	utf8     bool
	ellipsis string
}

// drawLabel draws one label with its top-left corner at (x, y); text is
// in tf's encoding.
func drawLabel(pdf *fpdf.Fpdf, x, y float64, c Code, text string, tf textFont) error {
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
	pdf.SetFont(tf.family, "", textSize)
	lineY := y + LabelPadding + 4*mod + 2.6 // first baseline: cap tops level with the symbol's top
	for _, line := range wrap(pdf, text, textWidth, textLines, tf) {
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

// wrap breaks text (in tf's encoding) into at most n lines no wider than
// width in the current font, breaking at spaces, or inside words longer
// than a line (Chinese has no spaces), never inside a character; text
// beyond n lines is cut with an ellipsis.
func wrap(pdf *fpdf.Fpdf, text string, width float64, n int, tf textFont) []string {
	var lines []string
	line := ""
	fits := func(s string) bool { return pdf.GetStringWidth(s) <= width }
	// back returns the last character boundary before i.
	back := func(s string, i int) int {
		i--
		for tf.utf8 && i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		return i
	}
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
			cut := back(line, len(line))
			for cut > 1 && !fits(line[:cut]) {
				if c := back(line, cut); c > 0 {
					cut = c
				} else {
					break
				}
			}
			if cut <= 0 {
				break
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
		for last != "" && !fits(last+tf.ellipsis) {
			last = last[:back(last, len(last))]
		}
		lines = append(lines[:n-1], last+tf.ellipsis)
	}
	return lines
}
