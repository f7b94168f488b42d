package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// numbers hands out distinct Chinese numbers per scenario: callers and
// called parties are mobiles (138…, 139…, 137…), virtual numbers 170….
var numberSeq atomic.Int64

type parties struct{ A, B, X string }

func newParties() parties {
	n := numberSeq.Add(1)
	return parties{A: fmt.Sprintf("1380000%04d", n), B: fmt.Sprintf("1390000%04d", n), X: fmt.Sprintf("1700000%04d", n)}
}

func stranger() string { return fmt.Sprintf("1370000%04d", numberSeq.Add(1)) }

// e164 is a national Chinese number in E.164, as privnum and Asterisk show it.
func e164(n string) string { return "+86" + n }

// TestE2E runs privnum on a real Asterisk 22 (PRIVNUM_ASTERISK) with SIP
// peers written with sipgo, and asserts on the SIP messages the peers
// received.
func TestE2E(t *testing.T) {
	e := startEnv(t)

	t.Run("A_calls_X_reaches_B_showing_only_X", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		in := e.Trunk.Invite(t, p.A, p.X)
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), 5*time.Second)
		out.Ring()
		if !in.Wait(3*time.Second, hasStatus(180)) {
			t.Errorf("caller got no 180 while B rang: %s", in.Trace())
		}
		out.Answer()
		if st := in.Final(t, 5*time.Second); st != 200 {
			t.Fatalf("caller got %d, want 200: %s", st, in.Trace())
		}
		e.waitBridged(t, in.SentAt(), 1)
		in.Hangup(t)
		if !out.WaitEnded(3 * time.Second) {
			t.Fatalf("caller's BYE did not reach B: %s", out.Trace())
		}
		checkShownOnly(t, "B (carrier)", out, p.X, p.A)
		checkNotShown(t, "A (caller)", in, p.X, p.B)
		t.Logf("B received: %s; A received: %s", out.Trace(), in.Trace())
	})

	t.Run("extension_call_AXE_keys_the_extension", func(t *testing.T) {
		p := newParties()
		e.Privnum(t, "pool", "add", "--mode", "axe", p.X)
		var b struct {
			X         string `json:"x"`
			Extension string `json:"extension"`
		}
		e.PrivnumJSON(t, &b, "bind", "axe", "--a", p.A, "--x", p.X)
		if b.Extension == "" {
			t.Fatalf("bind axe gave no extension: %+v", b)
		}
		caller := stranger()
		in := e.Trunk.Invite(t, caller, p.X)
		// privnum answers to collect the extension.
		if st := in.Final(t, 5*time.Second); st != 200 {
			t.Fatalf("caller got %d, want 200 (answered for the extension): %s", st, in.Trace())
		}
		time.Sleep(300 * time.Millisecond) // the prompt starts
		in.SendDTMF(t, b.Extension+"#", 150*time.Millisecond)
		out := e.Carrier.WaitInvite(t, e164(p.A), in.SentAt(), 10*time.Second)
		out.Ring()
		out.Answer()
		e.waitBridged(t, in.SentAt(), 1)
		in.Hangup(t)
		if !out.WaitEnded(3 * time.Second) {
			t.Fatalf("caller's BYE did not reach A: %s", out.Trace())
		}
		checkShownOnly(t, "A (extension's party)", out, p.X, caller)
		checkNotShown(t, "caller", in, p.X, p.A)
	})

	t.Run("B_calls_X_reaches_A", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		in := e.Trunk.Invite(t, p.B, p.X)
		out := e.Carrier.WaitInvite(t, e164(p.A), in.SentAt(), 5*time.Second)
		out.Ring()
		out.Answer()
		if st := in.Final(t, 5*time.Second); st != 200 {
			t.Fatalf("caller got %d, want 200: %s", st, in.Trace())
		}
		e.waitBridged(t, in.SentAt(), 1)
		out.Hangup(t) // A hangs up: B's leg ends
		if !in.WaitEnded(3 * time.Second) {
			t.Fatalf("A's BYE did not reach B: %s", in.Trace())
		}
		if _, far := in.Ended(); !far {
			t.Errorf("B's call did not end with a BYE from the switch: %s", in.Trace())
		}
		checkShownOnly(t, "A (called)", out, p.X, p.B)
		checkNotShown(t, "B (caller)", in, p.X, p.A)
	})

	t.Run("stranger_reaches_nobody", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		s := stranger()
		in := e.Trunk.Invite(t, s, p.X)
		if st := in.Final(t, 5*time.Second); st != 200 {
			t.Fatalf("stranger got %d, want 200 (answered for the announcement): %s", st, in.Trace())
		}
		if !in.WaitEnded(15 * time.Second) {
			t.Fatalf("the switch did not hang up on the stranger after the announcement: %s", in.Trace())
		}
		if _, far := in.Ended(); !far {
			t.Errorf("stranger's call did not end with a BYE from the switch: %s", in.Trace())
		}
		// ss-noservice.gsm is about 4.9 s long.
		if played := in.EndedAt().Sub(in.AnsweredAt()); played < 3*time.Second {
			t.Errorf("announcement cut after %v (ss-noservice lasts ~4.9 s): was it played? Asterisk log:\n%s", played, e.Ast.LogTail(30))
		}
		if got := e.Carrier.InvitesSince(in.SentAt()); len(got) > 0 {
			t.Errorf("a stranger's call reached the carrier: INVITE to %s", got[0].Invite().Recipient.User)
		}
		checkNotShown(t, "stranger", in, p.X, p.A, p.B)
	})

	t.Run("busy_gives_486_to_the_caller", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		e.Carrier.SetPolicy(e164(p.B), AutoBusy)
		in := e.Trunk.Invite(t, p.A, p.X)
		if st := in.Final(t, 5*time.Second); st != 486 {
			t.Fatalf("caller got %d, want 486: %s", st, in.Trace())
		}
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), time.Second)
		checkShownOnly(t, "B (carrier)", out, p.X, p.A)
		checkNotShown(t, "A (caller)", in, p.X, p.B)
	})

	t.Run("ring_timeout_gives_480", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B, "--ring-timeout", "2s")
		e.Carrier.SetPolicy(e164(p.B), Ringing)
		in := e.Trunk.Invite(t, p.A, p.X)
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), 5*time.Second)
		if st := in.Final(t, 8*time.Second); st != 480 {
			t.Fatalf("caller got %d, want 480: %s", st, in.Trace())
		}
		took := time.Since(out.ReceivedAt)
		if took < 1500*time.Millisecond {
			t.Errorf("call gave up after %v, before the binding's 2 s ring timeout", took)
		}
		if !out.Wait(2*time.Second, func(c *Call) bool { return c.cancelled }) {
			t.Errorf("B's ringing leg was not cancelled: %s", out.Trace())
		}
		checkShownOnly(t, "B (carrier)", out, p.X, p.A)
		checkNotShown(t, "A (caller)", in, p.X, p.B)
	})

	t.Run("caller_cancel_reaches_carrier_as_CANCEL", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		e.Carrier.SetPolicy(e164(p.B), Ringing)
		in := e.Trunk.Invite(t, p.A, p.X)
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), 5*time.Second)
		if !in.Wait(3*time.Second, hasStatus(180)) {
			t.Fatalf("caller got no 180: %s", in.Trace())
		}
		in.Cancel(t)
		cancelled := time.Now()
		if st := in.Final(t, 3*time.Second); st != 487 {
			t.Errorf("caller's INVITE ended with %d, want 487", st)
		}
		if !out.Wait(3*time.Second, func(c *Call) bool { return c.cancelled }) {
			t.Fatalf("the caller's CANCEL did not reach B: %s", out.Trace())
		}
		t.Logf("CANCEL reached B %v after the caller's", out.EndedAt().Sub(cancelled).Round(100*time.Microsecond))
		checkShownOnly(t, "B (carrier)", out, p.X, p.A)
	})

	t.Run("serve_killed_mid_call_and_restarted_call_survives", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		e.Carrier.SetPolicy(e164(p.B), AutoAnswer)
		in := e.Trunk.Invite(t, p.A, p.X)
		if st := in.Final(t, 5*time.Second); st != 200 {
			t.Fatalf("caller got %d, want 200: %s", st, in.Trace())
		}
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), time.Second)
		e.waitBridged(t, in.SentAt(), 1)

		e.Serve.Kill()
		// While no privnum is connected, new calls are refused at once
		// (privnum-extensions.conf: STASISSTATUS=FAILED -> cause 34 -> 503).
		q := newParties()
		e.Bind(t, q.X, q.A, q.B)
		down := e.Trunk.Invite(t, q.A, q.X)
		if st := down.Final(t, 5*time.Second); st != 503 {
			t.Errorf("a call while privnum was down got %d, want 503", st)
		}
		if ended, _ := in.Ended(); ended {
			t.Fatalf("the bridged call ended when privnum was killed: %s", in.Trace())
		}
		e.StartServe(t)
		if !waitFor(5*time.Second, func() bool { return strings.Contains(e.Serve.Output(), "took up bridged call") }) {
			t.Errorf("restarted privnum did not log taking up the bridged call:\n%s", tail(e.Serve.Output(), 20))
		}
		if ended, _ := out.Ended(); ended {
			t.Fatalf("B's leg ended across the restart: %s", out.Trace())
		}
		in.Hangup(t)
		if !out.WaitEnded(3 * time.Second) {
			t.Fatalf("after the restart the caller's hang-up did not reach B: %s", out.Trace())
		}
		checkShownOnly(t, "B (carrier)", out, p.X, p.A)
		checkNotShown(t, "A (caller)", in, p.X, p.B)
	})

	t.Run("twenty_pairs_on_one_X_at_once", func(t *testing.T) {
		const n = 20
		x := newParties().X
		e.Privnum(t, "pool", "add", x)
		ps := make([]parties, n)
		for i := range ps {
			ps[i] = newParties()
			ps[i].X = x
			e.Privnum(t, "bind", "create", "--a", ps[i].A, "--b", ps[i].B, "--x", x)
			e.Carrier.SetPolicy(e164(ps[i].B), AutoAnswer)
		}
		start := time.Now()
		ins := make([]*Call, n)
		for i, p := range ps {
			ins[i] = e.Trunk.Invite(t, p.A, x)
		}
		outs := make([]*Call, n)
		for i, p := range ps {
			if st := ins[i].Final(t, 10*time.Second); st != 200 {
				t.Fatalf("pair %d: caller got %d: %s", i, st, ins[i].Trace())
			}
			got := e.Carrier.InvitesTo(e164(p.B), start)
			if len(got) != 1 {
				t.Fatalf("pair %d: B got %d INVITEs, want 1", i, len(got))
			}
			outs[i] = got[0]
		}
		t.Logf("%d calls on one X answered in %v", n, time.Since(start).Round(time.Millisecond))
		e.waitBridged(t, start, n)
		// Each B hangs up in turn: exactly its own A's call ends.
		for i := range ps {
			outs[i].Hangup(t)
			if !ins[i].WaitEnded(3 * time.Second) {
				t.Fatalf("pair %d: B's hang-up did not reach its A: %s", i, ins[i].Trace())
			}
			for j := i + 1; j < n; j++ {
				if ended, _ := ins[j].Ended(); ended {
					t.Fatalf("B%d's hang-up ended the call of A%d too", i, j)
				}
			}
		}
		for i, p := range ps {
			var others []string
			for j, q := range ps {
				if j != i {
					others = append(others, q.A, q.B)
				}
			}
			checkShownOnly(t, fmt.Sprintf("B%d", i), outs[i], x, append(others, p.A)...)
			checkNotShown(t, fmt.Sprintf("A%d", i), ins[i], x, append(others, p.B)...)
		}
	})

	t.Run("max_duration_ends_the_call", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B, "--max-duration", "2s")
		e.Carrier.SetPolicy(e164(p.B), AutoAnswer)
		in := e.Trunk.Invite(t, p.A, p.X)
		if st := in.Final(t, 5*time.Second); st != 200 {
			t.Fatalf("caller got %d, want 200: %s", st, in.Trace())
		}
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), time.Second)
		if !in.WaitEnded(6*time.Second) || !out.WaitEnded(2*time.Second) {
			t.Fatalf("call not ended by max duration: A got %s; B got %s", in.Trace(), out.Trace())
		}
		for who, c := range map[string]*Call{"A": in, "B": out} {
			if _, far := c.Ended(); !far {
				t.Errorf("%s did not get a BYE from the switch: %s", who, c.Trace())
			}
		}
		if talk := in.EndedAt().Sub(out.AnsweredAt()); talk < 1500*time.Millisecond || talk > 4*time.Second {
			t.Errorf("call cut after %v, want about 2 s", talk)
		}
		checkShownOnly(t, "B (carrier)", out, p.X, p.A)
		checkNotShown(t, "A (caller)", in, p.X, p.B)
	})

	t.Run("flash_call_cut_while_ringing", func(t *testing.T) {
		cid := fmt.Sprintf("1710000%04d", numberSeq.Add(1))
		target := newParties().B
		e.Privnum(t, "verify", "callerid", "add", cid)
		e.Carrier.SetPolicy(e164(target), Ringing)
		start := time.Now()
		e.Privnum(t, "verify", "start", target)
		out := e.Carrier.WaitInvite(t, e164(target), start, 5*time.Second)
		if !out.Wait(5*time.Second, func(c *Call) bool { return c.cancelled }) {
			t.Fatalf("flash call not cut while ringing: %s", out.Trace())
		}
		cut := out.EndedAt().Sub(out.ReceivedAt)
		if cut > 3*time.Second {
			t.Errorf("flash call cut %v after it rang, want at once", cut)
		}
		if st := out.Final(t, time.Second); st != 487 {
			t.Errorf("flash call ended with %d, want CANCEL (487)", st)
		}
		checkShownOnly(t, "flash target", out, cid)
		t.Logf("flash call rang and was cancelled after %v", cut.Round(time.Millisecond))
	})

	t.Run("callback_to_two_parties", func(t *testing.T) {
		p := newParties()
		e.Privnum(t, "pool", "add", p.X)
		code := fmt.Sprintf("SHOP-%d", numberSeq.Add(1))
		e.Privnum(t, "callback", "map", code, "--first", p.A, "--second", p.B)
		var cb struct {
			ID, State, X string
		}
		start := time.Now()
		e.PrivnumJSON(t, &cb, "callback", "start", code)
		first := e.Carrier.WaitInvite(t, e164(p.A), start, 5*time.Second)
		first.Ring()
		first.Answer()
		second := e.Carrier.WaitInvite(t, e164(p.B), start, 5*time.Second)
		second.Ring()
		second.Answer()
		if !waitFor(5*time.Second, func() bool {
			e.PrivnumJSON(t, &cb, "callback", "show", cb.ID)
			return cb.State == "bridged"
		}) {
			t.Fatalf("callback state %q, want bridged", cb.State)
		}
		e.waitBridged(t, start, 1)
		second.Hangup(t)
		if !first.WaitEnded(3 * time.Second) {
			t.Fatalf("second party's hang-up did not reach the first: %s", first.Trace())
		}
		if !waitFor(5*time.Second, func() bool {
			e.PrivnumJSON(t, &cb, "callback", "show", cb.ID)
			return cb.State == "completed"
		}) {
			t.Errorf("callback state %q, want completed", cb.State)
		}
		x := nsn(cb.X)
		checkShownOnly(t, "first party", first, x, p.B)
		checkShownOnly(t, "second party", second, x, p.A)
	})

	// The control: the same trunk options without privnum. A static Dial()
	// passes A's caller ID on, and the carrier UA sees it: the checks above
	// look at what really arrives.
	t.Run("text_message_relayed_through_X", func(t *testing.T) {
		p := newParties()
		e.Bind(t, p.X, p.A, p.B)
		since := time.Now()
		const body = "meet at the north gate"
		if st := e.Trunk.SendMessage(t, p.A, p.X, body); st/100 != 2 {
			t.Fatalf("MESSAGE from A to X: %d", st)
		}
		var got []Msg
		deadline := time.Now().Add(5 * time.Second)
		for len(got) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			got = e.Carrier.Messages(since)
		}
		if len(got) != 1 {
			t.Fatalf("carrier received %d MESSAGEs, want 1\n%s", len(got), e.ServeLogs())
		}
		t.Logf("relayed in %v", got[0].At.Sub(since).Round(time.Millisecond))
		m := got[0].Req
		if !sameNumber(m.Recipient.User, e164(p.B)) || string(m.Body()) != body {
			t.Errorf("relayed MESSAGE to %s with body %q; want to B", m.Recipient.User, m.Body())
		}
		if !sameNumber(m.From().Address.User, e164(p.X)) {
			t.Errorf("relayed MESSAGE from %s; want the virtual number", m.From().Address.User)
		}
		if strings.Contains(got[0].Text, p.A) {
			t.Errorf("the relayed MESSAGE shows A's number:\n%s", got[0].Text)
		}
		// A stranger's message reaches nobody; nothing is left in Asterisk.
		since = time.Now()
		e.Trunk.SendMessage(t, stranger(), p.X, "hello?")
		time.Sleep(500 * time.Millisecond)
		if n := len(e.Carrier.Messages(since)); n != 0 {
			t.Errorf("a stranger's message was relayed (%d)", n)
		}
		if strings.Contains(e.ServeLogs(), body) {
			t.Error("privnum logged a message body")
		}
	})

	t.Run("control_static_Dial_shows_the_caller", func(t *testing.T) {
		p := newParties()
		e.Carrier.SetPolicy(e164(p.B), AutoBusy)
		in := e.Bench.Invite(t, p.A, "9"+p.B)
		out := e.Carrier.WaitInvite(t, e164(p.B), in.SentAt(), 5*time.Second)
		in.Final(t, 5*time.Second)
		if from := out.Invite().From(); !sameNumber(from.Address.User, p.A) || !strings.Contains(out.Msgs()[0].Text, p.A) {
			t.Errorf("control call: carrier INVITE From %s, want A's number %s (Dial() passes it on)", from.Value(), p.A)
		}
	})

	t.Run("call_setup_latency", func(t *testing.T) { measureSetup(t, e) })

	t.Logf("identity checks: %d legs checked, %d re-INVITE/UPDATE received after an answer (each checked for real numbers and identity headers)",
		legsChecked.Load(), updatesSeen.Load())

	// For the record: what privnum and Asterisk complained about.
	for _, l := range strings.Split(e.ServeLogs(), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Logf("privnum: %s", l)
		}
	}
	ready := false
	for _, l := range strings.Split(e.Ast.LogTail(1<<30), "\n") {
		ready = ready || strings.Contains(l, "Asterisk Ready")
		if ready && (strings.Contains(l, "WARNING[") || strings.Contains(l, "ERROR[")) {
			t.Logf("asterisk: %s", l)
		}
	}
}

