package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/callback"
	"github.com/privnum/privnum/dialq"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/verify"
	"github.com/privnum/privnum/webhook"
)

// publicBase is where QR code URLs point.
func (a *app) publicBase() string { return a.envOr("PRIVNUM_PUBLIC_BASE", defaultPublicBase) }

// dialServices builds the callback and verification services. Without a
// dialer (CLI, HTTP API) they queue calls for privnum serve.
//
// qcfg tunes the dial queue for the process that takes jobs from it
// (serve), and ring is serve's ring timeout (0: the default), which a
// QR code owner's stand-in callback seems to ring for.
func (a *app) dialServices(log *slog.Logger, dialer callback.Dialer, ring time.Duration, qcfg dialq.Config) (*callback.Service, *verify.Service, *dialq.Queue, error) {
	qcfg.Logger = log
	q := dialq.NewWithConfig(a.rdb, qcfg)
	codes, err := qr.New(a.rdb, a.parser, a.bindings, qr.Config{PublicBase: a.publicBase()})
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	sender := callback.HTTPSender{URL: a.env("PRIVNUM_MESSAGE_URL"), Secret: a.env("PRIVNUM_MESSAGE_SECRET")}
	events := callbackEvents{webhook.NewDispatcher(webhook.NewStore(a.rdb), webhook.Config{Logger: log})}
	deps := callback.Deps{Bindings: a.bindings, Orders: a.orders, Owners: codes, Dialer: dialer, Sender: sender, Publisher: events}
	if dialer == nil {
		deps.Queue = q
	}
	cbs := callback.New(a.rdb, deps, callback.Config{Logger: log, Message: a.env("PRIVNUM_CALLBACK_MESSAGE"), RingTimeout: ring})
	vs := verify.New(a.rdb, a.parser, verify.QueueFlasher{Queue: q}, verify.Config{Logger: log})
	return cbs, vs, q, nil
}

// callbackEvents publishes callback state changes as webhooks (delivered by
// privnum api).
type callbackEvents struct{ d *webhook.Dispatcher }

func (e callbackEvents) PublishCallback(ctx context.Context, cb callback.Callback) error {
	ev, err := webhook.NewEvent(webhook.CallbackUpdated, cb)
	if err != nil {
		return err
	}
	return e.d.Publish(ctx, ev)
}

func (a *app) printCallback(cb callback.Callback, asJSON bool) error {
	if asJSON {
		return a.printJSON(cb)
	}
	fmt.Fprintf(a.stdout, "callback %s: %s", cb.ID, cb.State)
	if cb.Reason != "" {
		fmt.Fprintf(a.stdout, " (%s)", cb.Reason)
	}
	fmt.Fprintf(a.stdout, "\n  %s then %s via %s\n", cb.First, cb.Second, cb.X)
	return nil
}

func (a *app) callbackCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "callback", Short: "Call two parties from an identification code and bridge them"}
	quiet := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var caller string
	var startJSON bool
	start := &cobra.Command{
		Use:   "start CODE [--caller NUM]",
		Short: "Start a callback from a mapped code, an order id or a QR token (placed by privnum serve)",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			cbs, _, _, err := a.dialServices(quiet, nil, 0, dialq.Config{})
			if err != nil {
				return err
			}
			cb, err := cbs.Start(cmd.Context(), callback.Request{Code: args[0], Caller: caller})
			if err != nil {
				return err
			}
			return a.printCallback(cb, startJSON)
		}),
	}
	start.Flags().StringVar(&caller, "caller", "", "the requester's number (first party), for QR codes")
	start.Flags().BoolVar(&startJSON, "json", false, "print JSON")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a callback's state",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			cbs, _, _, err := a.dialServices(quiet, nil, 0, dialq.Config{})
			if err != nil {
				return err
			}
			cb, err := cbs.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printCallback(cb, showJSON)
		}),
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var first, second string
	codeAdd := &cobra.Command{
		Use:   "map CODE --first NUM --second NUM",
		Short: "Make an identification code stand for a callback from first to second",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			cbs, _, _, err := a.dialServices(quiet, nil, 0, dialq.Config{})
			if err != nil {
				return err
			}
			if err := cbs.MapCode(cmd.Context(), args[0], first, second); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "code %s: %s then %s\n", args[0], e164.Mask(first), e164.Mask(second))
			return nil
		}),
	}
	codeAdd.Flags().StringVar(&first, "first", "", "called first (required)")
	codeAdd.Flags().StringVar(&second, "second", "", "called second; gets the message if the callback fails (required)")
	codeAdd.MarkFlagRequired("first")
	codeAdd.MarkFlagRequired("second")
	unmap := &cobra.Command{
		Use:   "unmap CODE",
		Short: "Remove a mapped identification code",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			cbs, _, _, err := a.dialServices(quiet, nil, 0, dialq.Config{})
			if err != nil {
				return err
			}
			return cbs.UnmapCode(cmd.Context(), args[0])
		}),
	}
	cmd.AddCommand(start, show, codeAdd, unmap)
	return cmd
}

func (a *app) verifyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "verify", Short: "Flash-call number verification"}
	quiet := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := func() (*verify.Service, error) {
		_, vs, _, err := a.dialServices(quiet, nil, 0, dialq.Config{})
		return vs, err
	}
	callerIDs := &cobra.Command{Use: "callerid", Short: "Manage the caller IDs flash calls ring from"}
	callerIDs.AddCommand(&cobra.Command{
		Use: "add NUMBER...", Short: "Add caller IDs to the verification pool",
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			vs, err := svc()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("give at least one number")}
			}
			n, err := vs.AddCallerIDs(cmd.Context(), args...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added %d new caller ID(s)\n", n)
			return nil
		}),
	}, &cobra.Command{
		Use: "list", Short: "List the verification caller IDs", Args: exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			vs, err := svc()
			if err != nil {
				return err
			}
			ids, err := vs.ListCallerIDs(cmd.Context())
			if err != nil {
				return err
			}
			for _, id := range ids {
				fmt.Fprintln(a.stdout, id)
			}
			return nil
		}),
	}, &cobra.Command{
		Use: "remove NUMBER", Short: "Remove a caller ID from the verification pool", Args: exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			vs, err := svc()
			if err != nil {
				return err
			}
			return vs.RemoveCallerID(cmd.Context(), args[0])
		}),
	})
	var startJSON bool
	start := &cobra.Command{
		Use: "start NUMBER", Short: "Verify a number by a flash call (placed by privnum serve)", Args: exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			vs, err := svc()
			if err != nil {
				return err
			}
			v, err := vs.Start(cmd.Context(), verify.StartRequest{Number: args[0], Requester: "cli"})
			if err != nil {
				return err
			}
			if startJSON {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "verification %s: %s, expires %s\n", v.ID, v.Status, v.ExpiresAt.Local().Format(time.TimeOnly))
			return nil
		}),
	}
	start.Flags().BoolVar(&startJSON, "json", false, "print JSON")
	check := &cobra.Command{
		Use: "check ID REPORTED_NUMBER", Short: "Check the number the phone showed", Args: exactArgs(2),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			vs, err := svc()
			if err != nil {
				return err
			}
			v, err := vs.Check(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "verification %s: %s\n", v.ID, v.Status)
			return nil
		}),
	}
	cmd.AddCommand(callerIDs, start, check)
	return cmd
}
