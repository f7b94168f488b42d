package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/ratelimit"
)

func TestLimiter(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	tests := []struct {
		name   string
		n      int
		window time.Duration
		tries  int
		want   int // allowed
	}{
		{"burst of n", 3, time.Hour, 5, 3},
		{"off", 0, time.Hour, 5, 5},
		{"one", 1, time.Hour, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ratelimit.New(rdb, "pn:rl:test:"+tt.name, tt.n, tt.window)
			got := 0
			for range tt.tries {
				ok, err := l.Allow(ctx, "+8613800000001")
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					got++
				}
			}
			if got != tt.want {
				t.Fatalf("allowed %d of %d, want %d", got, tt.tries, tt.want)
			}
			// Another key has its own bucket.
			if ok, _ := l.Allow(ctx, "+8613800000002"); !ok {
				t.Fatal("another key was limited")
			}
		})
	}
}

func TestLimiterRefillsAndSaysWhen(t *testing.T) {
	ctx := context.Background()
	l := ratelimit.New(redistest.Client(t), "pn:rl:refill", 2, 400*time.Millisecond)
	for range 2 {
		if ok, _, _ := l.Take(ctx, "k"); !ok {
			t.Fatal("within the burst: refused")
		}
	}
	ok, retry, err := l.Take(ctx, "k")
	if err != nil || ok {
		t.Fatalf("over the limit: ok %v, err %v", ok, err)
	}
	if retry <= 0 || retry > 400*time.Millisecond {
		t.Fatalf("retry after %v, want within the window", retry)
	}
	time.Sleep(retry + 50*time.Millisecond)
	if ok, _, _ := l.Take(ctx, "k"); !ok {
		t.Fatal("no token back after the retry time")
	}
}
