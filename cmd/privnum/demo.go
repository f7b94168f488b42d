package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/spf13/cobra"

	"github.com/privnum/privnum/ari/arisim"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/call"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/pool"
)

func (a *app) demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole masked-call flow in-process: embedded Redis and a simulated Asterisk",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.demo(cmd.Context())
		},
	}
}

// demo shows what privnum does with no outside service.
func (a *app) demo(ctx context.Context) error {
	const (
		x        = "+8617000000000"
		alice    = "+8613800000001"
		bob      = "+8613900000002"
		stranger = "+8613700000003"
		// The AXN part: a seller's own virtual number, called by a buyer.
		xn     = "+8617000000001"
		seller = "+8613600000004"
		buyer  = "+8613500000005"
		// The AXE part: an agent behind extension 1234 of a call centre's
		// number, called by a customer.
		xe       = "+8617000000002"
		agent    = "+8613400000006"
		customer = "+8613300000007"
		ext      = "1234"
	)
	out := a.stdout
	step := func(format string, args ...any) { fmt.Fprintf(out, "\n"+format+"\n", args...) }
	fmt.Fprintln(out, "privnum demo: an embedded Redis and a simulated Asterisk 22 (ARI over HTTP and WebSocket), all in this process.")

	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	defer mr.Close()
	sim := arisim.New(arisim.Options{Username: "privnum", Password: "demo", TimeScale: 0.25})
	if err := sim.Start(); err != nil {
		return fmt.Errorf("ari simulator: %w", err)
	}
	defer sim.Close()
	sim.SetEndpoint(alice, arisim.Answer(400*time.Millisecond))
	sim.SetEndpoint(bob, arisim.Answer(400*time.Millisecond))
	sim.SetEndpoint(seller, arisim.Answer(400*time.Millisecond))
	sim.SetEndpoint(buyer, arisim.Answer(400*time.Millisecond))
	sim.SetEndpoint(agent, arisim.Answer(800*time.Millisecond))

	a.redisURL, a.region = "redis://"+mr.Addr()+"/0", "CN"
	if err := a.services(ctx); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan *call.App, 1)
	served := make(chan error, 1)
	go func() {
		served <- a.serve(runCtx, serveConfig{
			ariURL: sim.URL(), ariUser: "privnum", ariPassword: "demo", app: "privnum",
			endpoint: "PJSIP/{number}@carrier", callerID: "{number}", ringTimeout: 10 * time.Second,
			drainTimeout: time.Second, quiet: true,
		}, ready)
	}()
	select {
	case <-ready:
	case err := <-served:
		return err
	}
	if err := waitUntil(ctx, func() bool { return sim.Connected("privnum") }); err != nil {
		return err
	}
	fmt.Fprintf(out, "call control connected to the simulator at %s\n", sim.URL())

	step("1. The operator adds virtual number %s to the pool.", x)
	if _, err := a.pool.Add(ctx, []pool.Entry{{Number: x}}); err != nil {
		return err
	}
	b, err := a.bindings.Create(ctx, binding.Request{A: alice, B: bob, TTL: 2 * time.Hour})
	if err != nil {
		return err
	}
	step("2. A shop binds buyer A (%s) and courier B (%s) to it:\n   binding %s, %s <-> %s via %s, expires %s",
		e164.Mask(alice), e164.Mask(bob), b.ID, e164.Mask(b.A), e164.Mask(b.B), b.X, b.ExpiresAt.Local().Format(time.Kitchen))

	for _, c := range []struct{ from, to, who, whom string }{{alice, bob, "A", "B"}, {bob, alice, "B", "A"}} {
		step("%d. %s dials %s.", map[string]int{"A": 3, "B": 4}[c.who], c.who, x)
		in, err := sim.InboundCall(ctx, c.from, strings.TrimPrefix(x, "+86"))
		if err != nil {
			return err
		}
		var leg arisim.ChannelInfo
		if err := waitUntil(ctx, func() bool {
			l, ok := outboundLeg(sim, c.to)
			leg = l
			ci, _ := sim.Channel(in)
			return ok && ci.BridgeID != "" && l.BridgeID == ci.BridgeID
		}); err != nil {
			return fmt.Errorf("call %s->%s never bridged: %w", c.who, c.whom, err)
		}
		fmt.Fprintf(out, "   privnum looked up (%s, %s), dialed %s's real number: %s\n", x, e164.Mask(c.from), c.whom, leg.Endpoint[:len("PJSIP/")]+e164.Mask(c.to)+"@carrier")
		fmt.Fprintf(out, "   %s's phone rang showing caller ID %s; %s answered and the two were bridged.\n", c.whom, leg.Caller.Number, c.whom)
		fmt.Fprintf(out, "   Every identity %s's phone was sent: %v  (never %s's number)\n", c.whom, sim.IdentitiesSeen(leg.ID), c.who)
		time.Sleep(300 * time.Millisecond)
		if err := sim.HangupFromPeer(in, 16); err != nil {
			return err
		}
		if err := waitUntil(ctx, func() bool { ci, _ := sim.Channel(leg.ID); return ci.Destroyed }); err != nil {
			return err
		}
		fmt.Fprintf(out, "   %s hung up; privnum ended %s's leg and the bridge.\n", c.who, c.whom)
	}

	step("5. A stranger (%s) dials %s.", e164.Mask(stranger), x)
	in, err := sim.InboundCall(ctx, stranger, strings.TrimPrefix(x, "+86"))
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, func() bool { ci, _ := sim.Channel(in); return ci.Destroyed }); err != nil {
		return err
	}
	fmt.Fprintln(out, "   No binding for this caller: privnum answered, played \"the number you have dialed is not in service\" and hung up. Nobody else was dialed.")

	step("6. AXN: the operator reserves %s for axn bindings and gives seller S (%s) a number anyone can call:", xn, e164.Mask(seller))
	if _, err := a.pool.Add(ctx, []pool.Entry{{Number: xn, Mode: string(binding.AXN)}}); err != nil {
		return err
	}
	nb, err := a.bindings.Create(ctx, binding.Request{Mode: binding.AXN, A: seller, TTL: 30 * 24 * time.Hour})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   binding %s, mode %s: %s holds %s alone until %s\n", nb.ID, nb.Mode, e164.Mask(nb.A), nb.X, nb.ExpiresAt.Local().Format("Jan 2"))
	for _, c := range []struct{ n, from, to, who, whom, what string }{
		{"7", buyer, seller, "A buyer (" + e164.Mask(buyer) + "), bound to nothing,", "S", "reached S"},
		{"8", seller, buyer, "S", "the buyer", "replied to the last caller"},
	} {
		step("%s. %s dials %s.", c.n, c.who, xn)
		in, err := sim.InboundCall(ctx, c.from, strings.TrimPrefix(xn, "+86"))
		if err != nil {
			return err
		}
		var leg arisim.ChannelInfo
		if err := waitUntil(ctx, func() bool {
			l, ok := outboundLeg(sim, c.to)
			leg = l
			ci, _ := sim.Channel(in)
			return ok && ci.BridgeID != "" && l.BridgeID == ci.BridgeID
		}); err != nil {
			return fmt.Errorf("axn call to %s never bridged: %w", c.whom, err)
		}
		fmt.Fprintf(out, "   privnum %s: dialed %s, whose phone showed caller ID %s.\n", c.what, e164.Mask(c.to), leg.Caller.Number)
		time.Sleep(200 * time.Millisecond)
		if err := sim.HangupFromPeer(in, 16); err != nil {
			return err
		}
		if err := waitUntil(ctx, func() bool { ci, _ := sim.Channel(leg.ID); return ci.Destroyed }); err != nil {
			return err
		}
	}

	step("9. AXE: the operator reserves %s for axe bindings; a call centre gives agent E (%s) extension %s on it:", xe, e164.Mask(agent), ext)
	if _, err := a.pool.Add(ctx, []pool.Entry{{Number: xe, Mode: string(binding.AXE)}}); err != nil {
		return err
	}
	eb, err := a.bindings.Create(ctx, binding.Request{Mode: binding.AXE, A: agent, Extension: ext, TTL: 30 * 24 * time.Hour})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   binding %s, mode %s: %s is extension %s on %s (up to 9,999 extensions share it)\n", eb.ID, eb.Mode, e164.Mask(eb.A), eb.Extension, eb.X)
	step("10. A customer (%s) dials %s.", e164.Mask(customer), xe)
	in, err = sim.InboundCall(ctx, customer, strings.TrimPrefix(xe, "+86"))
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, func() bool { ci, _ := sim.Channel(in); return ci.Answered }); err != nil {
		return fmt.Errorf("extension call never answered: %w", err)
	}
	fmt.Fprintln(out, "   privnum answered and played \"please enter the number you wish to call\"; the customer keys 1 2 3 4.")
	if err := sim.SendDTMF(in, ext, 150*time.Millisecond); err != nil {
		return err
	}
	var leg arisim.ChannelInfo
	if err := waitUntil(ctx, func() bool {
		l, ok := outboundLeg(sim, agent)
		leg = l
		ci, _ := sim.Channel(in)
		return ok && ci.BridgeID != "" && l.BridgeID == ci.BridgeID
	}); err != nil {
		return fmt.Errorf("extension call never bridged: %w", err)
	}
	fmt.Fprintf(out, "   privnum resolved extension %s: dialed %s, whose phone showed caller ID %s; the customer heard ringing until E answered.\n",
		ext, e164.Mask(agent), leg.Caller.Number)
	time.Sleep(200 * time.Millisecond)
	if err := sim.HangupFromPeer(in, 16); err != nil {
		return err
	}
	if err := waitUntil(ctx, func() bool { ci, _ := sim.Channel(leg.ID); return ci.Destroyed }); err != nil {
		return err
	}

	step("11. Call records (privnum calls list):")
	var recs []cdr.Record
	if err := waitUntil(ctx, func() bool {
		recs, err = cdr.New(a.rdb, 0).List(ctx, 10)
		return err == nil && len(recs) == 6
	}); err != nil {
		return fmt.Errorf("call records: %w", err)
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	printCalls(a, recs)

	fmt.Fprintln(out, "\nNext: `privnum serve` against a real Asterisk (see asterisk-conf/README.md), `privnum --help` for the operator CLI.")
	stop()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// outboundLeg finds the newest outbound leg dialing number.
func outboundLeg(sim *arisim.Sim, number string) (arisim.ChannelInfo, bool) {
	var last arisim.ChannelInfo
	found := false
	for _, ch := range append(sim.History(), sim.Channels()...) {
		if !ch.Inbound && ch.FarNumber == number && (!found || ch.Created.After(last.Created)) {
			last, found = ch, true
		}
	}
	return last, found
}

// waitUntil polls cond for up to 10 s.
func waitUntil(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
