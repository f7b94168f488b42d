// Package e164 parses phone numbers into E.164 form and masks them for logs.
package e164

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is returned (wrapped) for input that is not a valid phone number.
var ErrInvalid = errors.New("invalid phone number")

// Parser normalises phone numbers to E.164. The zero value accepts only
// international input ("+8613800000001" or "008613800000001").
type Parser struct {
	// Region is the ISO 3166-1 alpha-2 region (e.g. "CN") used for numbers
	// written in national form ("13800000001").
	Region string

	// memo, when set, remembers inputs already parsed (NewParser sets it).
	memo *memo
}

// NewParser returns a Parser for region, refusing an unknown region code.
// It remembers the numbers it has parsed, since the same ones (virtual
// numbers, busy couriers, callers calling again) come back all the time.
func NewParser(region string) (Parser, error) {
	region = strings.ToUpper(strings.TrimSpace(region))
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return Parser{}, fmt.Errorf("unknown region %q: want an ISO 3166-1 alpha-2 code such as CN or US", region)
	}
	return Parser{Region: region, memo: &memo{m: map[string]string{}}}, nil
}

// memo is a bounded map from input to E.164 form.
type memo struct {
	mu sync.Mutex
	m  map[string]string
}

// memoMax bounds a memo; past it the memo starts over.
const memoMax = 1 << 16

func (m *memo) get(in string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out, ok := m.m[in]
	return out, ok
}

func (m *memo) put(in, out string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) >= memoMax {
		clear(m.m)
	}
	m.m[in] = out
}

// Parse returns s in E.164 form ("+8613800000001"). The error wraps
// ErrInvalid and names the input.
func (p Parser) Parse(s string) (string, error) {
	if p.memo != nil {
		if out, ok := p.memo.get(s); ok {
			return out, nil
		}
	}
	out, err := p.parse(s)
	if err == nil && p.memo != nil {
		p.memo.put(s, out)
	}
	return out, err
}

// canonical validates input already in E.164 form without libphonenumber's
// full parse, which is several times slower. It reports false when it
// cannot tell; the full parse then decides.
func canonical(in string) bool {
	num, ok := canonicalShape(in)
	return ok && phonenumbers.IsValidNumber(num)
}

// canonicalShape checks everything canonical checks but the numbering
// plan, and returns the number for that last check.
func canonicalShape(in string) (*phonenumbers.PhoneNumber, bool) {
	if len(in) < 8 || len(in) > 16 || in[0] != '+' || in[1] == '0' {
		return nil, false
	}
	for i := 1; i < len(in); i++ {
		if in[i] < '0' || in[i] > '9' {
			return nil, false
		}
	}
	for ccLen := 1; ccLen <= 3; ccLen++ {
		cc, _ := strconv.Atoi(in[1 : 1+ccLen])
		if phonenumbers.GetRegionCodeForCountryCode(cc) == "ZZ" {
			continue
		}
		rest := in[1+ccLen:]
		if rest == "" || rest[0] == '0' {
			return nil, false // leading zeros need the full parse
		}
		if np := phonenumbers.GetNddPrefixForRegion(phonenumbers.GetRegionCodeForCountryCode(cc), true); np != "" && strings.HasPrefix(rest, np) {
			// The full parse may read this digit as a national prefix
			// (+375 8…): let it decide, as it does for every other form
			// of the number.
			return nil, false
		}
		nn, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return nil, false
		}
		c32 := int32(cc)
		return &phonenumbers.PhoneNumber{CountryCode: &c32, NationalNumber: &nn}, true
	}
	return nil, false
}

// Remember checks that n is a valid number in E.164 form, which Parse
// returns unchanged, and makes Parse (and Candidate) answer at once for
// it and for its national form in the parser's region: for numbers about
// to be dialed, learned ahead of their calls. It reports whether n is
// such a number; without a memo (the zero Parser) it only checks.
func (p Parser) Remember(n string) bool {
	if !canonical(n) {
		return false
	}
	if p.memo == nil {
		return true
	}
	p.memo.put(n, n)
	if r, ok := nationalRules()[p.Region]; ok && strings.HasPrefix(n, r.cc) {
		in := n[len(r.cc):]
		if _, ok := nationalShape(p.Region, in); ok {
			p.memo.put(in, n) // what national makes of it
		}
	}
	return true
}

// Candidate returns what Parse returns for s if that is a valid number,
// without checking the numbering plan, which is most of what parsing a
// number it has not seen costs: s as Parse last returned it, s itself in
// E.164 form, or a national number behind its region's country code. ok
// is false when it cannot tell. A caller that knows the candidate to be
// valid (it is a number privnum stored after parsing it) has Parse's
// answer.
func (p Parser) Candidate(s string) (string, bool) {
	if p.memo != nil {
		if out, ok := p.memo.get(s); ok {
			return out, true
		}
	}
	if _, ok := canonicalShape(s); ok {
		return s, true
	}
	r, ok := nationalShape(p.Region, s)
	if !ok {
		return "", false
	}
	out := r.cc + s
	if _, ok := canonicalShape(out); !ok {
		return "", false
	}
	return out, true
}

