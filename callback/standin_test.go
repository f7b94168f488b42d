package callback_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/callback"
)

// owners is one QR code's owner.
type owners map[string]string

func (o owners) Owner(_ context.Context, token string) (string, error) {
	if n, ok := o[token]; ok {
		return n, nil
	}
	return "", errors.New("no such code")
}

// TestOwnCodeStandIn: a QR code's owner asking for a callback from their
// own code gets a callback like anyone's (requested, on a virtual number,
// with a binding id), but nothing connects the owner to themselves: the
// simulator sees no call, no binding is made, and the stand-in fails as
// unanswered after the ring timeout without a message. A stranger's
// callback from the same code is placed as ever.
func TestOwnCodeStandIn(t *testing.T) {
	ctx := context.Background()
	const token = "qrtoken"
	e := newEnvOwners(t, owners{token: second})

	for _, tc := range []struct {
		name, caller string
		standIn      bool
	}{
		{"owner", "13900000002", true},
		{"owner, E.164", second, true},
		{"stranger", first, false},
	} {
		legs := e.sim.Stats().OutboundLegs
		cb, err := e.svc.Start(ctx, callback.Request{Code: token, Caller: tc.caller})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(cb.ID) != 32 || cb.X != "+8617000000000" || !strings.HasPrefix(cb.BindingID, "8617000000000.") || cb.Second != "+86139****0002" {
			t.Fatalf("%s: callback %+v", tc.name, cb)
		}
		var end callback.Callback
		if tc.standIn {
			waitFor(t, func() bool {
				end, _ = e.svc.Get(ctx, cb.ID)
				return end.State == call.CallbackFailed
			})
			if placed := e.sim.Stats().OutboundLegs - legs; placed != 0 || end.Reason != "first_no_answer" || end.MessageSent {
				t.Errorf("%s: %d calls placed, ended %+v; want none, failed first_no_answer, no message", tc.name, placed, end)
			}
			continue
		}
		waitFor(t, func() bool { return e.sim.Stats().OutboundLegs > legs })
		if ch := e.sim.Channels(); len(ch) == 0 || ch[0].FarNumber != first {
			t.Errorf("%s: the first party called is not the caller: %+v", tc.name, ch)
		}
	}
	if msgs := e.gw.messages(); len(msgs) != 0 {
		t.Errorf("messages sent: %+v", msgs)
	}
}
