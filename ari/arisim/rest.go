package arisim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Handler returns the HTTP handler serving /ari (and /_sim when
// Options.Control is set). Start serves it; tests may mount it themselves.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ari/events", s.handleEvents)

	mux.HandleFunc("GET /ari/asterisk/info", s.api(s.getInfo))
	mux.HandleFunc("GET /ari/asterisk/ping", s.api(s.ping))
	mux.HandleFunc("GET /ari/asterisk/modules", s.api(s.listModules))
	mux.HandleFunc("GET /ari/asterisk/modules/{moduleName}", s.api(s.getModule))
	mux.HandleFunc("GET /ari/asterisk/config/dynamic/{configClass}/{objectType}/{id}", s.api(s.getDynamicConfig))

	mux.HandleFunc("GET /ari/channels", s.api(s.listChannels))
	mux.HandleFunc("POST /ari/channels", s.api(s.originate))
	mux.HandleFunc("POST /ari/channels/create", s.api(s.createChannel))
	mux.HandleFunc("GET /ari/channels/{channelId}", s.api(s.getChannel))
	mux.HandleFunc("POST /ari/channels/{channelId}", s.api(s.originate))
	mux.HandleFunc("DELETE /ari/channels/{channelId}", s.api(s.hangupChannel))
	mux.HandleFunc("POST /ari/channels/{channelId}/answer", s.api(s.answer))
	mux.HandleFunc("POST /ari/channels/{channelId}/ring", s.api(s.ring))
	mux.HandleFunc("DELETE /ari/channels/{channelId}/ring", s.api(s.ringStop))
	mux.HandleFunc("POST /ari/channels/{channelId}/progress", s.api(s.progress))
	mux.HandleFunc("POST /ari/channels/{channelId}/dial", s.api(s.dial))
	mux.HandleFunc("POST /ari/channels/{channelId}/dtmf", s.api(s.sendDTMF))
	mux.HandleFunc("POST /ari/channels/{channelId}/play", s.api(s.playChannel))
	mux.HandleFunc("POST /ari/channels/{channelId}/play/{playbackId}", s.api(s.playChannel))
	mux.HandleFunc("POST /ari/channels/{channelId}/record", s.api(s.recordChannel))
	mux.HandleFunc("GET /ari/channels/{channelId}/variable", s.api(s.getVariable))
	mux.HandleFunc("POST /ari/channels/{channelId}/variable", s.api(s.setVariable))
	mux.HandleFunc("POST /ari/channels/{channelId}/continue", s.api(s.continueDialplan))

	mux.HandleFunc("GET /ari/bridges", s.api(s.listBridges))
	mux.HandleFunc("POST /ari/bridges", s.api(s.createBridge))
	mux.HandleFunc("GET /ari/bridges/{bridgeId}", s.api(s.getBridge))
	mux.HandleFunc("POST /ari/bridges/{bridgeId}", s.api(s.createBridge))
	mux.HandleFunc("DELETE /ari/bridges/{bridgeId}", s.api(s.destroyBridge))
	mux.HandleFunc("POST /ari/bridges/{bridgeId}/addChannel", s.api(s.addChannel))
	mux.HandleFunc("POST /ari/bridges/{bridgeId}/removeChannel", s.api(s.removeChannel))
	mux.HandleFunc("POST /ari/bridges/{bridgeId}/play", s.api(s.playBridge))
	mux.HandleFunc("POST /ari/bridges/{bridgeId}/play/{playbackId}", s.api(s.playBridge))
	mux.HandleFunc("POST /ari/bridges/{bridgeId}/record", s.api(s.recordBridge))

	mux.HandleFunc("GET /ari/recordings/live/{recordingName}", s.api(s.getLiveRecording))
	mux.HandleFunc("DELETE /ari/recordings/live/{recordingName}", s.api(s.cancelRecording))
	mux.HandleFunc("POST /ari/recordings/live/{recordingName}/stop", s.api(s.stopRecording))
	mux.HandleFunc("GET /ari/recordings/stored", s.api(s.listStored))
	mux.HandleFunc("GET /ari/recordings/stored/{recordingName...}", s.api(s.getStored))
	mux.HandleFunc("DELETE /ari/recordings/stored/{recordingName...}", s.api(s.deleteStored))

	mux.HandleFunc("GET /ari/playbacks/{playbackId}", s.api(s.getPlayback))
	mux.HandleFunc("DELETE /ari/playbacks/{playbackId}", s.api(s.stopPlayback))

	mux.HandleFunc("GET /ari/applications", s.api(s.listApplications))
	mux.HandleFunc("GET /ari/applications/{applicationName}", s.api(s.getApplication))
	mux.HandleFunc("POST /ari/applications/{applicationName}/subscription", s.api(s.subscribe))
	mux.HandleFunc("PUT /ari/applications/{applicationName}/eventFilter", s.api(s.setEventFilter))
	mux.HandleFunc("GET /ari/endpoints", s.api(s.listEndpoints))
	mux.HandleFunc("GET /ari/endpoints/{tech}", s.api(s.listEndpoints))
	mux.HandleFunc("GET /ari/endpoints/{tech}/{resource}", s.api(s.getEndpoint))
	mux.HandleFunc("PUT /ari/endpoints/sendMessage", s.api(s.sendMessage))
	mux.HandleFunc("PUT /ari/endpoints/{tech}/{resource}/sendMessage", s.api(s.sendMessageToEndpoint))

	mux.HandleFunc("/ari/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, wireError{Message: "Resource not found"})
	})
	if s.opts.Control {
		s.mountControl(mux)
	}
	return s.auth(mux)
}

