package arisim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// SIP MESSAGE handling, as the sms-relay and message-into-dialplan traces
// recorded it on Asterisk 22.10.1:
//
//   - a trunk with a message_context, when an application subscribed to its
//     endpoint (POST /applications/{app}/subscription?eventSource=
//     endpoint:PJSIP/<trunk>), hands each MESSAGE to the application as a
//     TextMessageReceived event, and no channel is made;
//   - a trunk without one runs the message through its call context: if that
//     calls Stasis(), the application gets a StasisStart for a pseudo-channel
//     "Message/ast_msg_queue" (state Up, empty caller), which stays until the
//     application continues or hangs it up.
//
// PUT /endpoints/sendMessage takes "to" as pjsip:<endpoint>/<SIP URI> and
// answers 202; any other form, or an unknown endpoint, 404 "Endpoint not
// found".

// SentMessage is a text message an application sent.
type SentMessage struct {
	To, From, Body string
	At             time.Time
}

// evTextMessage is TextMessageReceived.
type evTextMessage struct {
	Type      string       `json:"type"`
	Timestamp string       `json:"timestamp"`
	Endpoint  wireEndpoint `json:"endpoint"`
	Message   wireMessage  `json:"message"`
	evTail
}

type wireEndpoint struct {
	Technology string   `json:"technology"`
	Resource   string   `json:"resource"`
	State      string   `json:"state"`
	ChannelIDs []string `json:"channel_ids"`
}

type wireMessage struct {
	From      string            `json:"from"`
	To        string            `json:"to"`
	Body      string            `json:"body"`
	Variables map[string]string `json:"variables"`
}

// SetMessageContext gives trunk a message_context (as the drop-ins do), or
// takes it away with "".
func (s *Sim) SetMessageContext(trunk, context string) {
	s.mu.Lock()
	defer s.unlockNotify()
	if context == "" {
		delete(s.msgContexts, trunk)
		return
	}
	s.msgContexts[trunk] = context
}

// InboundMessage delivers a SIP MESSAGE with body from the number from to
// the number to on the inbound trunk. It returns the id of the
// Message/ast_msg_queue pseudo-channel when the message entered Stasis as
// one, "" otherwise (an event, or the dialplan).
func (s *Sim) InboundMessage(ctx context.Context, from, to, body string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("arisim: inbound message: %w", err)
	}
	s.mu.Lock()
	defer s.unlockNotify()
	if s.closed {
		return "", ErrClosed
	}
	trunk := s.opts.InboundTrunk
	s.stats.InboundMessages++
	if _, ok := s.msgContexts[trunk]; ok {
		apps := s.endpointApps("PJSIP/" + trunk)
		if len(apps) > 0 {
			s.emit(apps, &evTextMessage{
				Type: "TextMessageReceived", Timestamp: s.ts(),
				Endpoint: wireEndpoint{Technology: "PJSIP", Resource: trunk, State: "offline", ChannelIDs: []string{}},
				Message: wireMessage{
					From: "<sip:" + from + "@127.0.0.2>", To: "pjsip:" + to + "@127.0.0.1", Body: body,
					Variables: map[string]string{
						"PJSIP_RECVADDR": "127.0.0.2:5060", "PJSIP_TRANSPORT": "udp",
						"From": "<sip:" + from + "@127.0.0.2>;tag=sim", "To": "<sip:" + to + "@127.0.0.1>",
						"CSeq": "1 MESSAGE", "Content-Type": "text/plain", "Content-Length": fmt.Sprint(len(body)),
					},
				},
			})
		}
		return "", nil
	}
	seq := s.nextSeq()
	ch := &channel{
		seq:      seq,
		id:       s.channelID(seq),
		name:     "Message/ast_msg_queue",
		dir:      dirInbound,
		state:    stateUp,
		answered: true,
		context:  s.trunks[trunk],
		exten:    to,
		priority: 1,
		created:  s.now(),
	}
	s.channels[ch.id] = ch
	if !s.enterStasis(ch, s.opts.App, "") {
		s.terminate(ch, hangupSpec{cause: CauseNormal, by: HangupBySystem})
		return ch.id, fmt.Errorf("arisim: inbound message to app %q: %w", s.opts.App, ErrNoApplication)
	}
	return ch.id, nil
}

// SentMessages returns the messages applications sent, oldest first.
func (s *Sim) SentMessages() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// endpointApps lists the applications subscribed to an endpoint.
func (s *Sim) endpointApps(endpoint string) []string {
	var apps []string
	for app, eps := range s.endpointSubs {
		if eps[endpoint] && s.conns[app] != nil {
			apps = append(apps, app)
		}
	}
	slices.Sort(apps)
	return apps
}

func (s *Sim) subscribe(r *http.Request, p *params) *reply {
	app := r.PathValue("applicationName")
	if !containsString(s.appNames(), app) {
		return errReply(http.StatusNotFound, "Application not found")
	}
	src := p.str("eventSource")
	if src == "" {
		return errReply(http.StatusBadRequest, "Missing parameter eventSource")
	}
	kind, name, _ := strings.Cut(src, ":")
	if kind != "endpoint" {
		return errReply(http.StatusBadRequest, "Invalid event source URI scheme")
	}
	tech, res, _ := strings.Cut(name, "/")
	if _, ok := s.trunks[res]; !ok || tech != "PJSIP" {
		return errReply(http.StatusUnprocessableEntity, "Event source does not exist")
	}
	if s.endpointSubs[app] == nil {
		s.endpointSubs[app] = map[string]bool{}
	}
	s.endpointSubs[app][name] = true
	return okReply(s.appJSON(app))
}

func (s *Sim) sendMessage(r *http.Request, p *params) *reply {
	to := p.str("to")
	if to == "" {
		return errReply(http.StatusBadRequest, "To must be specified")
	}
	tech, rest, _ := strings.Cut(to, ":")
	endpoint, uri, ok := strings.Cut(rest, "/")
	if _, known := s.trunks[endpoint]; !ok || !known || strings.ToLower(tech) != "pjsip" || !strings.HasPrefix(uri, "sip:") {
		return errReply(http.StatusNotFound, "Endpoint not found")
	}
	s.sent = append(s.sent, SentMessage{To: to, From: p.str("from"), Body: p.str("body"), At: s.now()})
	return &reply{status: http.StatusAccepted}
}

// sendMessageToEndpoint is PUT /endpoints/{tech}/{resource}/sendMessage:
// the message goes to the endpoint's contact (no user part).
func (s *Sim) sendMessageToEndpoint(r *http.Request, p *params) *reply {
	res := r.PathValue("resource")
	if _, known := s.trunks[res]; !known || r.PathValue("tech") != "PJSIP" {
		return errReply(http.StatusNotFound, "Endpoint not found")
	}
	s.sent = append(s.sent, SentMessage{To: "pjsip:" + res, From: p.str("from"), Body: p.str("body"), At: s.now()})
	return &reply{status: http.StatusAccepted}
}
