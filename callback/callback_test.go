package callback_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/reject"
	"github.com/privnum/privnum/webhook"
)

const (
	first  = "+8613800000001"
	second = "+8613900000002"
	secret = "gateway-secret"
)

// gateway is a fake SMS gateway that checks signatures.
type gateway struct {
	mu   sync.Mutex
	msgs []callback.Message
	bad  int
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Minute); err != nil {
		g.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var m callback.Message
	json.Unmarshal(body, &m)
	g.msgs = append(g.msgs, m)
}

func (g *gateway) messages() []callback.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]callback.Message(nil), g.msgs...)
}

type env struct {
	sim    *arisim.Sim
	svc    *callback.Service
	orders *order.Service
	gw     *gateway
}

func newEnv(t *testing.T) env { t.Helper(); return newEnvOwners(t, nil) }

// newEnvOwners is newEnv with QR codes' owners.
func newEnvOwners(t *testing.T, owners callback.Owners) env {
	t.Helper()
	sim := arisim.New(arisim.Options{TimeScale: 0.05})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	rdb := redistest.Client(t)
	cn := e164.Parser{Region: "CN"}
	p := pool.New(rdb, cn)
	p.Add(context.Background(), []pool.Entry{{Number: "+8617000000000"}})
	bs := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour})
	orders := order.New(rdb, bs)
	client, _ := ari.New(ari.Config{URL: sim.URL(), Application: "privnum"})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := call.New(client, bs, cdr.New(rdb, 0), call.Config{Application: "privnum", RingTimeout: 2 * time.Second, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { client.Run(ctx, app); done <- struct{}{} }()
	gw := &gateway{}
	srv := httptest.NewServer(gw)
	svc := callback.New(rdb, callback.Deps{Bindings: bs, Orders: orders, Owners: owners, Dialer: app, Sender: callback.HTTPSender{URL: srv.URL, Secret: secret}},
		callback.Config{Logger: quiet, RingTimeout: 100 * time.Millisecond})
	go func() { svc.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; app.Close(); srv.Close() })
	waitFor(t, func() bool { return sim.Connected("privnum") })
	return env{sim: sim, svc: svc, orders: orders, gw: gw}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e env) waitEnd(t *testing.T, id string) callback.Callback {
	var cb callback.Callback
	waitFor(t, func() bool {
		cb, _ = e.svc.Get(context.Background(), id)
		return cb.State == call.CallbackCompleted || cb.State == call.CallbackFailed && (cb.MessageSent || len(e.gw.messages()) > 0 || e.gw.bad > 0)
	})
	return cb
}

func TestCallbackFlows(t *testing.T) {
	tests := []struct {
		name          string
		first, second arisim.Behavior
		state         call.CallbackState
		reason        string
	}{
		{"bridged", arisim.Answer(10 * time.Millisecond), arisim.Behavior{Outcome: arisim.OutcomeAnswer, After: 10 * time.Millisecond, HangupAfter: 400 * time.Millisecond}, call.CallbackCompleted, ""},
		{"first busy", arisim.Busy(), arisim.Answer(0), call.CallbackFailed, "first_busy"},
		{"first no answer", arisim.NoAnswer(), arisim.Answer(0), call.CallbackFailed, "first_no_answer"},
		{"first fails", arisim.Fail(34), arisim.Answer(0), call.CallbackFailed, "first_failed"},
		{"second busy", arisim.Answer(10 * time.Millisecond), arisim.Busy(), call.CallbackFailed, "second_busy"},
		{"second no answer", arisim.Answer(10 * time.Millisecond), arisim.NoAnswer(), call.CallbackFailed, "second_no_answer"},
		{"second fails", arisim.Answer(10 * time.Millisecond), arisim.AllocationFailure(), call.CallbackFailed, "second_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.sim.SetEndpoint(first, tt.first)
			e.sim.SetEndpoint(second, tt.second)
			ctx := context.Background()
			if err := e.svc.MapCode(ctx, "SHOP-42", "13800000001", "13900000002"); err != nil {
				t.Fatal(err)
			}
			cb, err := e.svc.Start(ctx, callback.Request{Code: "SHOP-42"})
			if err != nil {
				t.Fatal(err)
			}
			cb = e.waitEnd(t, cb.ID)
			if cb.State != tt.state || cb.Reason != tt.reason {
				t.Fatalf("callback = %+v, want %s %s", cb, tt.state, tt.reason)
			}
			if cb.First != e164.Mask(first) || cb.Second != e164.Mask(second) || cb.X != "+8617000000000" {
				t.Errorf("callback = %+v", cb)
			}
			msgs := e.gw.messages()
			if tt.state == call.CallbackCompleted {
				if len(msgs) != 0 {
					t.Errorf("message sent for a completed callback: %+v", msgs)
				}
				return
			}
			waitFor(t, func() bool { cb, _ = e.svc.Get(ctx, cb.ID); return cb.MessageSent })
			msgs = e.gw.messages()
			if len(msgs) != 1 || msgs[0].To != second || msgs[0].Reason != tt.reason || msgs[0].Text == "" || e.gw.bad != 0 {
				t.Fatalf("messages = %+v (bad signatures %d)", msgs, e.gw.bad)
			}
		})
	}
}

