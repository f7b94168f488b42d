package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// series returns n samples one minute apart, v(i) each.
func series(n int, v func(i int) float64) ([]time.Duration, []float64) {
	at := make([]time.Duration, n)
	vs := make([]float64, n)
	for i := range n {
		at[i], vs[i] = time.Duration(i)*time.Minute, v(i)
	}
	return at, vs
}

func TestFitTrend(t *testing.T) {
	noise := []float64{0.02, -0.03, 0.01, 0.04, -0.02, -0.01, 0.03, -0.04, 0.02, -0.02}
	for _, tc := range []struct {
		name       string
		n          int
		v          func(i int) float64
		wantOK     bool
		wantGrowth float64 // NaN: not checked
	}{
		{"flat", 20, func(int) float64 { return 100 }, true, 0},
		{"noisy but flat", 20, func(i int) float64 { return 100 * (1 + noise[i%len(noise)]) }, true, math.NaN()},
		// 1 % a minute for 19 minutes over a mean of ~110: ~+17 %.
		{"leak", 20, func(i int) float64 { return 100 + float64(i) }, false, 19.0 / 109.5},
		{"slow leak under the limit", 20, func(i int) float64 { return 1000 + float64(i) }, true, 19.0 / 1009.5},
		{"falling", 20, func(i int) float64 { return 200 - float64(i) }, true, -19.0 / 190.5},
		{"a spike at the end", 20, func(i int) float64 {
			if i == 19 {
				return 130
			}
			return 100
		}, true, math.NaN()},
		{"too few samples", minTrendSamples - 1, func(int) float64 { return 1 }, false, 0},
	} {
		at, v := series(tc.n, tc.v)
		tr := fitTrend("x", at, v, 0.10)
		if tr.OK != tc.wantOK {
			t.Errorf("%s: ok = %v, want %v (%+v)", tc.name, tr.OK, tc.wantOK, tr)
		}
		if !math.IsNaN(tc.wantGrowth) && math.Abs(tr.Growth-tc.wantGrowth) > 1e-9 {
			t.Errorf("%s: growth = %v, want %v", tc.name, tr.Growth, tc.wantGrowth)
		}
	}
	// The slope is per minute whatever the sample interval.
	at := []time.Duration{0, 30 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute}
	tr := fitTrend("x", at, []float64{10, 11, 12, 13, 14}, 1)
	if math.Abs(tr.SlopePerMin-2) > 1e-9 || tr.From != 0 || tr.To != 2*time.Minute || tr.Mean != 12 {
		t.Errorf("half-minute samples: %+v, want slope 2/min, mean 12", tr)
	}
}

func TestWindowAndTrends(t *testing.T) {
	var samples []SoakSample
	for i := 1; i <= 30; i++ {
		s := SoakSample{At: time.Duration(i) * time.Minute, HeapAlloc: 10 << 20, Goroutines: 600}
		if i <= 8 { // warm-up: the heap grows to its working size
			s.HeapAlloc = uint64(i) << 20
		}
		samples = append(samples, s)
	}
	w := window(samples, 30*time.Minute, 20*time.Minute, 5*time.Minute)
	if len(w) != 21 || w[0].At != 10*time.Minute {
		t.Fatalf("window of a 30-minute run: %d samples from %s, want 21 from 10m", len(w), w[0].At)
	}
	for _, tr := range trends(w, 0.10) {
		if !tr.OK {
			t.Errorf("flat after warm-up: %+v", tr)
		}
	}
	// A short run: the warm-up bound wins.
	if w := window(samples[:10], 10*time.Minute, 20*time.Minute, 5*time.Minute); len(w) != 6 || w[0].At != 5*time.Minute {
		t.Errorf("window of a 10-minute run: %d samples", len(w))
	}
	// Over the whole run the warm-up growth is a trend.
	if tr := trends(samples, 0.10)[0]; tr.OK {
		t.Errorf("heap rising over the whole run passes: %+v", tr)
	}
	// Goroutines creeping up by 2 % a minute fail.
	for i := range w {
		w[i].Goroutines = 600 + 12*i
	}
	if tr := trends(w, 0.10)[1]; tr.OK || tr.Name != "goroutines" {
		t.Errorf("goroutine leak passes: %+v", tr)
	}
}

