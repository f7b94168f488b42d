package e164

import (
	"errors"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
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

// TestCanonicalAgreesWithParse: the fast path for E.164 input accepts
// exactly what the full parse accepts, unchanged.
func TestCanonicalAgreesWithParse(t *testing.T) {
	slow := Parser{}
	for _, in := range []string{
		"+8613800000001", "+8617000000000", "+12025550123", "+442071838750", "+4930123456",
		"+390612345678", "+8613800000", "+86138000000012", "+999123456789", "+10000000000",
		"+4412", "+79991234567", "+33123456789", "+61412345678",
	} {
		want, err := slow.parse(in)
		fast := canonical(in)
		if fast && (err != nil || want != in) {
			t.Errorf("canonical(%q) = true, full parse = %q, %v", in, want, err)
		}
	}
}

func TestParserMemo(t *testing.T) {
	p, err := NewParser("CN")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := p.Parse("138 0000 0001"); err != nil || got != "+8613800000001" {
			t.Fatalf("Parse = %q, %v", got, err)
		}
		if _, err := p.Parse("nope"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad input: %v", err)
		}
	}
}

func TestCanonicalTakesCommonNumbers(t *testing.T) {
	for _, in := range []string{"+8613800000001", "+12025550123", "+8617000000000"} {
		if !canonical(in) {
			t.Errorf("canonical(%q) = false: the fast path is not taken", in)
		}
	}
}

// TestNationalAgreesWithParse: the fast path for national input gives what
// the full parse gives, for every region's example numbers of every type,
// written as national significant numbers, behind a national prefix, with
// the country code in front, and with digits changed.
func TestNationalAgreesWithParse(t *testing.T) {
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER, phonenumbers.UAN, phonenumbers.PAGER}
	taken := 0
	for region := range phonenumbers.GetSupportedRegions() {
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			nsn := phonenumbers.GetNationalSignificantNumber(ex)
			variants := []string{nsn, ndd + nsn, cc + nsn, nsn[:len(nsn)-1], nsn + "0"}
			for i := range nsn {
				b := []byte(nsn)
				b[i] = '0' + (b[i]-'0'+1)%10
				variants = append(variants, string(b))
			}
			for _, in := range variants {
				if checkNational(t, region, in) {
					taken++
				}
			}
		}
	}
	if taken < 1000 {
		t.Errorf("the fast path took only %d of the example numbers", taken)
	}
	for _, c := range []struct{ region, in string }{{"CN", "13800000001"}, {"US", "2025550123"}, {"GB", "7400123456"}} {
		if !checkNational(t, c.region, c.in) {
			t.Errorf("national(%s, %q): the fast path is not taken", c.region, c.in)
		}
	}
}
