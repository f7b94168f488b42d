// Package e164 parses phone numbers into E.164 form and masks them for logs.
package e164

import (
	"errors"
	"fmt"
	"strings"

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
}

// NewParser returns a Parser for region, refusing an unknown region code.
func NewParser(region string) (Parser, error) {
	region = strings.ToUpper(strings.TrimSpace(region))
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return Parser{}, fmt.Errorf("unknown region %q: want an ISO 3166-1 alpha-2 code such as CN or US", region)
	}
	return Parser{Region: region}, nil
}

// Parse returns s in E.164 form ("+8613800000001"). The error wraps
// ErrInvalid and names the input.
func (p Parser) Parse(s string) (string, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
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
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

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
