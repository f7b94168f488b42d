package ari

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTime(t *testing.T) {
	plus2 := time.FixedZone("", 2*3600)
	tests := []struct {
		in      string
		want    time.Time
		out     string // MarshalJSON of the result
		wantErr bool
	}{
		{in: `"2026-11-23T05:57:53.962+0000"`, want: time.Date(2026, 11, 23, 5, 57, 53, 962e6, time.UTC), out: `"2026-11-23T05:57:53.962+0000"`},
		{in: `"2026-11-23T07:57:53.962+0200"`, want: time.Date(2026, 11, 23, 7, 57, 53, 962e6, plus2), out: `"2026-11-23T07:57:53.962+0200"`},
		{in: `"2026-11-23T05:57:53-0500"`, want: time.Date(2026, 11, 23, 10, 57, 53, 0, time.UTC), out: `"2026-11-23T05:57:53.000-0500"`},
		{in: `"2026-11-23T05:57:53.962Z"`, want: time.Date(2026, 11, 23, 5, 57, 53, 962e6, time.UTC), out: `"2026-11-23T05:57:53.962+0000"`},
		{in: `"2026-11-23T07:57:53.123456789+02:00"`, want: time.Date(2026, 11, 23, 7, 57, 53, 123456789, plus2), out: `"2026-11-23T07:57:53.123+0200"`},
		{in: `null`, out: `"0001-01-01T00:00:00.000+0000"`},
		{in: `""`, out: `"0001-01-01T00:00:00.000+0000"`},
		{in: `"2026-11-23 05:57:53"`, wantErr: true},
		{in: `"yesterday"`, wantErr: true},
		{in: `1795413473`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Time
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsed as %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			out, err := json.Marshal(got)
			if err != nil || string(out) != tt.out {
				t.Errorf("marshal = %s, %v; want %s", out, err, tt.out)
			}
		})
	}
}
