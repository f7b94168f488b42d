package ari

import (
	"bytes"
	"fmt"
	"time"
)

// timeLayout is how Asterisk writes times, e.g. 2026-11-23T05:57:53.962+0000.
const timeLayout = "2006-01-02T15:04:05.000-0700"

// Time is a time in ARI JSON. It reads Asterisk's format
// (2006-01-02T15:04:05.000-0700) and RFC 3339, and writes Asterisk's.
type Time struct {
	time.Time
}

// UnmarshalJSON parses an Asterisk or RFC 3339 time; null and "" leave the
// zero time.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) || bytes.Equal(b, []byte(`""`)) {
		t.Time = time.Time{}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("ari: time %s is not a JSON string", b)
	}
	s := string(b[1 : len(b)-1])
	// Without a fraction in the layout, Parse accepts any fraction.
	v, err := time.Parse("2006-01-02T15:04:05Z0700", s)
	if err != nil {
		v, err = time.Parse(time.RFC3339Nano, s)
	}
	if err != nil {
		return fmt.Errorf("ari: parse time %q: %w", s, err)
	}
	t.Time = v
	return nil
}

// MarshalJSON writes t in Asterisk's format.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.Format(timeLayout) + `"`), nil
}