// auth accepts HTTP Basic credentials or api_key=user:pass.
func (s *Sim) auth(next http.Handler) http.Handler {
	if s.opts.Username == "" && s.opts.Password == "" {
		return next
	}
	want := s.opts.Username + ":" + s.opts.Password
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("api_key")
		if u, p, ok := r.BasicAuth(); ok {
			got = u + ":" + p
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
			writeJSON(w, http.StatusUnauthorized, wireError{Message: "Authentication required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// params are an operation's parameters: the query string, overridden by the
// fields of a JSON body, as Asterisk's *_parse_body functions do.
type params struct {
	values map[string][]string
	vars   map[string]string
	// body is the JSON body's object, for parameters that are objects
	// (an application's event filter).
	body map[string]any
}

func readParams(r *http.Request) (*params, *reply) {
	p := &params{values: map[string][]string{}}
	for k, v := range r.URL.Query() {
		if k != "api_key" {
			p.values[k] = v
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errReply(http.StatusBadRequest, "Error reading request body")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, errReply(http.StatusBadRequest, "Error parsing request body")
	}
	p.body = obj
	for k, v := range obj {
		if k == "variables" {
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			p.vars = make(map[string]string, len(m))
			for vk, vv := range m {
				str, ok := vv.(string)
				if !ok {
					return nil, errReply(http.StatusBadRequest, "Only string values in the 'variables' object allowed")
				}
				p.vars[vk] = str
			}
			continue
		}
		if vals := jsonValues(v); vals != nil {
			p.values[k] = vals
		}
	}
	return p, nil
}

func jsonValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case json.Number:
		return []string{x.String()}
	case bool:
		return []string{strconv.FormatBool(x)}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, jsonValues(e)...)
		}
		return out
	}
	return nil
}

func (p *params) str(name string) string {
	if v := p.values[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// list returns every value, comma lists split, blanks dropped.
func (p *params) list(name string) []string {
	var out []string
	for _, v := range p.values[name] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// integer parses like atoi: garbage is 0.
func (p *params) integer(name string, def int) int {
	v := p.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0
	}
	return n
}

func (p *params) boolean(name string) bool {
	switch strings.ToLower(p.str(name)) {
	case "true", "yes", "1", "on":
		return true
	}
	return false
}

// reply is an operation's HTTP answer.
type reply struct {
	status   int
	body     any // nil: no body
	location string
	// file, when contentType is set, is the raw body (a recording's file).
	file        []byte
	contentType string
}

func errReply(status int, msg string) *reply {
	return &reply{status: status, body: wireError{Message: msg}}
}

func allocFailed() *reply {
	return &reply{status: http.StatusInternalServerError, body: wireAllocFailed{Error: "Allocation failed"}}
}

func okReply(body any) *reply { return &reply{status: http.StatusOK, body: body} }
func noContent() *reply       { return &reply{status: http.StatusNoContent} }
func created(loc string, body any) *reply {
	return &reply{status: http.StatusCreated, body: body, location: loc}
}

// api wraps an operation: parameters parsed, the operation run under the
// lock, the reply written after it is released.
func (s *Sim) api(op func(r *http.Request, p *params) *reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, rep := readParams(r)
		if rep == nil {
			s.mu.Lock()
			if s.closed {
				rep = errReply(http.StatusServiceUnavailable, "Asterisk is shutting down")
			} else {
				rep = op(r, p)
			}
			s.unlockNotify()
		}
		if rep.location != "" {
			w.Header().Set("Location", rep.location)
		}
		if rep.contentType != "" {
			w.Header().Set("Content-Type", rep.contentType)
			w.WriteHeader(rep.status)
			_, _ = w.Write(rep.file)
			return
		}
		if rep.body == nil {
			w.WriteHeader(rep.status)
			return
		}
		writeJSON(w, rep.status, rep.body)
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// findControl is resource_channels.c's find_control: 404 when the channel
// does not exist, 409 when it is not in Stasis.
func (s *Sim) findControl(id string) (*channel, *reply) {
	ch := s.channels[id]
	if ch == nil {
		return nil, errReply(http.StatusNotFound, "Channel not found")
	}
	if ch.stasisApp == "" {
		return nil, errReply(http.StatusConflict, "Channel not in Stasis application")
	}
	return ch, nil
}

// stateInvalid is channel_state_invalid: outbound legs that are not
// answered yet cannot be answered, rung, played to or continued.
func stateInvalid(ch *channel) *reply {
	switch ch.state {
	case stateDown, stateRinging:
		return errReply(http.StatusPreconditionFailed, "Channel in invalid state")
	}
	return nil
}

func (s *Sim) controlInValidState(id string) (*channel, *reply) {
	ch, rep := s.findControl(id)
	if rep != nil {
		return nil, rep
	}
	if rep := stateInvalid(ch); rep != nil {
		return nil, rep
	}
	return ch, nil
}

// ---- /asterisk

func (s *Sim) getInfo(r *http.Request, p *params) *reply {
	start := s.startedAt
	all := map[string]any{
		"build": map[string]any{
			"os": "Linux", "kernel": "6.18.44-arisim", "machine": "x86_64",
			"options": "OPTIONAL_API", "date": start.UTC().Format("2006-01-02 15:04:05 UTC"), "user": "root",
		},
		"system": map[string]any{"version": s.opts.AsteriskVersion, "entity_id": s.asteriskID},
		"config": map[string]any{
			"name": "", "default_language": "en",
			"setid": map[string]any{"user": "", "group": ""},
		},
		"status": map[string]any{
			"startup_time":     start.Format(asteriskTimeLayout),
			"last_reload_time": start.Format(asteriskTimeLayout),
		},
	}
	if only := p.list("only"); len(only) > 0 {
		out := map[string]any{}
		for _, k := range only {
			if v, ok := all[k]; ok {
				out[k] = v
			}
		}
		return okReply(out)
	}
	return okReply(all)
}

func (s *Sim) ping(r *http.Request, p *params) *reply {
	return okReply(map[string]string{"asterisk_id": s.asteriskID, "ping": "pong", "timestamp": s.ts()})
}

func secondsDuration(n int) time.Duration { return time.Duration(n) * time.Second }

// ---- /channels

func (s *Sim) listChannels(r *http.Request, p *params) *reply {
	chans := s.liveChannels()
	out := make([]wireChannel, len(chans))
	for i, ch := range chans {
		out[i] = s.snap(ch)
	}
	return okReply(out)
}

func (s *Sim) getChannel(r *http.Request, p *params) *reply {
	ch := s.channels[r.PathValue("channelId")]
	if ch == nil {
		return errReply(http.StatusNotFound, "Channel not found")
	}
	return okReply(s.snap(ch))
}

// parseCallerID is ast_callerid_parse for `"Name" <number>`, `Name <number>`
// and a bare number, shrinking the number as Asterisk does.
func parseCallerID(s string) party {
	s = strings.TrimSpace(s)
	if s == "" {
		return party{}
	}
	var name, num string
	if i := strings.LastIndex(s, "<"); i >= 0 {
		if j := strings.Index(s[i:], ">"); j > 0 {
			num = s[i+1 : i+j]
			name = strings.Trim(strings.TrimSpace(s[:i]), `"`)
		}
	} else if strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("0123456789+*#-(). ", r) }) < 0 {
		num = s
	} else {
		name = strings.Trim(s, `"`)
	}
	return party{name: name, number: shrinkNumber(num)}
}

// shrinkNumber is ast_shrink_phone_number for shrinkable numbers.
func shrinkNumber(n string) string {
	for _, r := range n {
		if !strings.ContainsRune("0123456789+*#-(). ", r) {
			return n
		}
	}
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("-(). ", r) {
			return -1
		}
		return r
	}, n)
}