func hasStatus(code int) func(c *Call) bool {
	return func(c *Call) bool {
		for _, m := range c.msgs {
			if m.Status == code {
				return true
			}
		}
		return false
	}
}

func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// identityHeaders carry a calling or connected party's number.
var identityHeaders = []string{"P-Asserted-Identity", "Remote-Party-ID", "P-Preferred-Identity", "Diversion", "History-Info"}

// checkShownOnly asserts what a called party received from the switch: the
// INVITE's From shows x (the only number it may see), P-Asserted-Identity
// and Remote-Party-ID, if any, show x, and no message at all (INVITE,
// re-INVITE, UPDATE, BYE, CANCEL, in any header or body) carries one of
// the hidden real numbers.
func checkShownOnly(t *testing.T, who string, c *Call, x string, hidden ...string) {
	t.Helper()
	inv := c.Invite()
	if from := inv.From(); from == nil || !sameNumber(from.Address.User, x) {
		t.Errorf("%s: INVITE From %v, want the virtual number %s", who, inv.From(), x)
	}
	if ct := inv.Contact(); ct != nil && ct.Address.User != "" && !sameNumber(ct.Address.User, x) && ct.Address.User != "asterisk" {
		t.Errorf("%s: INVITE Contact %s shows a number other than %s", who, ct.Value(), x)
	}
	checkMsgs(t, who, c, x, hidden)
}