func TestCallbackByOrderAndErrors(t *testing.T) {
	e := newEnv(t)
	e.sim.SetDefaultBehavior(arisim.Behavior{Outcome: arisim.OutcomeAnswer, After: 10 * time.Millisecond, HangupAfter: 400 * time.Millisecond})
	ctx := context.Background()
	o, err := e.orders.Open(ctx, order.Request{ID: "SO-7", Buyer: first, Courier: second, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := e.svc.Start(ctx, callback.Request{Code: "SO-7"})
	if err != nil {
		t.Fatal(err)
	}
	// The courier is called first, on the order's own virtual number.
	if cb.First != e164.Mask(second) || cb.X != o.Binding.X || cb.BindingID != o.Binding.ID {
		t.Fatalf("order callback = %+v", cb)
	}
	if cb = e.waitEnd(t, cb.ID); cb.State != call.CallbackCompleted {
		t.Fatalf("order callback ended %+v", cb)
	}
	for _, tt := range []struct {
		req   callback.Request
		want  error
		field string // of the *reject.FieldError, if any
	}{
		{callback.Request{Code: "nope"}, callback.ErrUnknownCode, ""},
		{callback.Request{Code: ""}, callback.ErrInvalid, "code"},
		{callback.Request{Code: "a b"}, callback.ErrInvalid, "code"},
	} {
		_, err := e.svc.Start(ctx, tt.req)
		var fe *reject.FieldError
		if !errors.Is(err, tt.want) || errors.As(err, &fe) != (tt.field != "") || fe != nil && fe.Field != tt.field {
			t.Errorf("Start(%q) = %v, want %v naming %q", tt.req.Code, err, tt.want, tt.field)
		}
	}
	err = e.svc.MapCode(ctx, "X1", "bad", second)
	if fe := (*reject.FieldError)(nil); !errors.Is(err, e164.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "first" {
		t.Errorf("MapCode bad number: %v", err)
	}
	if _, err := e.svc.Get(ctx, "missing"); !errors.Is(err, callback.ErrNotFound) {
		t.Errorf("Get missing: %v", err)
	}
}

// TestPartyOnly: when the requester must be a party (a key that requires a
// verified device), a mapped code or an order is refused to anyone else,
// with the answer an unknown code gets and nothing stored, and a party
// asking is called first.
func TestPartyOnly(t *testing.T) {
	const stranger = "+8613700000009"
	tests := []struct {
		name, code, caller string
		partyOnly          bool
		wantFirst          string
		wantErr            error
	}{
		{"code, first party asks", "SHOP-1", first, true, first, nil},
		{"code, second party asks: called first", "SHOP-1", second, true, second, nil},
		{"code, stranger", "SHOP-1", stranger, true, "", callback.ErrUnknownCode},
		{"code, no policy: anyone", "SHOP-1", stranger, false, first, nil},
		{"order, buyer asks: called first", "SO-9", first, true, first, nil},
		{"order, courier asks", "SO-9", second, true, second, nil},
		{"order, stranger", "SO-9", stranger, true, "", callback.ErrUnknownCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.sim.SetDefaultBehavior(arisim.NoAnswer())
			ctx := context.Background()
			if err := e.svc.MapCode(ctx, "SHOP-1", first, second); err != nil {
				t.Fatal(err)
			}
			if tt.code == "SO-9" {
				if _, err := e.orders.Open(ctx, order.Request{ID: "SO-9", Buyer: first, Courier: second, TTL: time.Hour}); err != nil {
					t.Fatal(err)
				}
			}
			cb, err := e.svc.Start(ctx, callback.Request{Code: tt.code, Caller: tt.caller, PartyOnly: tt.partyOnly})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Start = %+v, %v; want %v", cb, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cb.First != e164.Mask(tt.wantFirst) {
				t.Fatalf("first party %s, want %s", cb.First, e164.Mask(tt.wantFirst))
			}
		})
	}
}
