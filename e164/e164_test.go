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

// TestCandidate: a candidate that is a valid number is what Parse
// returns, for every region's example numbers in the forms of
// TestNationalAgreesWithParse and in E.164; what Parse remembers is a
// candidate too.
func TestCandidate(t *testing.T) {
	taken := 0
	for region := range phonenumbers.GetSupportedRegions() {
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE} {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			nsn := phonenumbers.GetNationalSignificantNumber(ex)
			for _, in := range []string{nsn, ndd + nsn, cc + nsn, "+" + cc + nsn, nsn + "1"} {
				if checkCandidate(t, region, in) {
					taken++
				}
			}
		}
	}
	if taken < 300 {
		t.Errorf("only %d candidates", taken)
	}
	p, _ := NewParser("DE")
	want := p.MustParse("030 123456")
	if got, ok := p.Candidate("030 123456"); !ok || got != want {
		t.Errorf("Candidate of a parsed number = %q, %v; want %q from the memo", got, ok, want)
	}
	if _, ok := p.Candidate("030 1234567"); ok {
		t.Error("Candidate of a national number behind a national prefix, never parsed: want no candidate")
	}
}

// TestRemember: a remembered number, and its national form, parse to it
// from the memo, as the full parse would; an invalid one is refused and
// not remembered.
func TestRemember(t *testing.T) {
	p, _ := NewParser("CN")
	if !p.Remember("+8613800000001") {
		t.Fatal("Remember refused a valid number")
	}
	for _, in := range []string{"+8613800000001", "13800000001"} {
		if got, ok := p.memo.get(in); !ok || got != "+8613800000001" {
			t.Errorf("memo[%q] = %q, %v", in, got, ok)
		}
		if want, err := (Parser{Region: "CN"}).Parse(in); err != nil || want != "+8613800000001" {
			t.Errorf("the full parse of %q = %q, %v", in, want, err)
		}
	}
	for _, n := range []string{"+8600000000000", "13800000001", "+86 138 0000 0001", "+3758100000000"} {
		if p.Remember(n) {
			t.Errorf("Remember(%q) = true", n)
		}
		if _, ok := p.memo.get(n); ok && n != "13800000001" {
			t.Errorf("%q remembered", n)
		}
	}
	// A region whose national prefix reads like the number: the national
	// form is left to the full parse.
	bm, _ := NewParser("BM")
	if n := bm.MustParse("+14413100000"); !bm.Remember(n) {
		t.Fatalf("Remember(%s) refused", n)
	}
	if _, ok := bm.memo.get("3100000"); ok {
		t.Error("BM: 3100000 remembered, but Parse reads it as +14413100000 through a national prefix transform")
	}
}
