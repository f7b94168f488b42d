package qr

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/privnum/privnum/e164"
)

// FuzzReadCSV reads any bytes as a label sheet CSV: the result is an error
// that names the line (or says there are no rows), or requests whose owner
// is in E.164, whose label is non-empty, at most MaxLabelLen
// characters and free of the owner's number, and whose mode is empty or
// valid. It needs no Redis: reading uses only the parser.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"owner,label,mode\n13800138000,Front desk,callback\n",
		"label,owner\nShop,+8613800138000\n\n# comment\n",
		"13800138000,Front desk\n13900000002,Back door,middle\n",
		"13800138000,call 13800138000\n",
		"13800138000,\n",
		"owner,label,owner\n",
		"owner,mode\n13800138000,callback\n",
		"13800138000,Caf\xc3\xa9 \xe2\x82\xac\n",
		"13800138000,\xe4\xb8\xad\xe6\x96\x87\n",
		"13800138000,a\"b\n",
	} {
		f.Add([]byte(s))
	}
	s := &Service{parser: e164.Parser{Region: "CN"}}
	f.Fuzz(func(t *testing.T, in []byte) {
		reqs, err := s.ReadCSV(strings.NewReader(string(in)))
		if err != nil {
			if reqs != nil {
				t.Fatalf("ReadCSV returned requests with error %v", err)
			}
			if !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "no rows") {
				t.Fatalf("ReadCSV error %q does not name the line", err)
			}
			return
		}
		if len(reqs) == 0 {
			t.Fatal("ReadCSV returned no requests and no error")
		}
		for i, r := range reqs {
			if got, err := s.parser.Parse(r.Owner); err != nil || got != r.Owner {
				t.Fatalf("row %d: owner %q is not E.164: %q, %v", i, r.Owner, got, err)
			}
			if r.Label == "" || r.Label != strings.TrimSpace(r.Label) || utf8.RuneCountInString(r.Label) > MaxLabelLen {
				t.Fatalf("row %d: label %q", i, r.Label)
			}
			if err := checkLabel(r.Label, r.Owner); err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			if r.Mode != "" && r.Mode != MiddleNumber && r.Mode != Callback {
				t.Fatalf("row %d: mode %q", i, r.Mode)
			}
		}
	})
}

// FuzzToken checks token parsing: normToken accepts exactly the
// TokenLen-character lowercase base32 tokens (after trimming and
// lowercasing), is idempotent, and Get, Scan and Revoke refuse everything else as not
// found before it reaches Redis (the Service here has none). ShortCode
// never shows more than 8 characters of a token.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXY7", " 234567abcdefghijklmnopqrst\n", "abc", "", "0000000000000000000000000o", "aaaaaaaaaaaaaaaaaaaaaaaaa\xc4\xb1"} {
		f.Add(s)
	}
	s := &Service{}
	f.Fuzz(func(t *testing.T, in string) {
		tok, ok := normToken(in)
		want := strings.ToLower(strings.TrimSpace(in))
		wellFormed := len(want) == TokenLen && strings.Trim(want, "abcdefghijklmnopqrstuvwxyz234567") == ""
		if ok != wellFormed || ok && tok != want {
			t.Fatalf("normToken(%q) = %q, %v; well formed: %v", in, tok, ok, wellFormed)
		}
		if ok {
			if again, ok2 := normToken(tok); !ok2 || again != tok {
				t.Fatalf("normToken(%q) = %q, %v: not idempotent", tok, again, ok2)
			}
			if sc := ShortCode(tok); len(sc) != 9 || !strings.HasPrefix(strings.ToLower(strings.ReplaceAll(sc, "-", "")), tok[:8]) {
				t.Fatalf("ShortCode(%q) = %q", tok, sc)
			}
			return
		}
		if _, err := s.Get(t.Context(), in); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q) = %v, want ErrNotFound", in, err)
		}
		if _, err := s.Scan(t.Context(), in, "+8613900000002"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Scan(%q) = %v, want ErrNotFound", in, err)
		}
		if err := s.Revoke(t.Context(), in); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Revoke(%q) = %v, want ErrNotFound", in, err)
		}
	})
}
