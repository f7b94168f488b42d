// Package arisim is a fake Asterisk 22.10.1 that speaks ARI over real HTTP
// and WebSocket on a loopback port, so that privnum's tests, demo and load
// tests run without a PBX.
//
// It reproduces what the recorded traces in shared/ari-traces show real
// Asterisk doing: event order and shapes, REST statuses and bodies, which
// events reach the application after StasisEnd, the identities each SIP
// party is sent. It has its own JSON types and does not import the privnum
// ARI client, so that a client bug cannot hide behind shared types.
//
// # Use
//
//	sim := arisim.New(arisim.Options{Username: "u", Password: "p", TimeScale: 0.01})
//	if err := sim.Start(); err != nil { ... }
//	defer sim.Close()
//	// point the application at sim.URL()+"/ari" and let it connect
//	// /ari/events?app=privnum, then:
//	sim.SetEndpoint("13900000002", arisim.Answer(time.Second))
//	a, err := sim.InboundCall(ctx, "13800000001", "17000000000")
//	...
//	sim.HangupFromPeer(a, arisim.CauseNormal) // A hangs up
//	sim.IdentitiesSeenBy("13900000002")       // what B was sent: must not hold 13800000001
//
// # Behaviour
//
//   - POST /channels (originate) answers 200 with a Down snapshot and dials
//     in the background: Dial "" / ChannelStateChange Ringing / Dial RINGING
//     / ChannelStateChange Up / Dial ANSWER, and StasisStart only when the
//     far party answers. timeout omitted or 0 is 30 s, -1 none. Busy:
//     ChannelHangupRequest 17/486, Dial BUSY, ChannelDestroyed 17. No answer:
//     ChannelDestroyed 19/480 at the timeout.
//   - POST /channels/create enters Stasis at once (StasisStart in state Down,
//     emitted before the HTTP reply); /dial's timeout defaults to 0, ring
//     forever; failures end with StasisEnd and ChannelDestroyed, no Dial
//     BUSY. create's originator is subscribed to the application.
//   - Inbound calls (InboundCall) enter Stasis in state Ring and stay there
//     until the application or the caller ends them. Without a WebSocket
//     for the application they fail at once (ErrNoApplication). POST
//     /answer takes them Up with a ChannelStateChange (answer-play-hangup).
//   - Playbacks: each media of a list plays for its length (PlaybackDuration,
//     MediaDurations; tones until stopped) with its own PlaybackStarted,
//     PlaybackContinuing between two media and PlaybackFinished at the end,
//     or when stopped (state done, the media that was playing). A playback
//     stopped while queued reports PlaybackFinished when its turn comes.
//     Playbacks on one channel play one after the other.
//   - DTMF: SendDTMF is the far party pressing keys, one ChannelDtmfReceived
//     per digit when it ends, only once media flows (answered or early
//     media) and while in Stasis; a playback goes on until the application
//     stops it. POST /channels/{id}/dtmf plays digits to the far party
//     (ChannelInfo.DTMFSent) and reports no event, as Asterisk reports only
//     received digits.
//   - After StasisEnd a channel's events reach only applications subscribed
//     to it explicitly (originate, create, create's originator): an inbound
//     channel's ChannelDestroyed is not seen, an originated one's is.
//   - Bridges: hanging up a bridged channel never hangs up the other one.
//     When a join makes a two-party bridge, each side's connected line
//     becomes the other side's caller id, unless that join used
//     inhibitConnectedLineUpdates=true.
//   - The privacy oracle: every identity a channel's far party is sent (the
//     From of the INVITE, connected-line updates as P-Asserted-Identity) is
//     recorded; see IdentitiesSeen and IdentitiesSeenBy.
//   - Configuration reads (a configuration check's, as in the doctor-reads
//     trace): GET /asterisk/modules[/{name}] lists Asterisk 22.10.1's
//     modules, GET /asterisk/config/dynamic/res_pjsip/endpoint|aor/{id}
//     every attribute of a trunk's endpoint and AOR (404 for an unknown
//     id), GET /endpoints[/PJSIP[/{name}]] the trunks and their states.
//     Tests change them with SetModule, SetEndpointOption, SetAOROption,
//     RemoveAOR and SetContactReachable.
//   - One WebSocket per application: a second one replaces the first, which
//     gets ApplicationReplaced and no further events (it is not closed, as
//     in the trace). While no WebSocket is up, events are dropped and the
//     channels stay.
//
// # Control endpoints
//
// With Options.Control (cmd/arisim sets it) the same server, behind the
// same credentials, serves:
//
//	POST /_sim/calls                 {"from":"13800000001","exten":"17000000000","app":"privnum","app_args":"","trunk":"trunk-in","caller_name":""}
//	                                 → 201 {"channel_id":"..."}; 409 {"error":...,"channel_id":...} when no WebSocket is up for the app
//	POST /_sim/endpoints             {"pattern":"139*","outcome":"answer|busy|noanswer|fail|allocfail","after_ms":1000,
//	                                  "ring_after_ms":0,"no_ringing":false,"cause":34,"hangup_after_ms":0}
//	                                 ({"default":true,...} sets the default behavior) → 204
//	POST /_sim/channels/{id}/hangup  {"cause":16} → 204: the far party hangs up (127 = caller cancels)
//	POST /_sim/channels/{id}/answer  → 204: the far party of a ringing outbound leg answers
//	POST /_sim/channels/{id}/dtmf    {"digits":"1234#","gap_ms":200} → 204: the far party presses keys
//	                                 (SendDTMF); 409 when the channel has no media or is not in Stasis
//	GET  /_sim/channels              live channels; GET /_sim/channels/{id} one, live or destroyed
//	GET  /_sim/history               destroyed channels
//	GET  /_sim/identities?number=N   {"number":N,"seen":[...]}: every number party N was sent
//	GET  /_sim/stats                 counters
//	POST /_sim/drop                  close every WebSocket from the server side
package arisim
