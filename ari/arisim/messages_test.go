package arisim_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/privnum/privnum/ari/arisim"
)

// TestTraceSMSRelay replays the sms-relay trace: the endpoint subscription,
// a MESSAGE arriving as TextMessageReceived, and sendMessage in its
// accepted and refused forms.
func TestTraceSMSRelay(t *testing.T) {
	t.Parallel()
	entries := loadTrace(t, "sms-relay")
	sim := newSim(t, arisim.Options{})
	sim.SetMessageContext("trunk-in", "privnum-messages")
	ws := dialWS(t, sim, testApp)
	if err := sim.WaitFor(ctxTimeout(t, 5*time.Second), func(s *arisim.Sim) bool { return s.Connected(testApp) }); err != nil {
		t.Fatal(err)
	}
	r := newReplay(t, sim, ws)
	var want map[string]any
	for i, e := range entries {
		switch e.Kind {
		case "request":
			r.request(e.Data)
		case "response":
			r.response(e.Data)
		case "event":
			if err := json.Unmarshal(e.Data, &want); err != nil {
				t.Fatal(err)
			}
			msg := want["message"].(map[string]any)
			if _, err := sim.InboundMessage(ctxTimeout(t, time.Second), "13800000001", "17000000000", str(msg["body"])); err != nil {
				t.Fatal(err)
			}
			got := ws.waitType("TextMessageReceived", "app", 5*time.Second)
			if got == nil {
				t.Fatalf("entry %d: no TextMessageReceived", i)
			}
			for _, k := range []string{"endpoint"} {
				if !reflect.DeepEqual(got.Data[k], want[k]) {
					t.Errorf("%s = %v, trace %v", k, got.Data[k], want[k])
				}
			}
			gm := got.Data["message"].(map[string]any)
			for _, k := range []string{"from", "to", "body"} {
				if gm[k] != msg[k] {
					t.Errorf("message.%s = %v, trace %v", k, gm[k], msg[k])
				}
			}
		case "closed":
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if sent := sim.SentMessages(); len(sent) != 2 || sent[0].To != "pjsip:carrier/sip:+8613900000002@127.0.0.3:5060" || sent[0].Body != "relayed: hello" {
		t.Errorf("sent %+v", sent)
	}
}

// TestTraceMessageIntoDialplan: without a message_context a MESSAGE enters
// Stasis as a Message/ast_msg_queue pseudo-channel, shaped as the trace.
func TestTraceMessageIntoDialplan(t *testing.T) {
	t.Parallel()
	entries := loadTrace(t, "message-into-dialplan")
	sim := newSim(t, arisim.Options{})
	ws := dialWS(t, sim, testApp)
	if err := sim.WaitFor(ctxTimeout(t, 5*time.Second), func(s *arisim.Sim) bool { return s.Connected(testApp) }); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	for _, e := range entries {
		if e.Kind == "event" {
			if err := json.Unmarshal(e.Data, &want); err != nil {
				t.Fatal(err)
			}
		}
	}
	wch := want["channel"].(map[string]any)
	wdp := wch["dialplan"].(map[string]any)
	id, err := sim.InboundMessage(ctxTimeout(t, time.Second), "13800000001", str(wdp["exten"]), "hello")
	if err != nil || id == "" {
		t.Fatalf("InboundMessage = %q, %v", id, err)
	}
	got := ws.waitType("StasisStart", id, 5*time.Second)
	if got == nil {
		t.Fatal("no StasisStart")
	}
	gch := got.Data["channel"].(map[string]any)
	for _, k := range []string{"name", "state", "caller", "connected"} {
		if !reflect.DeepEqual(gch[k], wch[k]) {
			t.Errorf("channel.%s = %v, trace %v", k, gch[k], wch[k])
		}
	}
	gdp := gch["dialplan"].(map[string]any)
	for _, k := range []string{"context", "exten", "app_name", "app_data"} {
		if gdp[k] != wdp[k] {
			t.Errorf("dialplan.%s = %v, trace %v", k, gdp[k], wdp[k])
		}
	}
	if !reflect.DeepEqual(got.Data["args"], want["args"]) {
		t.Errorf("args = %v, trace %v", got.Data["args"], want["args"])
	}
}