func (s *Sim) originate(r *http.Request, p *params) *reply {
	endpoint := p.str("endpoint")
	id := r.PathValue("channelId")
	if id == "" {
		id = p.str("channelId")
	}
	if endpoint == "" {
		return errReply(http.StatusBadRequest, "Endpoint must be specified")
	}
	if p.str("originator") != "" && p.str("formats") != "" {
		return errReply(http.StatusBadRequest, "Originator and formats can't both be specified")
	}
	if _, _, ok := splitEndpoint(endpoint); !ok {
		return errReply(http.StatusBadRequest, "Invalid endpoint specified")
	}
	app, exten := p.str("app"), p.str("extension")
	if app == "" && exten == "" {
		return errReply(http.StatusBadRequest, "Application or extension must be specified")
	}
	if o := p.str("originator"); o != "" && s.channels[o] == nil {
		return errReply(http.StatusBadRequest, "Provided originator channel was not found")
	}
	t, ok := s.resolveTarget(endpoint)
	if !ok {
		return allocFailed()
	}
	b := s.behaviorFor(t)
	if b.Outcome == OutcomeAllocFail {
		return allocFailed()
	}
	if id != "" && s.channels[id] != nil {
		return errReply(http.StatusConflict, "Channel with given unique ID already exists")
	}
	ch := s.newOutbound(t, id, dirOriginate, b)
	switch timeout := p.integer("timeout", 30); {
	case timeout > 0:
		ch.timeout = secondsDuration(timeout)
	case timeout == -1:
		ch.timeout = 0
	default:
		ch.timeout = secondsDuration(30)
	}
	if cid := parseCallerID(p.str("callerId")); cid != (party{}) {
		ch.caller, ch.connected = cid, cid
	}
	s.applyVariables(ch, p.vars)
	if app != "" {
		ch.targetApp, ch.appArgs = app, p.str("appArgs")
		ch.subs = []string{app}
	}
	snap := s.snap(ch)
	// The dial runs in the background: usually the 200 reaches the
	// application before the first Dial event, as in the traces.
	s.afterCh(ch, 0, func() { s.startDial(ch) })
	return okReply(snap)
}

