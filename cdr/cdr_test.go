package cdr_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/internal/redistest"
)

func TestAddListNewestFirstCapped(t *testing.T) {
	ctx := context.Background()
	s := cdr.New(redistest.Client(t), 5)
	if recs, err := s.List(ctx, 10); err != nil || len(recs) != 0 {
		t.Fatalf("empty store: %v %v", recs, err)
	}
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		ans := start.Add(time.Duration(i) * time.Second)
		r := cdr.Record{
			CallID: fmt.Sprintf("c%d", i), X: "+8617000000000", Caller: "+8613800000001", Callee: "+8613900000002",
			Start: start, Answer: &ans, End: ans.Add(time.Minute), Disposition: cdr.Answered, HangupCause: 16, HangupBy: "caller",
		}
		if err := s.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.List(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].CallID != "c2" || recs[1].CallID != "c1" {
		t.Fatalf("List(2) = %+v; want c2, c1", recs)
	}
	if d := recs[0].Duration(); d != time.Minute {
		t.Errorf("Duration = %v", d)
	}
	if !recs[0].Start.Equal(start) || recs[0].Disposition != cdr.Answered {
		t.Errorf("record round trip: %+v", recs[0])
	}
	unanswered := cdr.Record{CallID: "r", Start: start, End: start, Disposition: cdr.Rejected}
	if unanswered.Duration() != 0 {
		t.Errorf("unanswered Duration = %v", unanswered.Duration())
	}
}
