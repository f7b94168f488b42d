package binding_test

import (
	"context"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
)

// TestModeRouting walks the routing rules of AXN and AXG step by step:
// each row resolves one call (or releases a binding) and checks the route,
// in order, since a stranger's call changes whom the owner reaches.
func TestModeRouting(t *testing.T) {
	ctx := context.Background()
	owner, fixedB, n1, n2, member, stranger := party(1), party(2), party(3), party(4), party(5), party(6)
	e := modeEnv(t, time.Hour, binding.FakeGroups{"drivers": {member, n1}}, xs(6)...)
	axn, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: owner, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	axnB, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: owner, B: fixedB, TTL: time.Hour, Options: binding.Options{Record: true, MaxDuration: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	axnShow, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: owner, ShowCaller: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	axg, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXG, A: owner, Group: "drivers", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	axgB, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXG, A: owner, B: fixedB, Group: "drivers", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	axb, err := e.svc.Create(ctx, binding.Request{A: n1, B: n2, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		action   binding.Action
		reason   string
		target   string
		callerID string // "" means X
	}
	connect := func(target, callerID string) want {
		return want{action: binding.Connect, target: target, callerID: callerID}
	}
	refuse := func(reason string) want { return want{action: binding.Reject, reason: reason} }
	steps := []struct {
		name    string
		b       binding.Binding
		caller  string
		release bool
		want    want
	}{
		{"axn: owner before anyone called", axn, owner, false, refuse(binding.ReasonNoLastCaller)},
		{"axn: a stranger reaches the owner, shown X", axn, n1, false, connect(owner, "")},
		{"axn: the owner replies to the last caller", axn, owner, false, connect(n1, "")},
		{"axn: another stranger", axn, n2, false, connect(owner, "")},
		{"axn: the owner reaches the newest caller", axn, owner, false, connect(n2, "")},
		{"axn: an AXB party of another number is a stranger here", axn, n1, false, connect(owner, "")},
		{"axn fixed b: the owner reaches b", axnB, owner, false, connect(fixedB, "")},
		{"axn fixed b: b reaches the owner", axnB, fixedB, false, connect(owner, "")},
		{"axn fixed b: a stranger reaches the owner", axnB, stranger, false, connect(owner, "")},
		{"axn fixed b: the owner still reaches b", axnB, owner, false, connect(fixedB, "")},
		{"axn show caller: the owner sees the caller's number", axnShow, stranger, false, connect(owner, stranger)},
		{"axn show caller: the owner's reply shows X", axnShow, owner, false, connect(stranger, "")},
		{"axg: a member reaches the owner", axg, member, false, connect(owner, "")},
		{"axg: a stranger is refused", axg, stranger, false, refuse(binding.ReasonNotInGroup)},
		{"axg: the owner replies to the last member", axg, owner, false, connect(member, "")},
		{"axg fixed b: the owner reaches b", axgB, owner, false, connect(fixedB, "")},
		{"axg fixed b: b reaches the owner", axgB, fixedB, false, connect(owner, "")},
		{"axg fixed b: a stranger is refused", axgB, stranger, false, refuse(binding.ReasonNotInGroup)},
		{"axb untouched: a party reaches the other", axb, n1, false, connect(n2, "")},
		{"axb untouched: a stranger", axb, owner, false, refuse(binding.ReasonNoBinding)},
		{"axn released", axn, "", true, want{}},
		{"axn released: a stranger hears expired", axn, stranger, false, refuse(binding.ReasonExpired)},
		{"axn released: the owner hears expired", axn, owner, false, refuse(binding.ReasonExpired)},
		{"axg released", axg, "", true, want{}},
		{"axg released: a member hears expired", axg, member, false, refuse(binding.ReasonExpired)},
	}
	for _, st := range steps {
		if st.release {
			if _, err := e.svc.Release(ctx, st.b.ID); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			continue
		}
		r, err := e.svc.Resolve(ctx, st.b.X, st.caller)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		w := st.want
		if w.action == binding.Connect && w.callerID == "" {
			w.callerID = st.b.X
		}
		if r.Action != w.action || r.Reason != w.reason || r.Target != w.target || r.CallerID != w.callerID {
			t.Errorf("%s: route %+v; want %+v", st.name, r, w)
		}
		if r.Reason != binding.ReasonNoBinding && r.Mode != st.b.Mode || (r.Action == binding.Connect && r.BindingID != st.b.ID) {
			t.Errorf("%s: mode %q binding %q; want %q %q", st.name, r.Mode, r.BindingID, st.b.Mode, st.b.ID)
		}
		if st.b.ID == axnB.ID && r.Action == binding.Connect && (!r.Record || r.MaxDuration != time.Minute) {
			t.Errorf("%s: options not carried: %+v", st.name, r)
		}
	}
}

// TestPeekRecordsNothing: Peek answers like Resolve but leaves the last
// caller alone.
func TestPeekRecordsNothing(t *testing.T) {
	ctx := context.Background()
	e := modeEnv(t, time.Hour, nil, xs(1)...)
	b, err := e.svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(1), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := e.svc.Peek(ctx, b.X, party(2)); r.Action != binding.Connect || r.Target != party(1) {
		t.Fatalf("Peek for a stranger: %+v", r)
	}
	if r, _ := e.svc.Resolve(ctx, b.X, party(1)); r.Reason != binding.ReasonNoLastCaller {
		t.Fatalf("owner after a Peek: %+v; want no last caller", r)
	}
	e.svc.Resolve(ctx, b.X, party(3))
	e.svc.Peek(ctx, b.X, party(2))
	if r, _ := e.svc.Resolve(ctx, b.X, party(1)); r.Target != party(3) {
		t.Fatalf("owner: %+v; want the last caller who called, not the one peeked", r)
	}
}

// TestReplyWindow: the owner reaches the last caller only within the
// reply window.
func TestReplyWindow(t *testing.T) {
	ctx := context.Background()
	e := modeEnv(t, time.Hour, nil, xs(1)...)
	svc := binding.New(e.rdb, e.pool, cn, binding.Config{Quarantine: time.Hour, ReplyWindow: 200 * time.Millisecond})
	b, err := svc.Create(ctx, binding.Request{Mode: binding.AXN, A: party(1), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := svc.Resolve(ctx, b.X, party(2)); r.Target != party(1) {
		t.Fatalf("stranger: %+v", r)
	}
	if r, _ := svc.Resolve(ctx, b.X, party(1)); r.Target != party(2) {
		t.Fatalf("owner within the window: %+v", r)
	}
	time.Sleep(250 * time.Millisecond)
	if r, _ := svc.Resolve(ctx, b.X, party(1)); r.Reason != binding.ReasonNoLastCaller {
		t.Fatalf("owner after the window: %+v", r)
	}
	// Extend keeps the binding and its hold going.
	ext, err := svc.Extend(ctx, b.ID, time.Hour)
	if err != nil || !ext.ExpiresAt.After(b.ExpiresAt) || ext.Mode != binding.AXN {
		t.Fatalf("extend: %+v, %v", ext, err)
	}
	n, _ := e.pool.Get(ctx, b.X)
	if n.HeldUntil == nil || !n.HeldUntil.Equal(ext.QuarantineUntil) {
		t.Errorf("hold after extend: %+v, want until %s", n, ext.QuarantineUntil)
	}
}