// checkNotShown asserts that a caller received no message carrying one of
// the hidden numbers, and that any identity header it got shows x.
func checkNotShown(t *testing.T, who string, c *Call, x string, hidden ...string) {
	t.Helper()
	checkMsgs(t, who, c, x, hidden)
}

var legsChecked, updatesSeen atomic.Int64

func checkMsgs(t *testing.T, who string, c *Call, x string, hidden []string) {
	t.Helper()
	legsChecked.Add(1)
	updates := 0
	for i, m := range c.Msgs() {
		for _, h := range hidden {
			if h != "" && strings.Contains(m.Text, nsn(h)) {
				t.Errorf("%s: %s received carries the hidden number %s:\n%s", who, m, h, m.Text)
			}
		}
		for _, name := range identityHeaders {
			for _, v := range m.Header(name) {
				if name == "P-Asserted-Identity" || name == "Remote-Party-ID" {
					if !strings.Contains(v, nsn(x)) {
						t.Errorf("%s: %s has %s: %s, want only %s", who, m, name, v, x)
					}
					continue
				}
				t.Errorf("%s: %s has %s: %s", who, m, name, v)
			}
		}
		if i > 0 && (m.Method == "INVITE" || m.Method == "UPDATE") {
			updates++
			if from := m.Req.From(); from != nil && from.Address.User != "" && !sameNumber(from.Address.User, x) {
				t.Errorf("%s: %s after the answer with From %s, want %s", who, m.Method, from.Value(), x)
			}
		}
	}
	updatesSeen.Add(int64(updates))
	if updates > 0 {
		t.Logf("%s: received %d re-INVITE/UPDATE after the answer (checked: no real number)", who, updates)
	}
	if t.Failed() {
		t.Logf("%s received:\n%s", who, c.Dump())
	}
}

