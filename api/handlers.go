package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/recording"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/webhook"
)

// Durations in request and response bodies are whole seconds, in fields
// named *_seconds, like max_duration_seconds in a binding.
const (
	maxSeconds         = 100 * 365 * 24 * 3600 // keeps time.Duration from overflowing
	defaultBindingTTL  = 2 * time.Hour         // as `privnum bind create`
	defaultOrderTTL    = 72 * time.Hour        // as `privnum order open`
	maxNumbersPerAdd   = 1000
	defaultCallsLimit  = 50
	maxCallsLimit      = 1000
	maxAreaLen         = 64
	maxOpaqueFieldSize = 256
)

// number normalises a phone number from request field field, or returns an
// invalid-number problem naming the field and the input.
func (s *Server) number(field, v string) (string, error) {
	n, err := s.parser.Parse(v)
	if err != nil {
		p := fieldProblem(kInvalidNumber, field, err.Error())
		p.Input = v
		return "", p
	}
	return n, nil
}

// ttl converts an optional *_seconds field to a duration.
func ttl(field string, v *int64, def time.Duration) (time.Duration, error) {
	if v == nil {
		return def, nil
	}
	return seconds(field, *v, 1)
}

func seconds(field string, v, min int64) (time.Duration, error) {
	if v < min || v > maxSeconds {
		return 0, fieldProblem(kInvalidField, field, fmt.Sprintf("%s %d: want a whole number of seconds from %d to %d", field, v, min, maxSeconds))
	}
	return time.Duration(v) * time.Second, nil
}

// callOptions are a binding's call options as sent in JSON.
type callOptions struct {
	Record             bool    `json:"record"`
	MaxDurationSeconds int64   `json:"max_duration_seconds"`
	RingTimeoutSeconds int64   `json:"ring_timeout_seconds"`
	Directions         *string `json:"directions"`
}

func (o callOptions) options() (binding.Options, error) {
	maxDur, err := seconds("max_duration_seconds", o.MaxDurationSeconds, 0)
	if err != nil {
		return binding.Options{}, err
	}
	ring, err := seconds("ring_timeout_seconds", o.RingTimeoutSeconds, 0)
	if err != nil {
		return binding.Options{}, err
	}
	dirs := binding.Both
	if o.Directions != nil {
		// Only the canonical names: ParseDirections also takes CLI
		// spellings such as "a->b", which the API does not document.
		switch d := binding.Directions(*o.Directions); d {
		case binding.Both, binding.AToB, binding.BToA:
			dirs = d
		default:
			return binding.Options{}, fieldProblem(kInvalidField, "directions", fmt.Sprintf("directions %q: want both, a_to_b or b_to_a", *o.Directions))
		}
	}
	return binding.Options{Record: o.Record, MaxDuration: maxDur, RingTimeout: ring, Directions: dirs}, nil
}

func checkArea(area string) error {
	if len(area) > maxAreaLen {
		return fieldProblem(kInvalidField, "area", fmt.Sprintf("area: longer than %d characters", maxAreaLen))
	}
	return nil
}

// withField names the request field a service's ErrInvalid is about, when
// the handler has ruled out every other cause.
func withField(err error, sentinel error, field string) error {
	if !errors.Is(err, sentinel) {
		return err
	}
	p, _ := problemFor(err)
	p.Field = field
	return p
}

// settled treats a binding that exists as a success even if the service
// also reports an error: the binding services create, extend or release
// first and then update the parties' allocation index, a hint whose loss
// costs a retry of allocation, never a wrong call. Reporting such a change
// as failed would invite the client to do it twice.
func (s *Server) settled(ctx context.Context) func(binding.Binding, error) (binding.Binding, error) {
	return func(b binding.Binding, err error) (binding.Binding, error) {
		if err != nil && b.ID != "" {
			s.log.Warn("binding changed but its party index was not updated", "request_id", infoOf(ctx).id, "binding", b.ID, "err", err)
			return b, nil
		}
		return b, err
	}
}

