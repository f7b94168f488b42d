package call

import "sync"

// serial runs functions one at a time, in the order they were given, on a
// goroutine that exists only while there is work: it is a call's owner
// loop without a goroutine per idle call.
type serial struct {
	a       *App
	mu      sync.Mutex
	q       []func()
	running bool
	stopped bool
	// turn changes when the owner hands off (see handOff): a drain
	// goroutine whose turn is over stops after its function returns.
	turn uint64
}

// do queues f. It never blocks; after stop it does nothing.
func (s *serial) do(f func()) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.q = append(s.q, f)
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	s.mu.Unlock()
	s.a.spawn(s.drain)
}

func (s *serial) drain() {
	s.mu.Lock()
	turn := s.turn
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if s.turn != turn {
			s.mu.Unlock()
			return // handed off: another goroutine owns the queue
		}
		if len(s.q) == 0 || s.stopped {
			s.running = false
			s.q = nil
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.mu.Unlock()
		f()
	}
}

// claim makes the calling goroutine the owner when the queue has none,
// and reports whether it did. The new owner runs its function itself and
// then hands off (handOff), which starts a goroutine for what was queued
// meanwhile.
func (s *serial) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || s.stopped {
		return false
	}
	s.running = true
	return true
}

// handOff is called by a function the owner runs: from then on the
// goroutine running it is no longer the owner, and it may go on with work
// of its own (a request) that must not touch the call. What is queued, or
// queued later, runs on another goroutine, started when there is work.
func (s *serial) handOff() {
	s.mu.Lock()
	s.turn++
	if len(s.q) == 0 || s.stopped {
		s.running = false
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.a.spawn(s.drain)
}

// stop drops what is queued and everything queued later.
func (s *serial) stop() {
	s.mu.Lock()
	s.stopped = true
	s.q = nil
	s.mu.Unlock()
}
