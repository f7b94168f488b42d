package qr_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/privnum/privnum/qr"
)

// decodeQR reads the text of the QR symbol in img.
func decodeQR(t *testing.T, img image.Image) string {
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

func TestPNGRoundTrip(t *testing.T) {
	e := newEnv(t, 0, qr.Config{})
	c := e.mint(t, qr.MintRequest{Label: "Shop"})
	for _, size := range []int{120, 256, 512} {
		b, err := qr.PNG(c.URL, size)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if r := img.Bounds(); r.Dx() < size || r.Dx() != r.Dy() {
			t.Errorf("size %d: image is %v", size, r)
		}
		if got := decodeQR(t, img); got != c.URL {
			t.Errorf("size %d: decoded %q, want %q", size, got, c.URL)
		}
	}
	for _, size := range []int{0, -1, qr.MaxPNGSize + 1} {
		if _, err := qr.PNG(c.URL, size); !errors.Is(err, qr.ErrInvalid) {
			t.Errorf("PNG(size %d) = %v; want ErrInvalid", size, err)
		}
	}
	if _, err := qr.PNG("", 256); !errors.Is(err, qr.ErrInvalid) {
		t.Errorf("PNG(empty) = %v", err)
	}
}

func TestSVGRoundTrip(t *testing.T) {
	e := newEnv(t, 0, qr.Config{PublicBase: "http://127.0.0.1:8080"})
	c := e.mint(t, qr.MintRequest{})
	b, err := qr.SVG(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	img := rasterSVG(t, b, 6)
	if got := decodeQR(t, img); got != c.URL {
		t.Fatalf("decoded %q, want %q", got, c.URL)
	}
	if !bytes.Contains(b, []byte(`shape-rendering="crispEdges"`)) {
		t.Errorf("svg is not drawn with crisp edges:\n%s", b)
	}
}

// rasterSVG paints the SVG that qr.SVG writes (a view box in modules, a
// background rect and one path of "Mx yhWv1h-Wz" rectangles) at scale
// pixels per module, checking the document's shape on the way.
func rasterSVG(t *testing.T, doc []byte, scale int) image.Image {
	t.Helper()
	var svg struct {
		XMLName xml.Name `xml:"svg"`
		ViewBox string   `xml:"viewBox,attr"`
		Rect    struct {
			Fill string `xml:"fill,attr"`
		} `xml:"rect"`
		Path []struct {
			D    string `xml:"d,attr"`
			Fill string `xml:"fill,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(doc, &svg); err != nil {
		t.Fatalf("svg is not XML: %v", err)
	}
	var n int
	if _, err := fmt.Sscanf(svg.ViewBox, "0 0 %d %d", &n, &n); err != nil || n < 21+8 {
		t.Fatalf("view box %q", svg.ViewBox)
	}
	if svg.Rect.Fill != "#ffffff" || len(svg.Path) != 1 || svg.Path[0].Fill != "#000000" {
		t.Fatalf("svg shape: %+v", svg)
	}
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	dark := 0
	for _, cmd := range strings.Split(svg.Path[0].D, "z") {
		if cmd == "" {
			continue
		}
		var x, y, w, w2 int
		if _, err := fmt.Sscanf(cmd, "M%d %dh%dv1h-%d", &x, &y, &w, &w2); err != nil || w != w2 || w <= 0 {
			t.Fatalf("path command %q: %v", cmd, err)
		}
		if x < 4 || y < 4 || x+w > n-4 || y >= n-4 {
			t.Fatalf("module run %q inside the quiet zone", cmd)
		}
		for py := y * scale; py < (y+1)*scale; py++ {
			for px := x * scale; px < (x+w)*scale; px++ {
				img.SetGray(px, py, color.Gray{})
			}
		}
		dark += w
	}
	if dark == 0 {
		t.Fatal("no dark modules")
	}
	return img
}
