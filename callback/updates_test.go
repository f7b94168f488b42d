package callback

import (
	"fmt"
	"testing"

	"github.com/privnum/privnum/call"
)

// TestReportNeverBlocks: call control reports state changes without waiting,
// whether or not Run is applying them, and they come out in order.
func TestReportNeverBlocks(t *testing.T) {
	u := updates{wake: make(chan struct{}, 1)}
	const n = 10000 // more than any channel buffer would hold
	for i := range n {
		u.add(update{id: fmt.Sprint(i), state: call.CallbackCallingFirst})
	}
	got := u.take()
	if len(got) != n {
		t.Fatalf("took %d updates, want %d", len(got), n)
	}
	for i, x := range got {
		if x.id != fmt.Sprint(i) {
			t.Fatalf("update %d is %s: out of order", i, x.id)
		}
	}
	if len(u.take()) != 0 {
		t.Fatal("take left updates behind")
	}
}