// publish queues a binding event for the webhooks. A failure is logged:
// the change it reports has happened.
func (s *Server) publish(ctx context.Context, typ string, b binding.Binding) {
	if s.cfg.Events == nil {
		return
	}
	ev, err := webhook.BindingEvent(typ, b)
	if err == nil {
		err = s.cfg.Events.Publish(ctx, ev)
	}
	if err != nil {
		s.log.Warn("webhook event not queued", "request_id", infoOf(ctx).id, "event", typ, "binding", b.ID, "err", err)
	}
}

// --- numbers ---

// numberEntry is one number to add to the pool.
type numberEntry struct {
	Number string `json:"number"`
	Area   string `json:"area"`
	// Mode reserves the number for a binding mode ("any" clears it).
	Mode string `json:"mode"`
}

type addNumbersRequest struct {
	Numbers []numberEntry `json:"numbers"`
}

type addNumbersResponse struct {
	Added    int `json:"added"`
	Existing int `json:"existing"`
}

type numberList struct {
	Numbers []pool.Number `json:"numbers"`
}

func (s *Server) listNumbers(ctx context.Context, _ *request) (reply, error) {
	nums, err := s.cfg.Pool.List(ctx)
	if err != nil {
		return reply{}, err
	}
	if nums == nil {
		nums = []pool.Number{}
	}
	return reply{status: http.StatusOK, body: numberList{nums}}, nil
}

func (s *Server) addNumbers(ctx context.Context, rq *request) (reply, error) {
	var in addNumbersRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if len(in.Numbers) == 0 || len(in.Numbers) > maxNumbersPerAdd {
		return reply{}, fieldProblem(kInvalidField, "numbers", fmt.Sprintf("give 1 to %d numbers, got %d", maxNumbersPerAdd, len(in.Numbers)))
	}
	entries := make([]pool.Entry, len(in.Numbers))
	distinct := map[string]bool{}
	for i, e := range in.Numbers {
		n, err := s.number(fmt.Sprintf("numbers[%d].number", i), e.Number)
		if err != nil {
			return reply{}, err
		}
		if err := pool.CheckMode(e.Mode); err != nil {
			p := fieldProblem(kInvalidField, fmt.Sprintf("numbers[%d].mode", i), err.Error())
			return reply{}, p
		}
		entries[i] = pool.Entry{Number: n, Area: e.Area, Mode: e.Mode}
		distinct[n] = true
	}
	for i, e := range entries {
		if err := pool.CheckArea(e.Area); err != nil {
			p, _ := problemFor(err)
			p.Field, p.Input = fmt.Sprintf("numbers[%d].area", i), e.Area
			return reply{}, p
		}
	}
	added, err := s.cfg.Pool.Add(ctx, entries)
	if errors.Is(err, pool.ErrInvalidArea) {
		p, _ := problemFor(err)
		p.Field = "numbers[].area"
		return reply{}, p
	}
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: addNumbersResponse{Added: added, Existing: len(distinct) - added}}, nil
}

// poolNumber is the {number} path parameter, normalised.
func (s *Server) poolNumber(rq *request) (string, error) {
	return s.number("number", rq.PathValue("number"))
}

func (s *Server) getNumber(ctx context.Context, rq *request) (reply, error) {
	n, err := s.poolNumber(rq)
	if err != nil {
		return reply{}, err
	}
	num, err := s.cfg.Pool.Get(ctx, n)
	if err != nil {
		return reply{}, numberErr(err, n)
	}
	return reply{status: http.StatusOK, body: num}, nil
}

func numberErr(err error, n string) error {
	if !errors.Is(err, pool.ErrNotFound) {
		return err
	}
	p, _ := problemFor(err)
	p.Number = n
	return p
}

func (s *Server) retireNumber(ctx context.Context, rq *request) (reply, error) {
	return s.setNumberState(ctx, rq, s.cfg.Pool.Retire)
}

func (s *Server) restoreNumber(ctx context.Context, rq *request) (reply, error) {
	return s.setNumberState(ctx, rq, s.cfg.Pool.Restore)
}

