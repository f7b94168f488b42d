package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"id":"evt_1","type":"binding.created"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, now, body)
	if !strings.HasPrefix(good, "t=1800000000,v1=") || len(good) != len("t=1800000000,v1=")+64 {
		t.Fatalf("Sign = %q", good)
	}
	other := Sign("whsec_other", now, body)
	v1Other := other[strings.Index(other, "v1="):]

	tests := []struct {
		name      string
		secret    string
		header    string
		body      []byte
		tolerance time.Duration
		now       time.Time
		want      error
	}{
		{"valid", secret, good, body, time.Minute, now, nil},
		{"valid within tolerance", secret, good, body, time.Minute, now.Add(59 * time.Second), nil},
		{"default tolerance", secret, good, body, 0, now.Add(4 * time.Minute), nil},
		{"rotation: second v1 matches", secret, good + "," + v1Other, body, time.Minute, now, nil},
		{"rotation: first v1 matches", secret, "t=1800000000," + v1Other + "," + good[len("t=1800000000,"):], body, time.Minute, now, nil},
		{"unknown scheme ignored", secret, good + ",v0=abc", body, time.Minute, now, nil},
		{"spaces", secret, strings.Replace(good, ",", ", ", 1), body, time.Minute, now, nil},
		{"wrong secret", "whsec_wrong", good, body, time.Minute, now, ErrInvalidSignature},
		{"tampered body", secret, good, []byte(`{"id":"evt_2","type":"binding.created"}`), time.Minute, now, ErrInvalidSignature},
		{"other secret only", secret, other, body, time.Minute, now, ErrInvalidSignature},
		{"tampered timestamp", secret, strings.Replace(good, "t=1800000000", "t=1800000001", 1), body, time.Minute, now, ErrInvalidSignature},
		{"empty header", secret, "", body, time.Minute, now, ErrInvalidSignature},
		{"no timestamp", secret, good[strings.Index(good, "v1="):], body, time.Minute, now, ErrInvalidSignature},
		{"no v1", secret, "t=1800000000", body, time.Minute, now, ErrInvalidSignature},
		{"bad hex", secret, "t=1800000000,v1=zz", body, time.Minute, now, ErrInvalidSignature},
		{"short v1", secret, "t=1800000000,v1=abcd", body, time.Minute, now, ErrInvalidSignature},
		{"bad timestamp", secret, "t=soon," + good[strings.Index(good, "v1="):], body, time.Minute, now, ErrInvalidSignature},
		{"two timestamps", secret, "t=1," + good, body, time.Minute, now, ErrInvalidSignature},
		{"no secret", "", good, body, time.Minute, now, ErrInvalidSignature},
		{"too old", secret, good, body, time.Minute, now.Add(61 * time.Second), ErrStaleSignature},
		{"from the future", secret, good, body, time.Minute, now.Add(-61 * time.Second), ErrStaleSignature},
		{"replay after default tolerance", secret, good, body, 0, now.Add(6 * time.Minute), ErrStaleSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyAt(tt.secret, tt.header, tt.body, tt.tolerance, tt.now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("verify = %v, want %v", err, tt.want)
			}
		})
	}
	// Verify uses the real clock.
	fresh := Sign(secret, time.Now(), body)
	if err := Verify(secret, fresh, body, time.Minute); err != nil {
		t.Fatalf("Verify(fresh) = %v", err)
	}
	if err := Verify(secret, good, body, time.Minute); !errors.Is(err, ErrStaleSignature) {
		t.Fatalf("Verify(old) = %v", err)
	}
}
