package ari

// CallerID is a name and number, as in a channel's caller or connected line.
type CallerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

// Dialplan is a channel's dialplan location.
type Dialplan struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int64  `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

// Channel is a snapshot of an Asterisk channel.
type Channel struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	State        string   `json:"state"` // Down, Rsrved, OffHook, Dialing, Ring, Ringing, Up, Busy, ...
	ProtocolID   string   `json:"protocol_id"`
	Caller       CallerID `json:"caller"`
	Connected    CallerID `json:"connected"`
	Accountcode  string   `json:"accountcode"`
	Dialplan     Dialplan `json:"dialplan"`
	CreationTime Time     `json:"creationtime"`
	Language     string   `json:"language"`
	// ChannelVars holds the variables listed in ari.conf's channelvars.
	ChannelVars map[string]string `json:"channelvars,omitempty"`
}

// Bridge is a snapshot of an Asterisk bridge.
type Bridge struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"` // mixing, holding
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"` // ids of the channels in the bridge
	VideoMode    string   `json:"video_mode,omitempty"`
	CreationTime Time     `json:"creationtime"`
}

// Playback is the state of a media playback.
type Playback struct {
	ID           string `json:"id"`
	MediaURI     string `json:"media_uri"`
	NextMediaURI string `json:"next_media_uri,omitempty"`
	TargetURI    string `json:"target_uri"` // e.g. channel:ID or bridge:ID
	Language     string `json:"language,omitempty"`
	State        string `json:"state"` // queued, playing, continuing, done, failed
}

// LiveRecording is the state of a recording in progress.
type LiveRecording struct {
	Name            string `json:"name"`
	Format          string `json:"format"`
	TargetURI       string `json:"target_uri"`
	State           string `json:"state"`                      // queued, recording, paused, done, failed, canceled
	Duration        int    `json:"duration,omitempty"`         // seconds
	TalkingDuration int    `json:"talking_duration,omitempty"` // seconds
	SilenceDuration int    `json:"silence_duration,omitempty"` // seconds
	Cause           string `json:"cause,omitempty"`            // why it failed
}

// StoredRecording is a finished recording kept by Asterisk (GET
// /recordings/stored): its name (a path below the recording directory,
// without extension) and file format ("wav", "gsm", ...).
type StoredRecording struct {
	Name   string `json:"name"`
	Format string `json:"format"`
}

// Application is the state of a Stasis application: what it holds.
type Application struct {
	Name        string   `json:"name"`
	ChannelIDs  []string `json:"channel_ids"`
	BridgeIDs   []string `json:"bridge_ids"`
	EndpointIDs []string `json:"endpoint_ids"`
	DeviceNames []string `json:"device_names"`
	// EventsAllowed and EventsDisallowed are the application's event
	// filter: objects naming an event type ({"type": "ChannelVarset"}).
	EventsAllowed    []EventType `json:"events_allowed,omitempty"`
	EventsDisallowed []EventType `json:"events_disallowed,omitempty"`
}

// EventType names an event type in an application's event filter.
type EventType struct {
	Type string `json:"type"`
}

// AsteriskInfo describes the Asterisk instance.
type AsteriskInfo struct {
	Build  BuildInfo  `json:"build"`
	System SystemInfo `json:"system"`
	Config ConfigInfo `json:"config"`
	Status StatusInfo `json:"status"`
}

// BuildInfo tells how Asterisk was built.
type BuildInfo struct {
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	Machine string `json:"machine"`
	Options string `json:"options"`
	Date    string `json:"date"`
	User    string `json:"user"`
}

// SystemInfo identifies the Asterisk version and instance.
type SystemInfo struct {
	Version  string `json:"version"`
	EntityID string `json:"entity_id"`
}

// ConfigInfo holds Asterisk's main settings.
type ConfigInfo struct {
	Name            string  `json:"name"`
	DefaultLanguage string  `json:"default_language"`
	MaxChannels     int     `json:"max_channels,omitempty"`
	MaxOpenFiles    int     `json:"max_open_files,omitempty"`
	MaxLoad         float64 `json:"max_load,omitempty"`
}

// StatusInfo tells when Asterisk started and last reloaded; a changed
// StartupTime means Asterisk restarted.
type StatusInfo struct {
	StartupTime    Time `json:"startup_time"`
	LastReloadTime Time `json:"last_reload_time"`
}
