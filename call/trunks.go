package call

import "context"

// The trunks and the events the application reads.
//
// serve subscribes its application to the inbound trunks (Config.Trunks)
// for their text messages, and asks Asterisk not to send the event types
// call control never reads. Routing does not wait for a trunk's events: a
// call is resolved at StasisStart, from the Router's route cache when it
// runs (binding.Service.CacheRoutes), without a Redis round trip.
// (privnum used to start resolving a trunk call at its ChannelCreated;
// measured on Asterisk 22, receiving that event delayed StasisStart by
// about as much as the early start saved.)

// unreadEvents are the event types call control never reads. Asterisk
// is asked not to send them: on a subscribed trunk a call's channel
// otherwise carries five of them to the application before its
// StasisStart, and their delivery delays it (measured on Asterisk 22: 0.1
// to 0.3 ms of call setup), and every bridged call carries a dozen more.
func unreadEvents() []string {
	return []string{"ChannelCreated", "ChannelVarset", "ChannelDialplan", "ChannelConnectedLine", "ChannelCallerId", "EndpointStateChange"}
}

// filterEvents asks Asterisk not to send the application unreadEvents. A
// switch that refuses costs only the extra events.
func (a *App) filterEvents(ctx context.Context) {
	if _, err := a.sw.SetEventFilter(ctx, a.cfg.Application, nil, unreadEvents()); err != nil {
		a.log.Warn("could not set the application's event filter: Asterisk sends events call control does not read", "err", err)
	}
}

// subscribeTrunks subscribes the application to the trunks' events, for
// their text messages.
func (a *App) subscribeTrunks(ctx context.Context) {
	for _, t := range a.cfg.Trunks {
		if _, err := a.sw.Subscribe(ctx, a.cfg.Application, "endpoint:"+t); err != nil {
			a.log.Error("subscribing to the trunk failed: its text messages are not relayed",
				"endpoint", t, "err", err)
		}
	}
}