func (s *Server) setNumberState(ctx context.Context, rq *request, set func(context.Context, string) error) (reply, error) {
	if err := decode(rq.body, &struct{}{}); err != nil {
		return reply{}, err
	}
	n, err := s.poolNumber(rq)
	if err != nil {
		return reply{}, err
	}
	if err := set(ctx, n); err != nil {
		return reply{}, numberErr(err, n)
	}
	num, err := s.cfg.Pool.Get(ctx, n)
	if err != nil {
		return reply{}, numberErr(err, n)
	}
	return reply{status: http.StatusOK, body: num}, nil
}

// --- bindings ---

type createBindingRequest struct {
	Mode       string `json:"mode"`
	A          string `json:"a"`
	B          string `json:"b"`
	X          string `json:"x"`
	Area       string `json:"area"`
	TTLSeconds *int64 `json:"ttl_seconds"`
	Group      string `json:"group"`
	ShowCaller bool   `json:"show_caller"`
	Extension  string `json:"extension"`
	callOptions
}

func (s *Server) createBinding(ctx context.Context, rq *request) (reply, error) {
	var in createBindingRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	req := binding.Request{Area: in.Area, Group: in.Group, ShowCaller: in.ShowCaller, Extension: in.Extension}
	var err error
	if req.Mode, err = binding.ParseMode(in.Mode); err != nil {
		return reply{}, err
	}
	if req.A, err = s.number("a", in.A); err != nil {
		return reply{}, err
	}
	if in.B != "" || !req.Mode.Exclusive() {
		if req.B, err = s.number("b", in.B); err != nil {
			return reply{}, err
		}
	}
	if req.A == req.B {
		return reply{}, fieldProblem(kInvalidField, "b", "parties a and b are the same number")
	}
	if in.X != "" {
		if req.X, err = s.number("x", in.X); err != nil {
			return reply{}, err
		}
		if req.X == req.A || req.X == req.B {
			return reply{}, fieldProblem(kInvalidField, "x", "the virtual number cannot be one of the parties")
		}
	}
	if err := checkArea(in.Area); err != nil {
		return reply{}, err
	}
	if req.TTL, err = ttl("ttl_seconds", in.TTLSeconds, defaultBindingTTL); err != nil {
		return reply{}, err
	}
	if req.Options, err = in.options(); err != nil {
		return reply{}, err
	}
	b, err := s.settled(ctx)(s.cfg.Bindings.Create(ctx, req))
	if err != nil {
		return reply{}, bindingErr(err, req.X)
	}
	s.publish(ctx, webhook.BindingCreated, b)
	return reply{status: http.StatusCreated, body: b, location: "/v1/bindings/" + url.PathEscape(b.ID)}, nil
}

// bindingErr adds to a create error what the client needs: the field of an
// out-of-range TTL (every other invalid field was checked before), the
// virtual number asked for, and why a pool is exhausted.
func bindingErr(err error, x string) error {
	var fe *reject.FieldError
	switch {
	case errors.As(err, &fe):
		return err // names its field (mode, group, show_caller, directions, extension)
	case errors.Is(err, binding.ErrInvalid):
		return withField(err, binding.ErrInvalid, "ttl_seconds")
	case errors.Is(err, binding.ErrNumberUnavailable), errors.Is(err, binding.ErrPartyBusy):
		p, _ := problemFor(err)
		if x != "" {
			p.Field, p.Number = "x", x
		}
		return p
	case errors.Is(err, binding.ErrPoolExhausted):
		return fmt.Errorf("%w: every active virtual number is held by one of the parties or quarantined for them; add numbers to the pool or release bindings", err)
	}
	return err
}

func (s *Server) getBinding(ctx context.Context, rq *request) (reply, error) {
	b, err := s.cfg.Bindings.Get(ctx, rq.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: b}, nil
}

type extendRequest struct {
	TTLSeconds *int64 `json:"ttl_seconds"`
}

