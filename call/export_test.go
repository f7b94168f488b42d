package call

import (
	"fmt"
	"os"
	"time"

	"github.com/privnum/privnum/ari"
)

// DebugCalls describes the live calls, as their owners see them.
func (a *App) DebugCalls() []string {
	var out []string
	for _, c := range a.liveCalls() {
		ch := make(chan string, 1)
		c.do(func() {
			ch <- fmt.Sprintf("%s in=%s out=%s phase=%d inGone=%v outGone=%v cause=%d", c.id, c.inbound, c.outbound, c.phase, c.inGone, c.outGone, c.cause)
		})
		select {
		case s := <-ch:
			out = append(out, s)
		case <-time.After(time.Second):
			c.q.mu.Lock()
			out = append(out, fmt.Sprintf("%s: owner stuck (queue %d, running %v)", c.id, len(c.q.q), c.q.running))
			c.q.mu.Unlock()
		}
	}
	return out
}

type WarnLog struct{}

func (WarnLog) Write(p []byte) (int, error) { return os.Stderr.Write(p) }

var _ ari.InlineHandler = (*App)(nil)
