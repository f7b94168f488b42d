package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
)

func (a *app) printBinding(b binding.Binding, asJSON bool) error {
	if asJSON {
		return a.printJSON(b)
	}
	fmt.Fprintf(a.stdout, "binding %s\n  x        %s\n  a        %s\n  b        %s\n  state    %s\n  expires  %s\n",
		b.ID, b.X, b.A, b.B, b.State, b.ExpiresAt.Local().Format(time.RFC3339))
	if b.OrderID != "" {
		fmt.Fprintf(a.stdout, "  order    %s\n", b.OrderID)
	}
	return nil
}

func (a *app) bindCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bind", Short: "Create, show, extend and release AXB bindings"}

	var req binding.Request
	var dirs string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --a NUM --b NUM",
		Short: "Bind parties A and B to a virtual number",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			d, err := binding.ParseDirections(dirs)
			if err != nil {
				return usageError{err}
			}
			req.Directions = d
			b, err := a.bindings.Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printBinding(b, asJSON)
		}),
	}
	f := create.Flags()
	f.StringVar(&req.A, "a", "", "party A's real number (required)")
	f.StringVar(&req.B, "b", "", "party B's real number (required)")
	f.StringVar(&req.X, "x", "", "use this virtual number instead of allocating one")
	f.StringVar(&req.Area, "area", "", "prefer virtual numbers tagged with this area")
	f.DurationVar(&req.TTL, "ttl", 2*time.Hour, "how long the binding lives")
	f.BoolVar(&req.Record, "record", false, "record calls on this binding")
	f.DurationVar(&req.MaxDuration, "max-duration", 0, "end calls after this long (0: no limit)")
	f.DurationVar(&req.RingTimeout, "ring-timeout", 0, "how long the called party rings (0: the server default)")
	f.StringVar(&dirs, "directions", "both", "who may call: both, a_to_b or b_to_a")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	create.MarkFlagRequired("a")
	create.MarkFlagRequired("b")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a binding",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			b, err := a.bindings.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printBinding(b, showJSON)
		}),
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	var ttl time.Duration
	var extJSON bool
	extend := &cobra.Command{
		Use:   "extend ID --ttl 1h",
		Short: "Push a binding's expiry back by --ttl",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			b, err := a.bindings.Extend(cmd.Context(), args[0], ttl)
			if err != nil {
				return err
			}
			return a.printBinding(b, extJSON)
		}),
	}
	extend.Flags().DurationVar(&ttl, "ttl", 0, "how much longer the binding lives (required)")
	extend.Flags().BoolVar(&extJSON, "json", false, "print JSON")
	extend.MarkFlagRequired("ttl")

	var relJSON bool
	release := &cobra.Command{
		Use:   "release ID",
		Short: "End a binding now; its number is quarantined for both parties",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			b, err := a.bindings.Release(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printBinding(b, relJSON)
		}),
	}
	release.Flags().BoolVar(&relJSON, "json", false, "print JSON")

	cmd.AddCommand(create, show, extend, release)
	return cmd
}

func (a *app) routeCmd() *cobra.Command {
	var x, caller string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "route --x NUM --caller NUM",
		Short: "Show what a call from --caller to virtual number --x would do",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			r, err := a.bindings.Resolve(cmd.Context(), x, caller)
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(r)
			}
			if r.Action == binding.Connect {
				fmt.Fprintf(a.stdout, "connect %s -> %s (binding %s)\n", e164.Mask(r.Caller), r.Target, r.BindingID)
			} else {
				fmt.Fprintf(a.stdout, "reject: %s\n", r.Reason)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&x, "x", "", "the dialed virtual number (required)")
	cmd.Flags().StringVar(&caller, "caller", "", "the caller's number (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("x")
	cmd.MarkFlagRequired("caller")
	return cmd
}
