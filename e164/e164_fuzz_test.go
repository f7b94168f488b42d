package e164

import (
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// cliRegions are the regions the CLI accepts for --region: none, and every
// region libphonenumber knows a country code for (NewParser refuses the
// rest).
var cliRegions = func() []string {
	out := []string{""}
	for r := range phonenumbers.GetSupportedRegions() {
		out = append(out, r)
	}
	sort.Strings(out[1:])
	return out
}()

var e164Re = regexp.MustCompile(`^\+[1-9][0-9]{1,15}$`)

// FuzzParse parses input in one of the regions the CLI accepts. A number
// it accepts is in E.164 form and parses to itself again, in that region
// and in none, through a fresh parser, written with 00 and in
// international format; the fast path agrees with the full parse; a
// refusal wraps ErrInvalid. Mask of the result hides its middle digits.
func FuzzParse(f *testing.F) {
	for _, s := range []struct {
		region uint16
		in     string
	}{
		{regionIndex("CN"), "13800000001"},
		{regionIndex("CN"), "+86 138 0000 0001"},
		{regionIndex("CN"), "008613800000001"},
		{regionIndex("US"), "(202) 555-0123"},
		{regionIndex("GB"), "020 7183 8750"},
		{regionIndex("DE"), "030 123456"},
		{regionIndex("IT"), "06 1234 5678"},
		{regionIndex("RU"), "8 (812) 345-67-89"},
		{regionIndex("AR"), "011 15 2345-6789"},
		{regionIndex(""), "+8613800000001"},
		{regionIndex(""), "13800000001"},
		{regionIndex(""), "+999999"},
		{regionIndex("CN"), "abc"},
		{regionIndex("CN"), ""},
	} {
		f.Add(s.region, s.in)
	}
	f.Fuzz(func(t *testing.T, ri uint16, in string) {
		region := cliRegions[int(ri)%len(cliRegions)]
		p, err := NewParser(strings.ToLower(region))
		if err != nil {
			t.Fatalf("NewParser(%q): %v", region, err)
		}
		out, err := p.Parse(in)
		if fresh, ferr := (Parser{Region: region}).Parse(in); fresh != out || (ferr == nil) != (err == nil) {
			t.Fatalf("region %q, Parse(%q) = %q, %v with a memo; %q, %v without", region, in, out, err, fresh, ferr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("region %q, Parse(%q): error %v does not wrap ErrInvalid", region, in, err)
			}
			return
		}
		if !e164Re.MatchString(out) {
			t.Fatalf("region %q, Parse(%q) = %q: not E.164", region, in, out)
		}
		again := map[string]Parser{"the same parser": p, "no region": {}}
		for name, q := range again {
			if got, err := q.Parse(out); got != out || err != nil {
				t.Fatalf("region %q, Parse(%q) = %q, which %s parses to %q, %v", region, in, out, name, got, err)
			}
		}
		if got, err := (Parser{}).Parse("00" + out[1:]); got != out || err != nil {
			t.Fatalf("region %q, Parse(%q) = %q, but 00%s parses to %q, %v", region, in, out, out[1:], got, err)
		}
		num, err := phonenumbers.Parse(out, "ZZ")
		if err != nil {
			t.Fatalf("libphonenumber cannot read %q back: %v", out, err)
		}
		intl := phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
		if got, err := (Parser{}).Parse(intl); got != out || err != nil {
			t.Fatalf("region %q, Parse(%q) = %q, but its international form %q parses to %q, %v", region, in, out, intl, got, err)
		}
		checkMask(t, out)
	})
}

// regionIndex is the index of region in cliRegions.
func regionIndex(region string) uint16 {
	i := sort.SearchStrings(cliRegions[1:], region)
	if region == "" || i == len(cliRegions)-1 || cliRegions[i+1] != region {
		return 0
	}
	return uint16(i + 1)
}

// FuzzCanonical checks the fast path for input in E.164 form: whatever it
// accepts, the full parse accepts unchanged.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"+8613800000001", "+12025550123", "+442071838750", "+390612345678", "+78123456789", "+4930123456", "+999123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !canonical(in) {
			return
		}
		if got, err := (Parser{}).parse(in); got != in || err != nil {
			t.Fatalf("canonical(%q) = true, but the full parse gives %q, %v", in, got, err)
		}
	})
}