func (s *Sim) createChannel(r *http.Request, p *params) *reply {
	endpoint, app, id := p.str("endpoint"), p.str("app"), p.str("channelId")
	if endpoint == "" {
		return errReply(http.StatusBadRequest, "Endpoint must be specified")
	}
	if app == "" {
		return errReply(http.StatusBadRequest, "Application name is required")
	}
	if p.str("originator") != "" && p.str("formats") != "" {
		return errReply(http.StatusBadRequest, "Originator and formats can't both be specified")
	}
	t, ok := s.resolveTarget(endpoint)
	if !ok {
		return allocFailed()
	}
	b := s.behaviorFor(t)
	if b.Outcome == OutcomeAllocFail {
		return allocFailed()
	}
	if id != "" && s.channels[id] != nil {
		return errReply(http.StatusConflict, "Channel with given unique ID already exists")
	}
	if o := s.channels[p.str("originator")]; o != nil {
		// stasis_app_subscribe_channel(app, originator): the application
		// keeps the originator's events after its StasisEnd.
		o.subs = addUnique(o.subs, app)
	}
	ch := s.newOutbound(t, id, dirCreate, b)
	ch.subs = []string{app}
	s.applyVariables(ch, p.vars)
	snap := s.snap(ch)
	// The channel enters Stasis at once, before the HTTP reply.
	if !s.enterStasis(ch, app, p.str("appArgs")) {
		s.terminate(ch, hangupSpec{cause: CauseNormal, by: HangupBySystem})
	}
	return okReply(snap)
}

func (s *Sim) hangupChannel(r *http.Request, p *params) *reply {
	ch := s.channels[r.PathValue("channelId")]
	if ch == nil {
		return errReply(http.StatusNotFound, "Channel not found")
	}
	reason, code := p.str("reason"), p.str("reason_code")
	cause := CauseNormal
	switch {
	case reason != "" && code != "":
		return errReply(http.StatusBadRequest, "The reason and reason_code can't both be specified")
	case code != "":
		n, err := strconv.Atoi(code)
		if err != nil {
			return errReply(http.StatusBadRequest, "Invalid reason for hangup reason code provided")
		}
		cause = n
	case reason != "":
		c, ok := hangupReason(reason)
		if !ok {
			return errReply(http.StatusBadRequest, "Invalid reason for hangup reason provided")
		}
		cause = c
	}
	s.appHangup(ch, cause)
	return noContent()
}

func (s *Sim) answer(r *http.Request, p *params) *reply {
	ch, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	s.answerChannel(ch)
	return noContent()
}

func (s *Sim) ring(r *http.Request, p *params) *reply {
	ch, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	if ch.state != stateUp {
		ch.rang = true // a 180 to the caller
	}
	return noContent()
}

func (s *Sim) ringStop(r *http.Request, p *params) *reply {
	_, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	return noContent()
}

func (s *Sim) progress(r *http.Request, p *params) *reply {
	ch, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	if ch.state != stateUp {
		ch.earlyMedia = true // a 183
	}
	return noContent()
}

