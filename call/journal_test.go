package call_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/call"
)

// journal is a Switch that notes the channel requests it passes on and
// their outcome, for a failing test to show what call control did.
type journal struct {
	call.Switch
	mu    sync.Mutex
	lines []string
}

func (j *journal) note(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.lines) > 20000 {
		j.lines = j.lines[10000:]
	}
	j.lines = append(j.lines, time.Now().Format("15:04:05.000000")+" "+fmt.Sprintf(format, args...))
}

// about returns the noted lines that mention id.
func (j *journal) about(id string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, l := range j.lines {
		if strings.Contains(l, id) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (j *journal) Hangup(ctx context.Context, id, reason string) error {
	before := ctx.Err()
	err := j.Switch.Hangup(ctx, id, reason)
	j.note("hangup %s %s: %v (ctx before %v, after %v)", id, reason, err, before, ctx.Err())
	return err
}

func (j *journal) Answer(ctx context.Context, id string) error {
	err := j.Switch.Answer(ctx, id)
	j.note("answer %s: %v", id, err)
	return err
}

func (j *journal) AddChannel(ctx context.Context, bridge string, o ari.AddChannelOptions, ids ...string) error {
	err := j.Switch.AddChannel(ctx, bridge, o, ids...)
	j.note("addChannel %s %v: %v", bridge, ids, err)
	return err
}

func (j *journal) Originate(ctx context.Context, r ari.OriginateRequest) (ari.Channel, error) {
	ch, err := j.Switch.Originate(ctx, r)
	j.note("originate %s originator=%s: %v", r.ChannelID, r.Originator, err)
	return ch, err
}

// StartOriginate passes the quick originate through when the switch has
// it (an *ari.Client does), so that the harness's calls take the path
// serve's calls take.
func (j *journal) StartOriginate(ctx context.Context, r ari.OriginateRequest) (func() (ari.Channel, error), bool) {
	so, ok := j.Switch.(interface {
		StartOriginate(context.Context, ari.OriginateRequest) (func() (ari.Channel, error), bool)
	})
	if !ok {
		return nil, false
	}
	wait, ok := so.StartOriginate(ctx, r)
	j.note("startOriginate %s originator=%s: sent %v", r.ChannelID, r.Originator, ok)
	if !ok {
		return nil, false
	}
	return func() (ari.Channel, error) {
		ch, err := wait()
		j.note("originate %s originator=%s: %v", r.ChannelID, r.Originator, err)
		return ch, err
	}, true
}

func (j *journal) Ring(ctx context.Context, id string) error {
	j.note("ring %s", id)
	return j.Switch.Ring(ctx, id)
}

// lines returns the noted lines.
func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}