// nationalRule is what the fast path for national input needs to know of
// a region: its country code and the prefixes libphonenumber's parse would
// read in front of a national number (international and national
// dialling prefixes).
type nationalRule struct {
	cc       string         // "+86"
	idd, npp *regexp.Regexp // anchored; npp is nil for a region without one
}

// nationalRules are the rules of every region libphonenumber knows,
// built once from its metadata.
var nationalRules = sync.OnceValue(func() map[string]nationalRule {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return nil // every national number takes the full parse
	}
	rules := map[string]nationalRule{}
	for _, md := range coll.GetMetadata() {
		cc := md.GetCountryCode()
		idd, err := regexp.Compile("^(?:" + md.GetInternationalPrefix() + ")")
		if cc == 0 || md.GetInternationalPrefix() == "" || err != nil {
			continue
		}
		r := nationalRule{cc: "+" + strconv.Itoa(int(cc)), idd: idd}
		if np := md.GetNationalPrefixForParsing(); np != "" {
			if r.npp, err = regexp.Compile("^(?:" + np + ")"); err != nil {
				continue
			}
		}
		rules[md.GetId()] = r
	}
	return rules
})

// national is the fast path for a number written in national form, digits
// only, as trunks deliver callers: when nothing in front of it could be
// read as a dialling prefix or a country code and the region's country code in front of it
// makes a valid number, that is what libphonenumber's full parse gives
// too, at a fraction of its cost. It reports false when it cannot tell;
// the full parse then decides.
func national(region, in string) (string, bool) {
	r, ok := nationalShape(region, in)
	if !ok {
		return "", false
	}
	out := r.cc + in
	if !canonical(out) {
		return "", false
	}
	return out, true
}

// nationalShape returns region's rule when in is digits only and nothing
// in front of it could be read as a dialling prefix or a country code.
func nationalShape(region, in string) (nationalRule, bool) {
	if region == "" || len(in) > maxDigits {
		return nationalRule{}, false
	}
	for i := 0; i < len(in); i++ {
		if in[i] < '0' || in[i] > '9' {
			return nationalRule{}, false
		}
	}
	// A number that starts with the country code may be read as one
	// written with it (Tristan da Cunha's "29000" is +290 00).
	r, ok := nationalRules()[region]
	if !ok || strings.HasPrefix(in, r.cc[1:]) || r.idd.MatchString(in) || (r.npp != nil && r.npp.MatchString(in)) {
		return nationalRule{}, false
	}
	return r, true
}

func (p Parser) parse(s string) (string, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	if canonical(in) {
		return in, nil
	}
	if out, ok := national(p.Region, in); ok {
		return out, nil
	}
	return p.full(s, in)
}

// full is libphonenumber's parse of in (s trimmed), with privnum's checks.
func (p Parser) full(s, in string) (string, error) {
	if strings.HasPrefix(in, "00") {
		in = "+" + in[2:]
	}
	region := p.Region
	if region == "" {
		region = "ZZ"
	}
	num, err := phonenumbers.Parse(in, region)
	if err != nil {
		if !strings.HasPrefix(in, "+") && p.Region == "" {
			return "", fmt.Errorf("%w %q: national number without a region (set --region or write it as +CC...)", ErrInvalid, s)
		}
		return "", fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w %q: not a number in use in any numbering plan", ErrInvalid, s)
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if len(out) > 1+maxDigits {
		// libphonenumber takes some longer numbers (German ones, say) as
		// valid; E.164, and everything downstream, allows 15 digits.
		return "", fmt.Errorf("%w %q: more than %d digits", ErrInvalid, s, maxDigits)
	}
	if !readsBack(out) {
		// A national form can name a number whose own E.164 form reads
		// as another one (Belarus: "8 810 …" is +375 810…, which reads as
		// +375 10…): refused, so that a number is always the same number
		// however it is written.
		return "", fmt.Errorf("%w %q: its international form names another number", ErrInvalid, s)
	}
	return out, nil
}

// readsBack reports whether the E.164 number out parses to itself, valid.
func readsBack(out string) bool {
	if canonical(out) {
		return true
	}
	num, err := phonenumbers.Parse(out, "ZZ")
	return err == nil && phonenumbers.IsValidNumber(num) && phonenumbers.Format(num, phonenumbers.E164) == out
}

// maxDigits is the most digits an E.164 number has, country code included.
const maxDigits = 15

// MustParse is Parse for constants in tests and examples; it panics on error.
func (p Parser) MustParse(s string) string {
	n, err := p.Parse(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Mask hides the middle of a phone number for logs and call records:
// "+8613800000001" becomes "+86138****0001".
func Mask(n string) string {
	if len(n) >= 10 {
		return n[:len(n)-8] + "****" + n[len(n)-4:]
	}
	if len(n) > 4 {
		return strings.Repeat("*", len(n)-2) + n[len(n)-2:]
	}
	return strings.Repeat("*", len(n))
}
