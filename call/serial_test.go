package call

import (
	"testing"
	"time"
)

// A function that hands the owner role off keeps its goroutine while what
// is queued meanwhile runs elsewhere, in order; the old goroutine runs
// nothing more of the queue.
func TestSerialHandOff(t *testing.T) {
	a := New(nil, nil, nil, Config{})
	defer a.Close()
	var s serial
	s.a = a
	release := make(chan struct{})
	got := make(chan string, 10)
	s.do(func() {
		s.handOff()
		got <- "handed off"
		<-release // a request in flight
		s.do(func() { got <- "result" })
	})
	if g := <-got; g != "handed off" {
		t.Fatalf("got %q", g)
	}
	s.do(func() { got <- "event 1" })
	s.do(func() { got <- "event 2" })
	for _, want := range []string{"event 1", "event 2"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q did not run while the request was in flight", want)
		}
	}
	close(release)
	if g := <-got; g != "result" {
		t.Fatalf("got %q", g)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		idle := !s.running && len(s.q) == 0
		s.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no owner goroutine should be left once the work is done")
		}
	}
	a.wg.Wait() // both goroutines ended
}
