package e164

import (
	"errors"
	"testing"
)

// TestParseRefusesOverlongNumbers: libphonenumber takes some numbers of
// more than 15 digits as valid (found by FuzzParse); E.164 allows 15.
func TestParseRefusesOverlongNumbers(t *testing.T) {
	tests := []struct{ region, in string }{
		{"DE", "02010000AAA00000"},
		{"DE", "0201000022200000"},
		{"", "+49201000022200000"},
	}
	for _, tt := range tests {
		p, err := NewParser(tt.region)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Parse(tt.in); !errors.Is(err, ErrInvalid) {
			t.Errorf("region %q: Parse(%q) = %q, %v; want ErrInvalid", tt.region, tt.in, got, err)
		}
	}
}