func TestKeyFamilyAndLeftover(t *testing.T) {
	for k, want := range map[string]string{
		"pn:{+8617000000001}:r:+8613600000001":     "pn:{…}:r:N",
		"pn:{+8617000000001}:b:8617000000001.ab12": "pn:{…}:b:N",
		"pn:party:{+8613600000001}":                "pn:party:{…}",
		"pn:{dialq}:placed:1795633903-0":           "pn:{…}:placed:N",
		"pn:verify:{+8613300000001}:v:f00dcafe":    "pn:verify:{…}:v:N",
		"pn:pool":                                  "pn:pool",
	} {
		if got := keyFamily(k); got != want {
			t.Errorf("keyFamily(%q) = %q, want %q", k, got, want)
		}
	}
	base := map[string]bool{"pn:pool": true, "pn:{+8617000000001}:num": true}
	keys := map[string]bool{"pn:pool": true, "pn:{+8617000000001}:num": true, "pn:calls": true, "pn:{dialq}:jobs": true}
	if left, total, persistent := leftover(keys, base); len(left) != 0 || total != 4 || persistent != 2 {
		t.Errorf("baseline plus the logs: leftover %v, %d keys, %d persistent", left, total, persistent)
	}
	keys["pn:party:{+8613600000001}"], keys["pn:party:{+8613600000002}"] = true, true
	if left, _, _ := leftover(keys, base); left["pn:party:{…}"] != 2 || len(left) != 1 {
		t.Errorf("leftover %v, want 2 pn:party:{…}", left)
	}
}

func TestSoakReport(t *testing.T) {
	flat := func() []SoakSample {
		var s []SoakSample
		for i := range 6 {
			s = append(s, SoakSample{At: time.Duration(i) * time.Minute, HeapAlloc: 8 << 20, Goroutines: 700, Placed: int64(100 * i), Completed: int64(100 * i)})
		}
		return s
	}
	pass := func() *SoakReport {
		s := flat()
		return &SoakReport{Config: defaultSoakConfig(), Samples: s, Trends: trends(s, 0.1), Last: s[len(s)-1], Leftover: map[string]int{}}
	}
	if r := pass(); !r.Pass() {
		t.Fatalf("a clean report fails: %+v", r)
	}
	for name, spoil := range map[string]func(*SoakReport){
		"misrouted":       func(r *SoakReport) { r.Last.Misrouted = 1 },
		"failed call":     func(r *SoakReport) { r.Last.Failed = 1 },
		"no calls":        func(r *SoakReport) { r.Last.Completed = 0 },
		"leftover keys":   func(r *SoakReport) { r.Leftover["pn:party:{…}"] = 3 },
		"calls left":      func(r *SoakReport) { r.LiveAfter = 1 },
		"channels left":   func(r *SoakReport) { r.ChannelsAfter = 2 },
		"an error":        func(r *SoakReport) { r.errorf("identities: +86139****0001 was sent %q", "+8613800000001") },
		"rising heap":     func(r *SoakReport) { r.Trends[0].OK = false },
		"no trend at all": func(r *SoakReport) { r.Trends = nil },
	} {
		r := pass()
		spoil(r)
		if r.Pass() {
			t.Errorf("%s: passes", name)
		}
	}

	var out bytes.Buffer
	r := pass()
	r.Print(&out)
	lines := strings.Split(out.String(), "\n")
	hdr := -1
	for i, l := range lines {
		if l == csvHeader {
			hdr = i
		}
	}
	if hdr < 0 {
		t.Fatalf("no CSV header:\n%s", out.String())
	}
	cols := len(strings.Split(csvHeader, ","))
	for i := range r.Samples {
		if n := len(strings.Split(lines[hdr+1+i], ",")); n != cols {
			t.Errorf("CSV row %d has %d columns, want %d: %s", i, n, cols, lines[hdr+1+i])
		}
	}
	if !strings.HasPrefix(lines[hdr+2], "1.00,8.00,") {
		t.Errorf("second row %q, want minute 1.00 and 8.00 MiB", lines[hdr+2])
	}
	for _, want := range []string{"heap_alloc ok", "goroutines ok", "verdict: PASS", "redis keys:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSoakFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-soak", "1m", "-sample", "0"},
		{"-soak", "1m", "-hold", "-1s"},
		{"-soak", "1m", "-churn", "-1"},
		{"-soak", "1m", "-max-growth", "-0.1"},
	} {
		if code := realMain(args); code != 2 {
			t.Errorf("realMain(%q) = %d, want 2", args, code)
		}
	}
}
