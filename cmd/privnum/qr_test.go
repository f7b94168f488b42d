package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"
	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/qr"
)

// runQR runs privnum like run does, with the qr command added to the root
// if main.go does not register it (yet).
func (c cli) runQR(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb}
	root := a.rootCmd()
	registered := false
	for _, sub := range root.Commands() {
		registered = registered || sub.Name() == "qr"
	}
	if !registered {
		root.AddCommand(a.qrCmd())
	}
	root.SetArgs(append([]string{"--redis", c.url, "--region", "CN"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	a.close()
	if err != nil {
		fmt.Fprintf(&errb, "privnum: %v\n", err)
		if errors.As(err, new(usageError)) {
			return out.String(), errb.String(), 2
		}
		return out.String(), errb.String(), 1
	}
	return out.String(), errb.String(), 0
}

func (c cli) okQR(args ...string) string {
	c.t.Helper()
	out, errs, code := c.runQR(args...)
	if code != 0 {
		c.t.Fatalf("privnum %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func (c cli) jsonQR(v any, args ...string) {
	c.t.Helper()
	out := c.okQR(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("privnum %s: not one JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// qrKeys counts the codes stored in the CLI's Redis.
func (c cli) qrKeys() int {
	c.t.Helper()
	return len(redistest.Keys(c.t, redistest.ClientFor(c.t, c.url), "pn:qr:*"))
}

type qrOut struct {
	Token, URL, Label, Mode, Owner, Short, File string
	Revoked                                     bool
}

func decodePNG(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return decodeImage(t, img)
}

func decodeImage(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode qr: %v", err)
	}
	return res.GetText()
}

func TestCLIQRMintShowRevoke(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	c.okQR("pool", "add", "17000000000")

	pngPath := filepath.Join(dir, "code.png")
	var m qrOut
	c.jsonQR(&m, "qr", "mint", "--owner", "13800138000", "--label", "Shop 1", "--base", "https://example.com/", "-o", pngPath, "--size", "300")
	if len(m.Token) != qr.TokenLen || m.URL != "https://example.com/q/"+m.Token || m.Owner != "+86138****8000" ||
		m.Mode != "middle-number" || m.Label != "Shop 1" || m.File != pngPath || m.Short != qr.ShortCode(m.Token) {
		t.Fatalf("mint = %+v", m)
	}
	if got := decodePNG(t, pngPath); got != m.URL {
		t.Errorf("png decodes to %q, want %q", got, m.URL)
	}

	t.Setenv("PRIVNUM_PUBLIC_BASE", "https://qr.example.org")
	svgPath := filepath.Join(dir, "code.SVG")
	out := c.okQR("qr", "mint", "--owner", "+8613800138000", "--mode", "callback", "-o", svgPath)
	if !strings.Contains(out, "https://qr.example.org/q/") || !strings.Contains(out, "callback") || strings.Contains(out, "13800138000") {
		t.Errorf("mint output:\n%s", out)
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil || !bytes.HasPrefix(svg, []byte("<?xml")) || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("svg file: %v\n%.200s", err, svg)
	}

	var s qrOut
	c.jsonQR(&s, "qr", "show", m.Token)
	if s.Token != m.Token || s.Owner != m.Owner || s.Revoked || s.URL == "" {
		t.Errorf("show = %+v", s)
	}
	var scan struct {
		VirtualNumber string `json:"virtual_number"`
	}
	c.jsonQR(&scan, "qr", "scan", m.Token, "--scanner", "13900000002")
	if scan.VirtualNumber != "+8617000000000" {
		t.Errorf("scan = %+v", scan)
	}

	if out := c.okQR("qr", "revoke", m.Token); !strings.Contains(out, "revoked") {
		t.Errorf("revoke output %q", out)
	}
	c.jsonQR(&s, "qr", "show", m.Token)
	if !s.Revoked {
		t.Errorf("show after revoke = %+v", s)
	}
	if out := c.okQR("qr", "show", m.Token); !strings.Contains(out, "revoked") || strings.Contains(out, "13800138000") {
		t.Errorf("show after revoke:\n%s", out)
	}
	var route struct{ Action string }
	c.json(&route, "route", "--x", "17000000000", "--caller", "13900000002")
	if route.Action != "reject" {
		t.Errorf("scanner still routed after revoke: %+v", route)
	}
	if _, errs, code := c.runQR("qr", "scan", m.Token, "--scanner", "13900000002"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("scan revoked: exit %d, %s", code, errs)
	}
}

func TestCLIQRErrors(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"qr", "mint", "--owner", "12"}, `"12"`, 1},
		{[]string{"qr", "mint"}, "required flag", 1},
		{[]string{"qr", "mint", "--owner", "13800138000", "--mode", "fax"}, "mode", 2},
		{[]string{"qr", "mint", "--owner", "13800138000", "--base", "example.com"}, "public base", 2},
		{[]string{"qr", "mint", "--owner", "13800138000", "-o", filepath.Join(dir, "code.gif")}, ".png or .svg", 2},
		{[]string{"qr", "mint", "--owner", "13800138000", "-o", filepath.Join(dir, "missing", "code.png")}, "cannot write", 1},
		{[]string{"qr", "mint", "--owner", "13800138000", "--label", "call 13800138000"}, "owner's number", 1},
		{[]string{"qr", "show", strings.Repeat("a", qr.TokenLen)}, "not found", 1},
		{[]string{"qr", "revoke", "nope"}, "not found", 1},
		{[]string{"qr", "show"}, "accepts 1 arg", 2},
		{[]string{"qr", "labels", "--csv", filepath.Join(dir, "none.csv"), "-o", filepath.Join(dir, "l.pdf")}, "no such file", 2},
	}
	for _, tt := range tests {
		out, errs, code := c.runQR(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) || strings.Contains(errs, "goroutine") {
			t.Errorf("privnum %s: exit %d, stderr %q, stdout %q; want exit %d mentioning %q", strings.Join(tt.args, " "), code, errs, out, tt.code, tt.want)
		}
	}
	if n := c.qrKeys(); n != 0 {
		t.Errorf("failed commands stored %d code key(s)", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed commands left files: %v", entries)
	}
}

func TestCLIQRLabels(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	var rows strings.Builder
	rows.WriteString("owner,label,mode\n")
	for i := range 30 {
		mode := ""
		if i%3 == 0 {
			mode = "callback"
		}
		fmt.Fprintf(&rows, "1380013%04d,Order SO-%d,%s\n", 8000+i, 1000+i, mode)
	}
	csvPath := filepath.Join(dir, "orders.csv")
	os.WriteFile(csvPath, []byte(rows.String()), 0o600)
	pdfPath := filepath.Join(dir, "labels.pdf")

	var res struct {
		File  string
		Pages int
		Codes []qrOut
	}
	c.jsonQR(&res, "qr", "labels", "--csv", csvPath, "-o", pdfPath, "--quiet")
	if res.File != pdfPath || res.Pages != 2 || len(res.Codes) != 30 {
		t.Fatalf("labels = %+v", res)
	}
	if res.Codes[0].Mode != "callback" || res.Codes[1].Mode != "middle-number" || res.Codes[29].Label != "Order SO-1029" {
		t.Errorf("codes = %+v", res.Codes)
	}
	if n := c.qrKeys(); n != 30 {
		t.Errorf("%d code keys stored, want 30", n)
	}

	f, r, err := pdf.Open(pdfPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r.NumPage() != 2 {
		t.Fatalf("%d pages", r.NumPage())
	}
	var text strings.Builder
	for i := 1; i <= r.NumPage(); i++ {
		for _, tx := range r.Page(i).Content().Text {
			text.WriteString(tx.S)
		}
	}
	all := strings.Join(strings.Fields(text.String()), "")
	for _, code := range res.Codes {
		if strings.Count(all, strings.ReplaceAll(code.Label, " ", "")) != 1 || strings.Count(all, code.Short) != 1 {
			t.Errorf("label %q / %s not printed once", code.Label, code.Short)
		}
	}

	// Text output: a table and a summary; no progress bar off a terminal.
	out, errs, code := c.runQR("qr", "labels", "--csv", csvPath, "-o", filepath.Join(dir, "again.pdf"))
	if code != 0 || !strings.Contains(out, "minted 30 code(s); wrote 2 page(s)") || strings.Contains(out, "1380013") || errs != "" {
		t.Errorf("labels: exit %d, stdout:\n%s\nstderr: %q", code, out, errs)
	}
}

func TestCLIQRLabelsBadRowMintsNothing(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	tests := []struct {
		csv, want string
	}{
		{"owner,label\n13800138000,A\n13800138001,B\n\n12345,C\n", "line 5"},
		{"13800138000,A\n13800138000,B,fax\n", "line 2"},
		{"owner,label\n13800138000,A\n13800138000,\n", "line 3"},
		{"owner,label\n13800138000,\"a\x07b\"\n", "line 2"},
	}
	for i, tt := range tests {
		csvPath := filepath.Join(dir, fmt.Sprintf("bad%d.csv", i))
		os.WriteFile(csvPath, []byte(tt.csv), 0o600)
		pdfPath := filepath.Join(dir, fmt.Sprintf("bad%d.pdf", i))
		_, errs, code := c.runQR("qr", "labels", "--csv", csvPath, "-o", pdfPath)
		if code != 1 || !strings.Contains(errs, tt.want) || !strings.Contains(errs, csvPath) {
			t.Errorf("labels with %q: exit %d, %q; want exit 1 naming %s", tt.csv, code, errs, tt.want)
		}
		if _, err := os.Stat(pdfPath); err == nil {
			t.Errorf("bad csv %d wrote %s", i, pdfPath)
		}
	}
	if n := c.qrKeys(); n != 0 {
		t.Errorf("bad CSVs minted %d code(s)", n)
	}
}

// TestCLIQRLabelsChinese prints Chinese labels with the system font
// (fonts-wqy-zenhei in CI) and reads them back with pdftotext; a --font
// that is no font, or lacks a glyph, is refused before anything is minted.
func TestCLIQRLabelsChinese(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "zh.csv")
	os.WriteFile(csvPath, []byte("owner,label\n13800138000,扫码联系店主\n13800138001,Front desk\n"), 0o600)
	pdfPath := filepath.Join(dir, "zh.pdf")
	if _, errs, code := c.runQR("qr", "labels", "--csv", csvPath, "-o", pdfPath, "--quiet"); code != 0 {
		t.Fatalf("labels: exit %d: %s", code, errs)
	}
	if bin, err := exec.LookPath("pdftotext"); err != nil {
		t.Log("pdftotext not installed: the sheet is not read back")
	} else {
		out, err := exec.Command(bin, "-enc", "UTF-8", pdfPath, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(out)), "")
		for _, want := range []string{"扫码联系店主", "Frontdesk"} {
			if !strings.Contains(text, want) {
				t.Errorf("%q not in the sheet: %q", want, text)
			}
		}
	}
	if n := c.qrKeys(); n != 2 {
		t.Fatalf("%d codes", n)
	}

	junk := filepath.Join(dir, "junk.ttf")
	os.WriteFile(junk, []byte("not a font"), 0o600)
	emoji := filepath.Join(dir, "emoji.csv")
	os.WriteFile(emoji, []byte("owner,label\n13800138000,扫码 😀\n"), 0o600)
	font, err := qr.FindFont([]string{"扫码"}, "")
	if err != nil || font == nil {
		t.Fatalf("no CJK font (apt-get install fonts-wqy-zenhei): %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--csv", csvPath, "--font", junk}, junk},
		{[]string{"--csv", emoji, "--font", font.Path}, "has no glyphs for 😀"},
	} {
		out := filepath.Join(dir, "bad.pdf")
		_, errs, code := c.runQR(append([]string{"qr", "labels", "-o", out}, tt.args...)...)
		if code == 0 || !strings.Contains(errs, tt.want) {
			t.Errorf("labels %v: exit %d, %q; want an error naming %q", tt.args, code, errs, tt.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("labels %v wrote %s", tt.args, out)
		}
	}
	if n := c.qrKeys(); n != 2 {
		t.Errorf("refused sheets minted %d code(s)", n-2)
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	bar := progressBar(&b, "minting", time.Hour)
	for i := 1; i <= 4; i++ {
		bar(i, 4)
	}
	// Throttled: the first step and the last are drawn.
	want := "\rminting  [#######                       ] 1/4" + "\rminting  [##############################] 4/4\n"
	if b.String() != want {
		t.Errorf("bar drew %q\nwant      %q", b.String(), want)
	}
	var a app
	a.stderr = &b
	if a.progress("x", 1000, false) != nil {
		t.Error("progress bar on a buffer (not a terminal)")
	}
}