// waitBridged waits until Asterisk holds at least n of privnum's bridges
// created since since with both parties in them, and a moment more for any re-INVITE or UPDATE
// the bridge would send.
func (e *Env) waitBridged(t *testing.T, since time.Time, n int) {
	t.Helper()
	var got int
	ok := waitFor(5*time.Second, func() bool {
		req, _ := http.NewRequest("GET", "http://"+e.Ast.HTTP+"/ari/bridges", nil)
		req.SetBasicAuth(ariUser, ariPassword)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var bridges []struct {
			ID       string   `json:"id"`
			Channels []string `json:"channels"`
			Created  string   `json:"creationtime"`
		}
		if json.Unmarshal(b, &bridges) != nil {
			return false
		}
		got = 0
		for _, br := range bridges {
			created, err := time.Parse("2006-01-02T15:04:05.000-0700", br.Created)
			if err != nil {
				t.Fatalf("bridge %s: creationtime %q: %v", br.ID, br.Created, err)
			}
			if strings.HasPrefix(br.ID, "privnum-") && len(br.Channels) == 2 && !created.Before(since.Truncate(time.Millisecond)) {
				got++
			}
		}
		return got >= n
	})
	if !ok {
		t.Fatalf("%d of %d calls bridged in Asterisk", got, n)
	}
	time.Sleep(300 * time.Millisecond)
}
