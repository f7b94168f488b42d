package e164

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		region, in, want string
		wantErr          bool
	}{
		{"CN", "13800000001", "+8613800000001", false},
		{"CN", "+86 138 0000 0001", "+8613800000001", false},
		{"CN", "008613800000001", "+8613800000001", false},
		{"CN", "17000000000", "+8617000000000", false},
		{"", "+8613800000001", "+8613800000001", false},
		{"US", "(202) 555-0123", "+12025550123", false},
		{"", "13800000001", "", true},
		{"CN", "abc", "", true},
		{"CN", "", "", true},
		{"CN", "123", "", true},
		{"CN", "+999999", "", true},
	}
	for _, tt := range tests {
		p, err := NewParser(tt.region)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Parse(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) in %q: err = %v, want ErrInvalid", tt.in, tt.region, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) in %q = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
		}
	}
}

func TestNewParserUnknownRegion(t *testing.T) {
	if _, err := NewParser("XX"); err == nil {
		t.Fatal("NewParser(XX) succeeded")
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"+8613800000001": "+86138****0001",
		"+12025550123":   "+120****0123",
		"+4930123":       "******23",
		"123":            "***",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