func (s *Server) extendBinding(ctx context.Context, rq *request) (reply, error) {
	var in extendRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if in.TTLSeconds == nil {
		return reply{}, fieldProblem(kInvalidField, "ttl_seconds", "ttl_seconds is required: how many seconds to add to the binding's life")
	}
	d, err := seconds("ttl_seconds", *in.TTLSeconds, 1)
	if err != nil {
		return reply{}, err
	}
	b, err := s.settled(ctx)(s.cfg.Bindings.Extend(ctx, rq.PathValue("id"), d))
	if err != nil {
		return reply{}, withField(err, binding.ErrInvalid, "ttl_seconds")
	}
	s.publish(ctx, webhook.BindingExtended, b)
	return reply{status: http.StatusOK, body: b}, nil
}

func (s *Server) releaseBinding(ctx context.Context, rq *request) (reply, error) {
	if err := decode(rq.body, &struct{}{}); err != nil {
		return reply{}, err
	}
	id := rq.PathValue("id")
	before, err := s.cfg.Bindings.Get(ctx, id)
	if err != nil {
		return reply{}, err
	}
	b, err := s.settled(ctx)(s.cfg.Bindings.Release(ctx, id))
	if err != nil {
		return reply{}, err
	}
	if before.State == binding.Active && b.State == binding.Released {
		s.publish(ctx, webhook.BindingReleased, b)
	}
	return reply{status: http.StatusOK, body: b}, nil
}

type resolveRequest struct {
	X      string `json:"x"`
	Caller string `json:"caller"`
	// Extension, when set, asks where the extension's call goes once the
	// caller keyed it (the second step of an axe call).
	Extension string `json:"extension"`
}

func (s *Server) resolve(ctx context.Context, rq *request) (reply, error) {
	var in resolveRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	x, err := s.number("x", in.X)
	if err != nil {
		return reply{}, err
	}
	caller, err := s.number("caller", in.Caller)
	if err != nil {
		return reply{}, err
	}
	peek := s.cfg.Bindings.Peek
	if in.Extension != "" {
		peek = func(ctx context.Context, x, caller string) (binding.Route, error) {
			return s.cfg.Bindings.PeekExtension(ctx, x, caller, in.Extension)
		}
	}
	r, err := peek(ctx, x, caller)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: r}, nil
}

// --- orders ---

type openOrderRequest struct {
	ID         string `json:"id"`
	Buyer      string `json:"buyer"`
	Courier    string `json:"courier"`
	Area       string `json:"area"`
	TTLSeconds *int64 `json:"ttl_seconds"`
	callOptions
}

func (s *Server) openOrder(ctx context.Context, rq *request) (reply, error) {
	var in openOrderRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	req := order.Request{ID: in.ID, Area: in.Area}
	var err error
	if req.Buyer, err = s.number("buyer", in.Buyer); err != nil {
		return reply{}, err
	}
	if req.Courier, err = s.number("courier", in.Courier); err != nil {
		return reply{}, err
	}
	if req.Buyer == req.Courier {
		return reply{}, fieldProblem(kInvalidField, "courier", "buyer and courier are the same number")
	}
	if err := checkArea(in.Area); err != nil {
		return reply{}, err
	}
	if req.TTL, err = ttl("ttl_seconds", in.TTLSeconds, defaultOrderTTL); err != nil {
		return reply{}, err
	}
	if req.Options, err = in.options(); err != nil {
		return reply{}, err
	}
	start := time.Now().Truncate(time.Millisecond)
	o, err := s.cfg.Orders.Open(ctx, req)
	if err != nil {
		return reply{}, bindingErr(err, "")
	}
	// Open returns an order that is already open with the same parties as
	// it is: 200 then, 201 (and an event) when this request bound it.
	status := http.StatusOK
	if o.Binding != nil && !o.Binding.CreatedAt.Before(start) {
		status = http.StatusCreated
		s.publish(ctx, webhook.BindingCreated, *o.Binding)
	}
	return reply{status: status, body: o, location: "/v1/orders/" + url.PathEscape(o.ID)}, nil
}

func (s *Server) getOrder(ctx context.Context, rq *request) (reply, error) {
	o, err := s.cfg.Orders.Get(ctx, rq.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: o}, nil
}

