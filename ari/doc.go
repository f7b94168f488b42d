// Package ari is a typed client for the Asterisk REST Interface (ARI) of
// Asterisk 22: REST calls on channels, bridges, playbacks and recordings, and
// the application's event stream over a WebSocket with reconnection.
//
// Generate channel, bridge and playback ids yourself and register them in
// call state before the request that creates them: Asterisk may deliver the
// object's events before the HTTP reply.
package ari