func (s *Sim) dial(r *http.Request, p *params) *reply {
	ch, rep := s.findControl(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	if ch.state != stateDown || ch.dialing {
		return errReply(http.StatusConflict, "Channel is not in the 'Down' state")
	}
	if ch.dir != dirCreate {
		return errReply(http.StatusConflict, "Dialing a channel not created by ARI")
	}
	if caller := s.channels[p.str("caller")]; caller != nil {
		// ast_connected_line_copy_from_caller: the caller's identity
		// becomes the callee's connected line, i.e. the From it is sent.
		s.setConnected(ch, caller.caller, true, false)
	}
	if t := p.integer("timeout", 0); t > 0 {
		ch.timeout = secondsDuration(t)
	}
	s.afterCh(ch, 0, func() { s.startDial(ch) })
	return noContent()
}

func (s *Sim) continueDialplan(r *http.Request, p *params) *reply {
	ch, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	// The simulated dialplan has nothing after Stasis(): the channel leaves
	// the application and is hung up.
	s.terminate(ch, hangupSpec{cause: CauseNormal, by: HangupBySystem})
	return noContent()
}

// applyVariables sets the `variables` of originate/create, before the
// channel is in any application (no events).
func (s *Sim) applyVariables(ch *channel, vars map[string]string) {
	for _, k := range sortedKeys(vars) {
		s.setVar(ch, k, vars[k], false)
	}
}

// setVar sets a variable or one of the identity functions.
func (s *Sim) setVar(ch *channel, name, value string, report bool) {
	fn, arg, isFn := parseFunction(name)
	if isFn {
		field, opt, _ := strings.Cut(arg, ",")
		switch fn {
		case "CALLERID":
			p := ch.caller
			if setPartyField(&p, field, value) {
				s.setCaller(ch, p, report)
				return
			}
		case "CONNECTEDLINE":
			p := ch.connected
			if setPartyField(&p, field, value) {
				// Option i: set without sending the update to the far end.
				s.setConnected(ch, p, report, !strings.Contains(opt, "i"))
				return
			}
		}
	}
	if ch.vars == nil {
		ch.vars = map[string]string{}
	}
	ch.vars[name] = value
	if report {
		s.varset(ch, name, value)
	}
}

func parseFunction(name string) (fn, arg string, ok bool) {
	i := strings.IndexByte(name, '(')
	if i <= 0 || !strings.HasSuffix(name, ")") {
		return "", "", false
	}
	return strings.ToUpper(name[:i]), strings.ToLower(name[i+1 : len(name)-1]), true
}

func setPartyField(p *party, field, value string) bool {
	switch field {
	case "num", "number":
		p.number = value
	case "name":
		p.name = value
	case "all":
		*p = parseCallerID(value)
	default:
		return false
	}
	return true
}

func (s *Sim) getVariable(r *http.Request, p *params) *reply {
	name := p.str("variable")
	if name == "" {
		return errReply(http.StatusBadRequest, "Variable name is required")
	}
	ch := s.channels[r.PathValue("channelId")]
	if ch == nil {
		return errReply(http.StatusNotFound, "Provided channel was not found")
	}
	if fn, arg, ok := parseFunction(name); ok {
		var pt party
		switch fn {
		case "CALLERID":
			pt = ch.caller
		case "CONNECTEDLINE":
			pt = ch.connected
		default:
			return errReply(http.StatusInternalServerError, "Unable to read provided function")
		}
		field, _, _ := strings.Cut(arg, ",")
		switch field {
		case "num", "number":
			return okReply(wireVariable{Value: pt.number})
		case "name":
			return okReply(wireVariable{Value: pt.name})
		case "all":
			return okReply(wireVariable{Value: fmt.Sprintf("%q <%s>", pt.name, pt.number)})
		}
		return errReply(http.StatusInternalServerError, "Unable to read provided function")
	}
	if name == "STASISSTATUS" {
		return okReply(wireVariable{Value: ch.stasisStatus})
	}
	v, ok := ch.vars[name]
	if !ok {
		return errReply(http.StatusNotFound, "Provided variable was not found")
	}
	return okReply(wireVariable{Value: v})
}

func (s *Sim) setVariable(r *http.Request, p *params) *reply {
	name := p.str("variable")
	if name == "" {
		return errReply(http.StatusBadRequest, "Variable name is required")
	}
	ch, rep := s.findControl(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	s.setVar(ch, name, p.str("value"), true)
	return noContent()
}

// ---- playbacks

func (s *Sim) newPlayback(p *params, r *http.Request) (*playback, *reply) {
	media := p.list("media")
	if len(media) == 0 {
		return nil, errReply(http.StatusBadRequest, "Missing parameter media")
	}
	id := r.PathValue("playbackId")
	if id == "" {
		id = p.str("playbackId")
	}
	if id == "" {
		id = newUUID()
	}
	if s.playbacks[id] != nil {
		return nil, errReply(http.StatusInternalServerError, "Failed to queue media for playback")
	}
	lang := p.str("lang")
	if lang == "" {
		lang = "en"
	}
	return &playback{id: id, media: media, lang: lang, state: "queued"}, nil
}

func (s *Sim) playChannel(r *http.Request, p *params) *reply {
	ch, rep := s.controlInValidState(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	pb, rep := s.newPlayback(p, r)
	if rep != nil {
		return rep
	}
	pb.ch = ch
	if ch.state != stateUp {
		ch.earlyMedia = true // 183 Session Progress, the channel stays unanswered
	}
	body := pb.wire()
	s.queuePlayback(pb)
	return created("/playbacks/"+pb.id, body)
}

func (s *Sim) playBridge(r *http.Request, p *params) *reply {
	b := s.bridges[r.PathValue("bridgeId")]
	if b == nil {
		return errReply(http.StatusNotFound, "Bridge not found")
	}
	pb, rep := s.newPlayback(p, r)
	if rep != nil {
		return rep
	}
	pb.br = b
	body := pb.wire()
	s.queuePlayback(pb)
	return created("/playbacks/"+pb.id, body)
}

func (s *Sim) getPlayback(r *http.Request, p *params) *reply {
	pb := s.playbacks[r.PathValue("playbackId")]
	if pb == nil {
		return errReply(http.StatusNotFound, "Playback not found")
	}
	return okReply(pb.wire())
}

func (s *Sim) stopPlayback(r *http.Request, p *params) *reply {
	pb := s.playbacks[r.PathValue("playbackId")]
	if pb == nil {
		return errReply(http.StatusNotFound, "Playback not found")
	}
	if pb.state == "queued" {
		// playback_cancel: no event now, PlaybackFinished (done) when its
		// turn comes.
		pb.canceled = true
		return noContent()
	}
	s.finishPlayback(pb, "done")
	return noContent()
}

// ---- recordings

func (s *Sim) newRecording(p *params) (*recording, int, *reply) {
	if p.integer("maxDurationSeconds", 0) < 0 {
		return nil, 0, errReply(http.StatusBadRequest, "max_duration_seconds cannot be negative")
	}
	if p.integer("maxSilenceSeconds", 0) < 0 {
		return nil, 0, errReply(http.StatusBadRequest, "max_silence_seconds cannot be negative")
	}
	name, format := p.str("name"), p.str("format")
	switch p.str("terminateOn") {
	case "", "none", "any", "*", "#":
	default:
		return nil, 0, errReply(http.StatusBadRequest, "terminateOn invalid")
	}
	ifExists := p.str("ifExists")
	switch ifExists {
	case "", "fail", "overwrite", "append":
	default:
		return nil, 0, errReply(http.StatusBadRequest, "ifExists invalid")
	}
	if name == "" || strings.Contains(name, "..") {
		return nil, 0, errReply(http.StatusBadRequest, "Recording name invalid")
	}
	if !knownFormat(format) {
		return nil, 0, errReply(http.StatusUnprocessableEntity, "specified format is unknown on this system")
	}
	stored := s.stored[name] != nil
	if s.recordings[name] != nil || (stored && (ifExists == "" || ifExists == "fail")) {
		return nil, 0, errReply(http.StatusConflict, fmt.Sprintf("Recording '%s' already exists and can not be overwritten", name))
	}
	return &recording{name: name, format: format, state: "queued"}, p.integer("maxDurationSeconds", 0), nil
}

func (s *Sim) recordChannel(r *http.Request, p *params) *reply {
	ch, rep := s.findControl(r.PathValue("channelId"))
	if rep != nil {
		return rep
	}
	if ch.bridge != nil {
		return errReply(http.StatusConflict, "Channel is currently bridged")
	}
	if ch.recording != nil {
		return errReply(http.StatusConflict, "Channel is already being recorded")
	}
	rec, maxDur, rep := s.newRecording(p)
	if rep != nil {
		return rep
	}
	rec.ch = ch
	body := rec.wire()
	s.startRecording(rec, secondsDuration(maxDur))
	return created("/recordings/live/"+rec.name, body)
}

func (s *Sim) recordBridge(r *http.Request, p *params) *reply {
	b := s.bridges[r.PathValue("bridgeId")]
	if b == nil {
		return errReply(http.StatusNotFound, "Bridge not found")
	}
	rec, maxDur, rep := s.newRecording(p)
	if rep != nil {
		return rep
	}
	rec.br = b
	body := rec.wire()
	s.startRecording(rec, secondsDuration(maxDur))
	return created("/recordings/live/"+rec.name, body)
}

func (s *Sim) getLiveRecording(r *http.Request, p *params) *reply {
	rec := s.recordings[r.PathValue("recordingName")]
	if rec == nil {
		return errReply(http.StatusNotFound, "Recording not found")
	}
	return okReply(rec.wire())
}

func (s *Sim) stopRecording(r *http.Request, p *params) *reply {
	rec := s.recordings[r.PathValue("recordingName")]
	if rec == nil {
		return errReply(http.StatusNotFound, "Recording not found")
	}
	s.finishRecording(rec, "done")
	return noContent()
}

func (s *Sim) cancelRecording(r *http.Request, p *params) *reply {
	rec := s.recordings[r.PathValue("recordingName")]
	if rec == nil {
		return errReply(http.StatusNotFound, "Recording not found")
	}
	s.finishRecording(rec, "canceled")
	return noContent()
}

// listStored is GET /recordings/stored: the finished recordings, by name.
func (s *Sim) listStored(r *http.Request, p *params) *reply {
	out := make([]wireStoredRecording, 0, len(s.stored))
	for _, k := range sortedKeys(s.stored) {
		out = append(out, wireStoredRecording{Name: k, Format: s.stored[k].format})
	}
	return okReply(out)
}

// getStored is GET /recordings/stored/{name} and, for a name ending in
// /file, GET /recordings/stored/{name}/file: the file, with the Content-Type
// Asterisk sends (media type "audio", subtype the file extension).
func (s *Sim) getStored(r *http.Request, p *params) *reply {
	name := r.PathValue("recordingName")
	if base, ok := strings.CutSuffix(name, "/file"); ok && s.stored[base] != nil {
		st := s.stored[base]
		return &reply{status: http.StatusOK, file: recordingFile(st.format, st.length), contentType: "audio/" + st.format}
	}
	st := s.stored[name]
	if st == nil {
		return errReply(http.StatusNotFound, "Recording not found")
	}
	return okReply(wireStoredRecording{Name: name, Format: st.format})
}

// deleteStored is DELETE /recordings/stored/{name}: the recording and its
// file are gone.
func (s *Sim) deleteStored(r *http.Request, p *params) *reply {
	name := r.PathValue("recordingName")
	if s.stored[name] == nil {
		return errReply(http.StatusNotFound, "Recording not found")
	}
	delete(s.stored, name)
	return noContent()
}

// ---- /bridges

func (s *Sim) listBridges(r *http.Request, p *params) *reply {
	infos := s.bridgeInfos()
	out := make([]wireBridge, len(infos))
	for i, bi := range infos {
		out[i] = s.bridgeSnap(s.bridges[bi.ID])
	}
	return okReply(out)
}

func (s *Sim) getBridge(r *http.Request, p *params) *reply {
	b := s.bridges[r.PathValue("bridgeId")]
	if b == nil {
		return errReply(http.StatusNotFound, "Bridge not found")
	}
	return okReply(s.bridgeSnap(b))
}

func (s *Sim) createBridge(r *http.Request, p *params) *reply {
	id := r.PathValue("bridgeId")
	if id == "" {
		id = p.str("bridgeId")
	}
	if id == "" {
		id = newUUID()
	}
	typ := "mixing"
	for _, t := range p.list("type") {
		switch t {
		case "mixing", "dtmf_events", "proxy_media", "video_sfu", "video_single", "sdp_label":
		case "holding":
			typ = "holding"
		default:
			return errReply(http.StatusBadRequest, "Invalid bridge type")
		}
	}
	if s.bridges[id] != nil {
		return errReply(http.StatusConflict, "Bridge with the same bridgeId already exists")
	}
	b := &bridge{id: id, name: p.str("name"), typ: typ, created: s.now()}
	s.retech(b)
	s.bridges[id] = b
	return okReply(s.bridgeSnap(b))
}

func (s *Sim) destroyBridge(r *http.Request, p *params) *reply {
	b := s.bridges[r.PathValue("bridgeId")]
	if b == nil {
		return errReply(http.StatusNotFound, "Bridge not found")
	}
	s.bridgeDestroy(b)
	return noContent()
}

// bridgeChannels is control_list_create: every channel must exist (400)
// and be in Stasis (422).
func (s *Sim) bridgeChannels(p *params) ([]*channel, *reply) {
	ids := p.list("channel")
	if len(ids) == 0 {
		return nil, errReply(http.StatusBadRequest, "Missing parameter channel")
	}
	out := make([]*channel, 0, len(ids))
	for _, id := range ids {
		ch := s.channels[id]
		if ch == nil {
			return nil, errReply(http.StatusBadRequest, "Channel not found")
		}
		if ch.stasisApp == "" {
			return nil, errReply(http.StatusUnprocessableEntity, "Channel not in Stasis application")
		}
		out = append(out, ch)
	}
	return out, nil
}

func (s *Sim) addChannel(r *http.Request, p *params) *reply {
	b := s.bridges[r.PathValue("bridgeId")]
	if b == nil {
		return errReply(http.StatusNotFound, "Bridge not found")
	}
	chans, rep := s.bridgeChannels(p)
	if rep != nil {
		return rep
	}
	inhibit := p.boolean("inhibitConnectedLineUpdates")
	for _, ch := range chans {
		s.bridgeJoin(b, ch, inhibit)
	}
	return noContent()
}

func (s *Sim) removeChannel(r *http.Request, p *params) *reply {
	b := s.bridges[r.PathValue("bridgeId")]
	if b == nil {
		return errReply(http.StatusNotFound, "Bridge not found")
	}
	chans, rep := s.bridgeChannels(p)
	if rep != nil {
		return rep
	}
	for _, ch := range chans {
		if ch.bridge != b {
			return errReply(http.StatusUnprocessableEntity, "Channel not in this bridge")
		}
	}
	for _, ch := range chans {
		s.bridgeLeave(b, ch)
	}
	return noContent()
}

// ---- /applications

// appNames lists the registered applications: connected ones, and those
// still subscribed to a channel or bridge.
func (s *Sim) appNames() []string {
	set := map[string]struct{}{}
	for name := range s.conns {
		set[name] = struct{}{}
	}
	for _, ch := range s.channels {
		for _, a := range s.chanApps(ch) {
			set[a] = struct{}{}
		}
	}
	for _, b := range s.bridges {
		for _, a := range b.subs {
			set[a] = struct{}{}
		}
	}
	return sortedKeys(set)
}

func (s *Sim) appJSON(name string) wireApplication {
	w := wireApplication{
		Name: name, ChannelIDs: []string{}, BridgeIDs: []string{}, EndpointIDs: []string{},
		DeviceNames: []string{}, EventsAllowed: []any{}, EventsDisallowed: []any{},
	}
	if f := s.filters[name]; f != nil {
		w.EventsAllowed, w.EventsDisallowed = typeObjects(f.allowed), typeObjects(f.disallowed)
	}
	for ep := range s.endpointSubs[name] {
		w.EndpointIDs = append(w.EndpointIDs, ep)
	}
	slices.Sort(w.EndpointIDs)
	for _, ch := range s.liveChannels() {
		if containsString(s.chanApps(ch), name) {
			w.ChannelIDs = append(w.ChannelIDs, ch.id)
		}
	}
	for _, bi := range s.bridgeInfos() {
		if containsString(s.bridges[bi.ID].subs, name) {
			w.BridgeIDs = append(w.BridgeIDs, bi.ID)
		}
	}
	return w
}

func (s *Sim) listApplications(r *http.Request, p *params) *reply {
	names := s.appNames()
	out := make([]wireApplication, len(names))
	for i, n := range names {
		out[i] = s.appJSON(n)
	}
	return okReply(out)
}

func (s *Sim) getApplication(r *http.Request, p *params) *reply {
	name := r.PathValue("applicationName")
	if !containsString(s.appNames(), name) {
		return errReply(http.StatusNotFound, "Application not found")
	}
	return okReply(s.appJSON(name))
}

// eventFilter is an application's event filter (PUT
// /applications/{app}/eventFilter): an event is sent when its type is not
// disallowed and, if any are allowed, allowed.
type eventFilter struct{ allowed, disallowed []string }

func (f *eventFilter) passes(typ string) bool {
	if f == nil {
		return true
	}
	return !containsString(f.disallowed, typ) && (len(f.allowed) == 0 || containsString(f.allowed, typ))
}

func typeObjects(types []string) []any {
	out := []any{}
	for _, t := range types {
		out = append(out, map[string]any{"type": t})
	}
	return out
}

// setEventFilter is PUT /applications/{app}/eventFilter, as Asterisk 22
// does it: the body {"allowed": [{"type": T}...], "disallowed": [...]}; a
// list given replaces that list, an empty object resets both, a list that
// is not an array of objects with a type is a 400.
func (s *Sim) setEventFilter(r *http.Request, p *params) *reply {
	app := r.PathValue("applicationName")
	if !containsString(s.appNames(), app) {
		return errReply(http.StatusNotFound, "Application not found")
	}
	if s.filters[app] == nil {
		s.filters[app] = &eventFilter{}
	}
	f := s.filters[app]
	if len(p.body) == 0 {
		*f = eventFilter{}
		return okReply(s.appJSON(app))
	}
	for key, dst := range map[string]*[]string{"allowed": &f.allowed, "disallowed": &f.disallowed} {
		v, ok := p.body[key]
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			return errReply(http.StatusBadRequest, "Invalid format for filter")
		}
		var types []string
		for _, e := range list {
			obj, ok := e.(map[string]any)
			t, _ := obj["type"].(string)
			if !ok || t == "" {
				return errReply(http.StatusBadRequest, "Invalid format for filter")
			}
			types = append(types, t)
		}
		*dst = types
	}
	return okReply(s.appJSON(app))
}