func (s *Server) completeOrder(ctx context.Context, rq *request) (reply, error) {
	return s.closeOrder(ctx, rq, s.cfg.Orders.Complete)
}

func (s *Server) cancelOrder(ctx context.Context, rq *request) (reply, error) {
	return s.closeOrder(ctx, rq, s.cfg.Orders.Cancel)
}

func (s *Server) closeOrder(ctx context.Context, rq *request, close func(context.Context, string) (order.Order, error)) (reply, error) {
	if err := decode(rq.body, &struct{}{}); err != nil {
		return reply{}, err
	}
	id := rq.PathValue("id")
	before, err := s.cfg.Orders.Get(ctx, id)
	if err != nil {
		return reply{}, err
	}
	o, err := close(ctx, id)
	if err != nil {
		return reply{}, err
	}
	if before.Binding != nil && before.Binding.State == binding.Active && o.Binding != nil && o.Binding.State == binding.Released {
		s.publish(ctx, webhook.BindingReleased, *o.Binding)
	}
	return reply{status: http.StatusOK, body: o}, nil
}

// --- calls ---

type callList struct {
	Calls []cdr.Record `json:"calls"`
}

func (s *Server) listCalls(ctx context.Context, rq *request) (reply, error) {
	limit := int64(defaultCallsLimit)
	if v := rq.URL.Query().Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return reply{}, fieldProblem(kMalformed, "limit", fmt.Sprintf("limit %q: want an integer", v))
		}
		if n < 1 || n > maxCallsLimit {
			return reply{}, fieldProblem(kInvalidField, "limit", fmt.Sprintf("limit %d: want 1 to %d", n, maxCallsLimit))
		}
		limit = n
	}
	recs, err := s.cfg.Calls.List(ctx, limit)
	if err != nil {
		return reply{}, err
	}
	if recs == nil {
		recs = []cdr.Record{}
	}
	return reply{status: http.StatusOK, body: callList{recs}}, nil
}

// RecordingService opens call recordings; recording.Service implements
// it.
type RecordingService interface {
	Open(ctx context.Context, callID string) (recording.File, error)
}

// getRecording streams a call's recording from Asterisk.
func (s *Server) getRecording(ctx context.Context, rq *request) (reply, error) {
	f, err := s.cfg.Recordings.Open(ctx, rq.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, file: &fileBody{contentType: f.ContentType, body: f.Body}}, nil
}

// --- webhooks ---

type addWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

// webhookCreated is a new webhook with its secret, shown only once.
type webhookCreated struct {
	webhook.Hook
	Secret string `json:"secret"`
}

type webhookList struct {
	Webhooks []webhook.Hook `json:"webhooks"`
}

func (s *Server) listWebhooks(ctx context.Context, _ *request) (reply, error) {
	hooks, err := s.cfg.Webhooks.List(ctx)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: webhookList{hooks}}, nil
}

func (s *Server) addWebhook(ctx context.Context, rq *request) (reply, error) {
	var in addWebhookRequest
	if err := decode(rq.body, &in); err != nil {
		return reply{}, err
	}
	if err := webhook.CheckURL(in.URL); err != nil {
		p := fieldProblem(kInvalidField, "url", err.Error())
		return reply{}, p
	}
	if _, err := webhook.CheckEvents(in.Events); err != nil {
		return reply{}, fieldProblem(kInvalidField, "events", err.Error())
	}
	h, secret, err := s.cfg.Webhooks.Add(ctx, in.URL, in.Events)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: webhookCreated{h, secret}, location: "/v1/webhooks/" + url.PathEscape(h.ID)}, nil
}

func (s *Server) getWebhook(ctx context.Context, rq *request) (reply, error) {
	h, err := s.cfg.Webhooks.Get(ctx, rq.PathValue("id"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: h}, nil
}

func (s *Server) removeWebhook(ctx context.Context, rq *request) (reply, error) {
	if err := s.cfg.Webhooks.Remove(ctx, rq.PathValue("id")); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}
