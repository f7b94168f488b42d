package qr_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/privnum/privnum/qr"
)

// pdfText extracts a PDF's text with pdftotext (poppler-utils), whitespace
// removed: the layout breaks lines wherever the labels wrap.
func pdfText(t *testing.T, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext not installed (apt-get install poppler-utils): cannot read the sheet back")
	}
	in := filepath.Join(t.TempDir(), "labels.pdf")
	if err := os.WriteFile(in, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), "")
}

// cjkFont finds a system font for Chinese, failing (not skipping) when
// there is none: .ci/run installs fonts-wqy-zenhei.
func cjkFont(t *testing.T, texts ...string) *qr.Font {
	t.Helper()
	f, err := qr.FindFont(texts, "")
	if err != nil {
		t.Fatalf("FindFont: %v (apt-get install fonts-wqy-zenhei)", err)
	}
	if f == nil {
		t.Fatal("FindFont chose the core fonts for Chinese text")
	}
	return f
}

// TestChineseLabelsRoundTrip prints Chinese labels, one long enough to
// wrap inside its (space-free) text, with the font FindFont picks, and
// reads the sheet back with pdftotext.
func TestChineseLabelsRoundTrip(t *testing.T) {
	texts := []string{"扫码联系店主", "快递柜 3 号", "请扫描二维码联系收件人，号码不会显示给您", "Café Zürich"}
	font := cjkFont(t, texts...)
	t.Logf("font: %s", font.Path)
	e := newEnv(t, 0, qr.Config{})
	var labels []qr.Label
	for _, s := range texts {
		labels = append(labels, qr.Label{Code: e.mint(t, qr.MintRequest{Label: s})})
	}
	var buf bytes.Buffer
	if err := (qr.Sheet{Font: font}).Write(&buf, labels, nil); err != nil {
		t.Fatal(err)
	}
	// The subset, not the whole font, is embedded.
	if buf.Len() > 200<<10 {
		t.Errorf("sheet of %d labels is %d bytes", len(labels), buf.Len())
	}
	got := pdfText(t, buf.Bytes())
	for i, s := range texts {
		want := strings.Join(strings.Fields(s), "")
		if !strings.Contains(got, want) {
			t.Errorf("label %d %q not in the sheet's text:\n%s", i+1, s, got)
		}
		if short := strings.ReplaceAll(qr.ShortCode(labels[i].Code.Token), "-", ""); !strings.Contains(strings.ReplaceAll(got, "-", ""), short) {
			t.Errorf("short code %s not in the sheet's text", short)
		}
	}
}

// TestLatinLabelsRoundTrip: Windows-1252 text still prints with the core
// fonts (no font needed), and reads back.
func TestLatinLabelsRoundTrip(t *testing.T) {
	texts := []string{"Crème brûlée – 5 €", "Front desk"}
	if f, err := (qr.FontSearch{}).Find(texts, ""); f != nil || err != nil {
		t.Fatalf("Find(latin) = %v, %v; want the core fonts", f, err)
	}
	e := newEnv(t, 0, qr.Config{})
	var labels []qr.Label
	for _, s := range texts {
		labels = append(labels, qr.Label{Code: e.mint(t, qr.MintRequest{Label: s})})
	}
	var buf bytes.Buffer
	if err := qr.WriteLabels(&buf, labels, nil); err != nil {
		t.Fatal(err)
	}
	got := pdfText(t, buf.Bytes())
	for _, s := range texts {
		if want := strings.Join(strings.Fields(s), ""); !strings.Contains(got, want) {
			t.Errorf("%q not in %q", s, got)
		}
	}
}

// TestFontErrorsNameGlyphs: with no font that has the glyphs, the error
// names the text, the characters and what to install; a --font without
// them names the font.
func TestFontErrorsNameGlyphs(t *testing.T) {
	_, err := (qr.FontSearch{Dirs: []string{t.TempDir()}}).Find([]string{"Shop 1", "扫码联系"}, "")
	var ge *qr.GlyphError
	if !errors.As(err, &ge) || !errors.Is(err, qr.ErrInvalid) {
		t.Fatalf("Find without fonts = %v; want a GlyphError", err)
	}
	if want := `label text "扫码联系": no font has glyphs for 扫码联系 (install fonts-wqy-zenhei or pass --font)`; err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}

	font := cjkFont(t, "扫码")
	_, err = qr.FindFont([]string{"扫码 😀"}, font.Path)
	if !errors.As(err, &ge) || string(ge.Missing) != "😀" || ge.Font != font.Path {
		t.Errorf("FindFont(emoji, %s) = %v; want the emoji missing from that font", font.Path, err)
	}
	e := newEnv(t, 0, qr.Config{})
	c := e.mint(t, qr.MintRequest{})
	var buf bytes.Buffer
	err = (qr.Sheet{Font: font}).Write(&buf, []qr.Label{{Code: c, Text: "ok"}, {Code: c, Text: "a😀b"}}, nil)
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "label 2") || buf.Len() != 0 {
		t.Errorf("Write(emoji) = %v (%d bytes); want label 2's missing glyph and nothing written", err, buf.Len())
	}
	err = qr.WriteLabels(&buf, []qr.Label{{Code: c, Text: "扫码 ok"}}, nil)
	if !errors.As(err, &ge) || string(ge.Missing) != "扫码" {
		t.Errorf("WriteLabels(chinese) without a font = %v", err)
	}

	dir := t.TempDir()
	for name, data := range map[string]string{"cff.otf": "OTTO\x00\x01\x00\x00\x00\x00\x00\x00", "junk.ttf": "not a font at all"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o600)
		if _, err := qr.FindFont([]string{"扫码"}, p); !errors.Is(err, qr.ErrInvalid) || !strings.Contains(err.Error(), p) {
			t.Errorf("FindFont(%s) = %v; want ErrInvalid naming the file", name, err)
		}
	}
}

// TestLoadFontCollection: a .ttc (fonts-wqy-zenhei ships one) loads as its
// first face and maps CJK characters.
func TestLoadFontCollection(t *testing.T) {
	const p = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
	if _, err := os.Stat(p); err != nil {
		t.Skip("fonts-wqy-zenhei not installed")
	}
	f, err := qr.LoadFont(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Missing("扫码联系 abc"); len(m) != 0 {
		t.Errorf("wqy-zenhei lacks %q", string(m))
	}
}
