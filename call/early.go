package call

import (
	"context"
	"strings"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
)

// Early routing.
//
// Asterisk creates a trunk call's channel, runs the dialplan and only then
// hands the channel to Stasis(): on a real Asterisk 22 the application
// subscribed to the trunk endpoint sees ChannelCreated, with the caller and
// the dialed extension, a few hundred microseconds before StasisStart. The
// App resolves the call from ChannelCreated on, so that by StasisStart the
// route is known (or on its way) and the hidden leg is originated at once.
//
// The early route is the route as it stood when the call reached the
// switch. It is used only if StasisStart names the same virtual number and
// caller (a dialplan that rewrote either gets a fresh resolve); it is
// dropped when its channel goes, and after earlyTTL in any case.

// earlyTTL bounds how long an early route waits for its StasisStart.
const earlyTTL = 5 * time.Second

// earlyMax bounds the early routes in flight: past it (a flood of calls
// that never reach Stasis) channels are resolved at StasisStart only.
const earlyMax = 10000

// earlyRoute is a resolve started at ChannelCreated. r and err are set
// before done is closed.
type earlyRoute struct {
	x, caller string
	done      chan struct{}
	r         binding.Route
	err       error
	timer     *time.Timer
}

// unreadEvents are the event types call control never reads. Asterisk
// is asked not to send them: on a subscribed trunk a call's channel
// otherwise carries four of them to the application before its
// StasisStart, and their delivery delays it (measured on Asterisk 22: about
// 0.3 ms of call setup), and every bridged call carries a dozen more.
func unreadEvents() []string {
	return []string{"ChannelVarset", "ChannelDialplan", "ChannelConnectedLine", "ChannelCallerId", "EndpointStateChange"}
}

// filterEvents asks Asterisk not to send the application unreadEvents. A
// switch that refuses costs only the extra events.
func (a *App) filterEvents(ctx context.Context) {
	if _, err := a.sw.SetEventFilter(ctx, a.cfg.Application, nil, unreadEvents()); err != nil {
		a.log.Warn("could not set the application's event filter: Asterisk sends events call control does not read", "err", err)
	}
}

// subscribeTrunks subscribes the application to the trunks' events: their
// channels from creation on (early routing) and their text messages.
func (a *App) subscribeTrunks(ctx context.Context) {
	for _, t := range a.cfg.Trunks {
		if _, err := a.sw.Subscribe(ctx, a.cfg.Application, "endpoint:"+t); err != nil {
			a.log.Error("subscribing to the trunk failed: its calls are resolved at StasisStart only, and its text messages are not relayed",
				"endpoint", t, "err", err)
		}
	}
}

// routeEarly starts resolving a trunk channel that has not reached Stasis.
func (a *App) routeEarly(ch ari.Channel) {
	if strings.HasPrefix(ch.ID, "privnum-") || ch.Caller.Number == "" || ch.Dialplan.Exten == "" ||
		strings.HasPrefix(ch.Name, "Message/") {
		return
	}
	e := &earlyRoute{x: ch.Dialplan.Exten, caller: ch.Caller.Number, done: make(chan struct{})}
	a.mu.Lock()
	if a.closed || len(a.early) >= earlyMax || a.early[ch.ID] != nil {
		a.mu.Unlock()
		return
	}
	a.early[ch.ID] = e
	a.wg.Add(1)
	a.mu.Unlock()
	id := ch.ID
	e.timer = time.AfterFunc(earlyTTL, func() { a.takeEarly(id) })
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(a.ctx, earlyTTL)
		defer cancel()
		e.r, e.err = a.router.Resolve(ctx, e.x, e.caller)
		close(e.done)
	}()
}

// takeEarly removes and returns the early route of a channel, if any.
func (a *App) takeEarly(id string) *earlyRoute {
	a.mu.Lock()
	e := a.early[id]
	delete(a.early, id)
	a.mu.Unlock()
	if e != nil {
		e.timer.Stop()
	}
	return e
}

// earlyFor returns the early route of the channel that entered Stasis as
// a call from caller to x, or nil when there is none or it was resolved
// for another number or caller.
func (a *App) earlyFor(id, x, caller string) *earlyRoute {
	e := a.takeEarly(id)
	if e == nil || e.x != x || e.caller != caller {
		return nil
	}
	return e
}

// resolve returns the call's route: the early one when there is one,
// otherwise a fresh resolve. It runs on the owner.
func (c *call) resolve() (binding.Route, error) {
	c.a.cfg.Metrics.countResolve(c.early != nil)
	if e := c.early; e != nil {
		c.early = nil
		select {
		case <-e.done:
			return e.r, e.err
		case <-c.ctx.Done():
			return binding.Route{}, c.ctx.Err()
		}
	}
	return c.a.router.Resolve(c.ctx, c.x, c.caller)
}
