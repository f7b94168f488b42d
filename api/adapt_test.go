package api

import (
	"testing"
	"time"

	"github.com/privnum/privnum/apikey"
	"github.com/privnum/privnum/qr"
)

// TestQRServiceAdapter runs the QR routes on the real qr service through
// NewQRService: its errors reach the client as the same problems as the
// fake's, with the field named by the service.
func TestQRServiceAdapter(t *testing.T) {
	var codes *qr.Service
	e := newEnv(t, func(c *Config) {
		var err error
		codes, err = qr.New(c.Redis, c.Bindings.Parser(), c.Bindings,
			qr.Config{PublicBase: "https://qr.example", PerTokenLimit: 1, PerScannerLimit: -1, LimitWindow: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		c.QR = NewQRService(codes)
	})
	e.addNumbers(x0, x1)
	key := e.keys[apikey.QR]
	var c QRCode
	e.ok(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"` + alice + `","label":"car"}`}, 201, &c)
	if c.Owner != "+86138****0001" || c.Mode != "middle-number" || c.Label != "car" {
		t.Fatalf("minted %+v", c)
	}
	scan := func(scanner string) resp {
		return e.do(call{method: "POST", path: "/v1/qr-codes/" + c.Token + "/scans", key: key, body: `{"scanner":"` + scanner + `"}`})
	}
	var res QRScanResult
	e.ok(call{method: "POST", path: "/v1/qr-codes/" + c.Token + "/scans", key: key, body: `{"scanner":"` + bob + `"}`}, 200, &res)
	if res.VirtualNumber == "" || res.BindingID == "" {
		t.Fatalf("scan = %+v", res)
	}

	for _, tt := range []struct {
		name          string
		r             func() resp
		status        int
		slug, field   string
		input, header string
	}{
		{"bad owner", func() resp {
			return e.do(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"12"}`})
		}, 422, "invalid-number", "owner", "12", ""},
		{"bad mode", func() resp {
			return e.do(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"` + alice + `","mode":"fax"}`})
		}, 422, "invalid-field", "mode", "", ""},
		{"label with the owner's number", func() resp {
			return e.do(call{method: "POST", path: "/v1/qr-codes", key: key, body: `{"owner":"` + alice + `","label":"call 13800000001"}`})
		}, 422, "invalid-field", "label", "", ""},
		{"bad scanner", func() resp { return scan("12") }, 422, "invalid-number", "scanner", "12", ""},
		{"over the code's limit", func() resp { return scan(carol) }, 429, "rate-limited", "", "", "Retry-After"},
		{"unknown code", func() resp {
			return e.do(call{method: "GET", path: "/v1/qr-codes/" + "aaaaaaaaaaaaaaaaaaaaaaaaaa", key: key})
		}, 404, "qr-code-not-found", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r()
			p := r.problem(t)
			if r.status != tt.status || p.Type != ProblemTypeBase+tt.slug || p.Field != tt.field || p.Input != tt.input || p.Limit != "" {
				t.Fatalf("%d %+v; want %d %s field %q input %q", r.status, p, tt.status, tt.slug, tt.field, tt.input)
			}
			if tt.header != "" && r.header.Get(tt.header) == "" {
				t.Fatalf("no %s header: %v", tt.header, r.header)
			}
		})
	}

	e.ok(call{method: "DELETE", path: "/v1/qr-codes/" + c.Token, key: key}, 204, nil)
	e.ok(call{method: "GET", path: "/v1/qr-codes/" + c.Token, key: key}, 200, &c)
	if !c.Revoked {
		t.Fatalf("revoked code shows %+v", c)
	}
	if p := scan(bob).problem(t); p.Type != ProblemTypeBase+"qr-code-not-found" {
		t.Fatalf("scan of a revoked code: %+v", p)
	}
}
