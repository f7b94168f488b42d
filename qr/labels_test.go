package qr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledongthuc/pdf"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/qr"
)

// pdfPages returns the text of each page of a PDF, spaces removed (the
// reader splits text runs unpredictably).
func pdfPages(t *testing.T, doc []byte) []string {
	t.Helper()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatalf("not a PDF: %v", err)
	}
	pages := make([]string, r.NumPage())
	for i := range pages {
		p := r.Page(i + 1)
		var b strings.Builder
		for _, tx := range p.Content().Text {
			b.WriteString(tx.S)
		}
		pages[i] = strings.Join(strings.Fields(b.String()), "")
		box := p.V.Key("MediaBox")
		for v := p.V; box.IsNull() && !v.IsNull(); v = v.Key("Parent") {
			box = v.Key("MediaBox")
		}
		if w, h := box.Index(2).Float64(), box.Index(3).Float64(); w < 595 || w > 596 || h < 841 || h > 842 {
			t.Errorf("page %d is %.1f×%.1f pt, want A4", i+1, w, h)
		}
	}
	return pages
}

func TestWriteLabels(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 0, qr.Config{})
	tests := []struct {
		rows, pages int
	}{
		{1, 1},
		{qr.LabelsPerPage, 1},
		{30, 2},
		{2*qr.LabelsPerPage + 1, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rows), func(t *testing.T) {
			reqs := make([]qr.MintRequest, tt.rows)
			for i := range reqs {
				reqs[i] = qr.MintRequest{Owner: owner, Label: fmt.Sprintf("Order SO-%04d Café", i)}
			}
			codes, err := e.qr.MintAll(ctx, reqs, nil)
			if err != nil {
				t.Fatal(err)
			}
			labels := make([]qr.Label, len(codes))
			for i, c := range codes {
				labels[i] = qr.Label{Code: c}
			}
			var calls, last int
			var buf bytes.Buffer
			err = qr.WriteLabels(&buf, labels, func(done, total int) {
				calls++
				if total != tt.rows || done != last+1 {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != tt.rows {
				t.Errorf("progress called %d times for %d labels", calls, tt.rows)
			}
			pages := pdfPages(t, buf.Bytes())
			if len(pages) != tt.pages {
				t.Fatalf("%d labels on %d pages, want %d", tt.rows, len(pages), tt.pages)
			}
			for i, c := range codes {
				p := pages[i/qr.LabelsPerPage]
				text := strings.ReplaceAll(c.Label, " ", "")
				if strings.Count(p, text) != 1 || strings.Count(p, qr.ShortCode(c.Token)) != 1 {
					t.Errorf("label %d (%q, %s) not once on page %d: %q", i, c.Label, qr.ShortCode(c.Token), i/qr.LabelsPerPage+1, p)
				}
				if strings.Contains(p, c.Token) || strings.Contains(p, "138") {
					t.Errorf("page %d shows the token or the owner's number", i/qr.LabelsPerPage+1)
				}
			}
		})
	}
}

func TestWriteLabelsWrapsAndRefuses(t *testing.T) {
	e := newEnv(t, 0, qr.Config{})
	c := e.mint(t, qr.MintRequest{})
	long := strings.Repeat("Supercalifragilistic ", 4) + "end"
	var buf bytes.Buffer
	if err := qr.WriteLabels(&buf, []qr.Label{{Code: c, Text: long}}, nil); err != nil {
		t.Fatal(err)
	}
	if p := pdfPages(t, buf.Bytes()); len(p) != 1 || !strings.Contains(p[0], "Supercalifragilistic") {
		t.Errorf("wrapped label: %q", p)
	}
	tests := []struct {
		labels []qr.Label
		want   string
	}{
		{nil, "no labels"},
		{[]qr.Label{{Code: c, Text: "ok"}, {Code: c, Text: "中文"}}, "label 2"},
		{[]qr.Label{{Code: qr.Code{Token: "nope"}}}, "not a minted code"},
	}
	for _, tt := range tests {
		buf.Reset()
		err := qr.WriteLabels(&buf, tt.labels, nil)
		if !errors.Is(err, qr.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || buf.Len() != 0 {
			t.Errorf("WriteLabels(%v) = %v (%d bytes); want ErrInvalid naming %q and nothing written", tt.labels, err, buf.Len(), tt.want)
		}
	}
	if err := qr.CheckPrintable("Crème brûlée – 5 €"); err != nil {
		t.Errorf("CheckPrintable(latin) = %v", err)
	}
}

// TestLabelSheetScans renders the sheet with pdftoppm, when installed, and
// decodes the first label's symbol from the page image.
func TestLabelSheetScans(t *testing.T) {
	bin, err := exec.LookPath("pdftoppm")
	if err != nil {
		t.Skip("pdftoppm not installed (apt-get install poppler-utils)")
	}
	e := newEnv(t, 0, qr.Config{})
	var labels []qr.Label
	for i := range 4 {
		labels = append(labels, qr.Label{Code: e.mint(t, qr.MintRequest{Label: fmt.Sprint("Label ", i)})})
	}
	var buf bytes.Buffer
	if err := qr.WriteLabels(&buf, labels, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "labels.pdf")
	os.WriteFile(in, buf.Bytes(), 0o600)
	// 300 dpi; crop to the fourth label (second row, first column).
	px := func(mm float64) int { return int(mm / 25.4 * 300) }
	out := filepath.Join(dir, "page")
	cmd := exec.Command(bin, "-png", "-r", "300", "-singlefile",
		"-x", fmt.Sprint(px(0)), "-y", fmt.Sprint(px(0.5+qr.LabelHeight)),
		"-W", fmt.Sprint(px(qr.LabelWidth)), "-H", fmt.Sprint(px(qr.LabelHeight)), in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, b)
	}
	f, err := os.Open(out + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, img); got != labels[3].Code.URL {
		t.Fatalf("label 4 decodes to %q, want %q", got, labels[3].Code.URL)
	}
}

func TestReadCSV(t *testing.T) {
	e := newEnv(t, 0, qr.Config{})
	tests := []struct {
		name, csv string
		want      []qr.MintRequest
		err       string
	}{
		{
			name: "header",
			csv:  "owner,label,mode\n13800138000,Table 1,callback\n\n# a comment\n+8613900000002, Table 2 ,\n",
			want: []qr.MintRequest{
				{Owner: "+8613800138000", Label: "Table 1", Mode: qr.Callback},
				{Owner: "+8613900000002", Label: "Table 2"},
			},
		},
		{
			name: "header in another order",
			csv:  "Label,Owner\nParcel,13800138000\n",
			want: []qr.MintRequest{{Owner: "+8613800138000", Label: "Parcel"}},
		},
		{
			name: "no header",
			csv:  "13800138000,A\n13800138000,\"B, with comma\",middle-number\n",
			want: []qr.MintRequest{
				{Owner: "+8613800138000", Label: "A"},
				{Owner: "+8613800138000", Label: "B, with comma", Mode: qr.MiddleNumber},
			},
		},
		{name: "bad owner", csv: "owner,label\n13800138000,A\n12345,B\n", err: "csv line 3"},
		{name: "bad mode", csv: "13800138000,A,fax\n", err: "csv line 1"},
		{name: "empty label", csv: "owner,label\n\n13800138000,\n", err: "csv line 3: " + qr.ErrInvalid.Error() + ": empty label"},
		{
			// Any script: whether a font has its glyphs is up to the sheet.
			name: "chinese label",
			csv:  "owner,label\n13800138000,扫码联系店主\n",
			want: []qr.MintRequest{{Owner: "+8613800138000", Label: "扫码联系店主"}},
		},
		{name: "control character", csv: "owner,label\n13800138000,\"a\x07b\"\n", err: "csv line 2"},
		{name: "too many fields", csv: "13800138000,A,callback,extra\n", err: "csv line 1"},
		{name: "one field", csv: "13800138000\n", err: "csv line 1"},
		{name: "unknown column", csv: "owner,label,colour\n", err: "unknown column"},
		{name: "empty", csv: "owner,label\n", err: "no rows"},
		{name: "quote", csv: "13800138000,\"A\n", err: "csv line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.qr.ReadCSV(strings.NewReader(tt.csv))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ReadCSV = %v, %v; want error %q", got, err, tt.err)
				}
				if tt.name == "bad owner" && !errors.Is(err, e164.ErrInvalid) {
					t.Errorf("bad owner error %v does not wrap e164.ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ReadCSV = %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if k := keys(t, e.rdb); len(k) != 0 {
		t.Errorf("ReadCSV stored %v", k)
	}
}