// FuzzMask masks any string: the result is as long, shows only what it
// may (a prefix of len-8 and the last 4 bytes of a long number, the last
// 2 of a shorter one, nothing of one of 4 bytes or less) and hides the
// rest with '*'.
func FuzzMask(f *testing.F) {
	for _, s := range []string{"+8613800000001", "+12025550123", "+4930123", "123", "", "+86138000000012345"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, n string) { checkMask(t, n) })
}

func checkMask(t *testing.T, n string) {
	t.Helper()
	m := Mask(n)
	if len(m) != len(n) {
		t.Fatalf("Mask(%q) = %q: length %d, want %d", n, m, len(m), len(n))
	}
	var head, tail int // bytes shown at each end
	switch {
	case len(n) >= 10:
		head, tail = len(n)-8, 4
	case len(n) > 4:
		tail = 2
	}
	for i := range len(n) {
		shown := i < head || i >= len(n)-tail
		switch {
		case shown && m[i] != n[i]:
			t.Fatalf("Mask(%q) = %q: byte %d changed", n, m, i)
		case !shown && m[i] != '*':
			t.Fatalf("Mask(%q) = %q: byte %d not hidden", n, m, i)
		}
	}
}

// FuzzNational checks the fast path for national input: whatever it
// accepts, libphonenumber's full parse reads as the same number.
func FuzzNational(f *testing.F) {
	for _, s := range []struct {
		region uint16
		in     string
	}{
		{regionIndex("CN"), "13800000001"},
		{regionIndex("CN"), "8613800000001"},
		{regionIndex("US"), "2025550123"},
		{regionIndex("US"), "12025550123"},
		{regionIndex("GB"), "2071838750"},
		{regionIndex("BY"), "8810000000000"},
		{regionIndex("AR"), "91123456789"},
		{regionIndex("MX"), "15512345678"},
		{regionIndex("IT"), "0612345678"},
	} {
		f.Add(s.region, s.in)
	}
	f.Fuzz(func(t *testing.T, ri uint16, in string) {
		checkNational(t, cliRegions[int(ri)%len(cliRegions)], in)
	})
}

func checkNational(t *testing.T, region, in string) bool {
	t.Helper()
	out, ok := national(region, in)
	if !ok {
		return false
	}
	if want, err := (Parser{Region: region}).full(in, in); want != out || err != nil {
		t.Fatalf("region %s: national(%q) = %q, but the full parse gives %q, %v", region, in, out, want, err)
	}
	return true
}

// FuzzCandidate: a candidate that is a valid number is what Parse returns.
func FuzzCandidate(f *testing.F) {
	for _, s := range []struct {
		region uint16
		in     string
	}{
		{regionIndex("CN"), "13800000001"},
		{regionIndex("CN"), "+8613800000001"},
		{regionIndex("CN"), "1380000000"},
		{regionIndex("US"), "2025550123"},
		{regionIndex("BM"), "3100000"},
		{regionIndex("TA"), "29000"},
		{regionIndex("BY"), "+3758100000000"},
		{regionIndex(""), "+12025550123"},
	} {
		f.Add(s.region, s.in)
	}
	f.Fuzz(func(t *testing.T, ri uint16, in string) {
		checkCandidate(t, cliRegions[int(ri)%len(cliRegions)], in)
	})
}

func checkCandidate(t *testing.T, region, in string) bool {
	t.Helper()
	p := Parser{Region: region}
	cand, ok := p.Candidate(in)
	if !ok || !canonical(cand) {
		return false
	}
	if out, err := p.Parse(in); out != cand || err != nil {
		t.Fatalf("region %q: Candidate(%q) = %q, a valid number, but Parse gives %q, %v", region, in, cand, out, err)
	}
	// Remembering the number changes nothing Parse answers.
	m, _ := NewParser(region)
	if !m.Remember(cand) {
		t.Fatalf("region %q: Remember(%q) refused a valid number", region, cand)
	}
	for _, s := range []string{in, cand, strings.TrimPrefix(cand, "+"+strconv.Itoa(int(phonenumbers.GetCountryCodeForRegion(region))))} {
		want, werr := p.Parse(s)
		if got, err := m.Parse(s); got != want || (err == nil) != (werr == nil) {
			t.Fatalf("region %q, %q remembered: Parse(%q) = %q, %v; without it %q, %v", region, cand, s, got, err, want, werr)
		}
	}
	return true
}
