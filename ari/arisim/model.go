package arisim

// JSON shapes of the ARI models and events, written from Asterisk 22's
// Swagger files and the recorded traces. They are deliberately separate from
// the privnum ARI client's types.

// asteriskTimeLayout is how Asterisk formats Date values (not RFC 3339).
const asteriskTimeLayout = "2006-01-02T15:04:05.000-0700"

type wireCallerID struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type wireDialplan struct {
	Context  string `json:"context"`
	Exten    string `json:"exten"`
	Priority int64  `json:"priority"`
	AppName  string `json:"app_name"`
	AppData  string `json:"app_data"`
}

type wireChannel struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	State        string       `json:"state"`
	ProtocolID   string       `json:"protocol_id"`
	Caller       wireCallerID `json:"caller"`
	Connected    wireCallerID `json:"connected"`
	AccountCode  string       `json:"accountcode"`
	Dialplan     wireDialplan `json:"dialplan"`
	CreationTime string       `json:"creationtime"`
	Language     string       `json:"language"`
}

type wireBridge struct {
	ID           string   `json:"id"`
	Technology   string   `json:"technology"`
	BridgeType   string   `json:"bridge_type"`
	BridgeClass  string   `json:"bridge_class"`
	Creator      string   `json:"creator"`
	Name         string   `json:"name"`
	Channels     []string `json:"channels"`
	CreationTime string   `json:"creationtime"`
	VideoMode    string   `json:"video_mode"`
}

type wirePlayback struct {
	ID           string `json:"id"`
	MediaURI     string `json:"media_uri"`
	NextMediaURI string `json:"next_media_uri,omitempty"`
	TargetURI    string `json:"target_uri"`
	Language     string `json:"language"`
	State        string `json:"state"`
}

// wireStoredRecording is ARI's StoredRecording.
type wireStoredRecording struct {
	Name   string `json:"name"`
	Format string `json:"format"`
}

type wireLiveRecording struct {
	Name            string `json:"name"`
	Format          string `json:"format"`
	TargetURI       string `json:"target_uri"`
	State           string `json:"state"`
	Duration        *int   `json:"duration,omitempty"`
	TalkingDuration *int   `json:"talking_duration,omitempty"`
	SilenceDuration *int   `json:"silence_duration,omitempty"`
	Cause           string `json:"cause,omitempty"`
}

type wireApplication struct {
	Name             string   `json:"name"`
	ChannelIDs       []string `json:"channel_ids"`
	BridgeIDs        []string `json:"bridge_ids"`
	EndpointIDs      []string `json:"endpoint_ids"`
	DeviceNames      []string `json:"device_names"`
	EventsAllowed    []any    `json:"events_allowed"`
	EventsDisallowed []any    `json:"events_disallowed"`
}

type wireError struct {
	Message string `json:"message"`
}

// wireAllocFailed is ast_ari_response_alloc_failed's body: note the key.
type wireAllocFailed struct {
	Error string `json:"error"`
}

type wireVariable struct {
	Value string `json:"value"`
}

// evTail holds the fields every event ends with. The application is filled in
// per receiving application just before marshalling.
type evTail struct {
	AsteriskID  string `json:"asterisk_id"`
	Application string `json:"application"`
}

func (t *evTail) tail() *evTail { return t }

// event is any ARI event struct below.
type event interface{ tail() *evTail }

// evChannel is ChannelStateChange, ChannelConnectedLine and StasisEnd.
type evChannel struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Channel   wireChannel `json:"channel"`
	evTail
}

type evStasisStart struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Args      []string    `json:"args"`
	Channel   wireChannel `json:"channel"`
	evTail
}

type evVarset struct {
	Variable  string      `json:"variable"`
	Value     string      `json:"value"`
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Channel   wireChannel `json:"channel"`
	evTail
}

type evDial struct {
	Type       string      `json:"type"`
	Timestamp  string      `json:"timestamp"`
	DialStatus string      `json:"dialstatus"`
	Forward    string      `json:"forward"`
	DialString string      `json:"dialstring"`
	Peer       wireChannel `json:"peer"`
	evTail
}

type evHangupRequest struct {
	Cause     *int        `json:"cause,omitempty"`
	TechCause *int        `json:"tech_cause,omitempty"`
	Soft      *bool       `json:"soft,omitempty"`
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Channel   wireChannel `json:"channel"`
	evTail
}

type evDestroyed struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Cause     int         `json:"cause"`
	CauseTxt  string      `json:"cause_txt"`
	TechCause *int        `json:"tech_cause,omitempty"`
	Channel   wireChannel `json:"channel"`
	evTail
}

type evBridge struct {
	Type      string       `json:"type"`
	Timestamp string       `json:"timestamp"`
	Bridge    wireBridge   `json:"bridge"`
	Channel   *wireChannel `json:"channel,omitempty"`
	evTail
}

type evPlayback struct {
	Type      string       `json:"type"`
	Timestamp string       `json:"timestamp"`
	Playback  wirePlayback `json:"playback"`
	evTail
}

type evRecording struct {
	Type      string            `json:"type"`
	Timestamp string            `json:"timestamp"`
	Recording wireLiveRecording `json:"recording"`
	evTail
}

type evCallerID struct {
	Type                  string      `json:"type"`
	Timestamp             string      `json:"timestamp"`
	CallerPresentation    int         `json:"caller_presentation"`
	CallerPresentationTxt string      `json:"caller_presentation_txt"`
	Channel               wireChannel `json:"channel"`
	evTail
}

type evDialplan struct {
	Type            string      `json:"type"`
	Timestamp       string      `json:"timestamp"`
	DialplanApp     string      `json:"dialplan_app"`
	DialplanAppData string      `json:"dialplan_app_data"`
	Channel         wireChannel `json:"channel"`
	evTail
}

// evDtmf is ChannelDtmfReceived, in dtmf_end_to_json's order.
type evDtmf struct {
	Type       string      `json:"type"`
	Timestamp  string      `json:"timestamp"`
	Digit      string      `json:"digit"`
	DurationMs int         `json:"duration_ms"`
	Channel    wireChannel `json:"channel"`
	evTail
}

// evApp is ApplicationReplaced.
type evApp struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	evTail
}

func intPtr(v int) *int    { return &v }
func boolPtr(v bool) *bool { return &v }
