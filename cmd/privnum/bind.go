package main

import (
	"context"
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
	mode := b.Mode
	if mode == "" {
		mode = binding.AXB
	}
	fmt.Fprintf(a.stdout, "binding %s\n  mode     %s\n  x        %s\n  a        %s\n  b        %s\n  state    %s\n  expires  %s\n",
		b.ID, mode, b.X, b.A, b.B, b.State, b.ExpiresAt.Local().Format(time.RFC3339))
	if b.Group != "" {
		fmt.Fprintf(a.stdout, "  group    %s\n", b.Group)
	}
	if b.Extension != "" {
		fmt.Fprintf(a.stdout, "  ext      %s (dial %s, then key %s)\n", b.Extension, b.X, b.Extension)
	}
	if b.ShowCaller {
		fmt.Fprintf(a.stdout, "  shows    the caller's number to a\n")
	}
	if b.OrderID != "" {
		fmt.Fprintf(a.stdout, "  order    %s\n", b.OrderID)
	}
	return nil
}

func (a *app) bindCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bind", Short: "Create, show, extend and release bindings (axb, axn, axg, axe)"}

	var req binding.Request
	var dirs, mode string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --a NUM --b NUM",
		Short: "Bind parties A and B to a virtual number (axb; or --mode)",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			d, err := binding.ParseDirections(dirs)
			if err != nil {
				return usageError{err}
			}
			req.Directions = d
			if req.Mode, err = binding.ParseMode(mode); err != nil {
				return usageError{err}
			}
			if req.Mode == binding.AXB && req.B == "" {
				return fmt.Errorf(`required flag "b" not set: an axb binding needs --b`)
			}
			b, err := a.bindings.Create(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printBinding(b, asJSON)
		}),
	}
	f := create.Flags()
	f.StringVar(&req.A, "a", "", "party A's real number (required)")
	f.StringVar(&req.B, "b", "", "party B's real number (required for axb)")
	f.StringVar(&mode, "mode", "axb", "binding mode: axb, axn, axg or axe (see bind axn, bind axg, bind axe)")
	f.StringVar(&req.Group, "group", "", "the group whose members may call (axg)")
	f.StringVar(&req.Extension, "ext", "", "the extension to take (axe; default: the allocator chooses)")
	f.BoolVar(&req.ShowCaller, "show-caller", false, "show A the caller's real number instead of X (axn, axg)")
	f.StringVar(&req.X, "x", "", "use this virtual number instead of allocating one")
	f.StringVar(&req.Area, "area", "", "prefer virtual numbers tagged with this area")
	f.DurationVar(&req.TTL, "ttl", 2*time.Hour, "how long the binding lives")
	f.BoolVar(&req.Record, "record", false, "record calls on this binding")
	f.DurationVar(&req.MaxDuration, "max-duration", 0, "end calls after this long (0: no limit)")
	f.DurationVar(&req.RingTimeout, "ring-timeout", 0, "how long the called party rings (0: the server default)")
	f.StringVar(&dirs, "directions", "both", "who may call: both, a_to_b or b_to_a")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	create.MarkFlagRequired("a")

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

	cmd.AddCommand(create, a.bindModeCmd(binding.AXN), a.bindModeCmd(binding.AXG), a.bindAXECmd(), show, extend, release)
	return cmd
}

// bindModeCmd is `bind axn` or `bind axg`: a binding that holds its
// virtual number for owner A.
func (a *app) bindModeCmd(mode binding.Mode) *cobra.Command {
	req := &binding.Request{Mode: mode}
	use, short := "axn --a NUM [--b NUM]", "Give A a virtual number anyone can call; A calling it reaches --b, or the last caller"
	if mode == binding.AXG {
		use, short = "axg --a NUM --group NAME [--b NUM]", "Give A a virtual number only the group's members can call; A calling it reaches --b, or the last member who called"
	}
	cmd := a.createBindingCmd(req, use, short, "the owner's real number (required)")
	f := cmd.Flags()
	f.StringVar(&req.B, "b", "", "the fixed party A reaches by calling X (default: the last caller within --reply-window)")
	f.BoolVar(&req.ShowCaller, "show-caller", false, "show A the caller's real number instead of X")
	if mode == binding.AXG {
		f.StringVar(&req.Group, "group", "", "the group whose members may call (required; see privnum group)")
		cmd.MarkFlagRequired("group")
	}
	return cmd
}

// bindAXECmd is `bind axe`: an extension on a virtual number for A.
func (a *app) bindAXECmd() *cobra.Command {
	req := &binding.Request{Mode: binding.AXE}
	cmd := a.createBindingCmd(req, "axe --a NUM [--x NUM] [--ext N]",
		"Give A an extension on a virtual number: callers dial X and key it; A calling X reaches the last caller",
		"the party's real number (required)")
	cmd.Flags().StringVar(&req.Extension, "ext", "", "the extension to take, --extension-digits long (default: the allocator chooses)")
	return cmd
}

// createBindingCmd is a bind subcommand that creates req, with the flags
// every mode shares (--a, --x, --area, --ttl, the call options, --json);
// the caller adds the mode's own.
func (a *app) createBindingCmd(req *binding.Request, use, short, aHelp string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			b, err := a.bindings.Create(cmd.Context(), *req)
			if err != nil {
				return err
			}
			return a.printBinding(b, asJSON)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.A, "a", "", aHelp)
	f.StringVar(&req.X, "x", "", "use this virtual number instead of allocating one")
	f.StringVar(&req.Area, "area", "", "prefer virtual numbers tagged with this area")
	f.DurationVar(&req.TTL, "ttl", 30*24*time.Hour, "how long the binding lives")
	f.BoolVar(&req.Record, "record", false, "record calls on this binding")
	f.DurationVar(&req.MaxDuration, "max-duration", 0, "end calls after this long (0: no limit)")
	f.DurationVar(&req.RingTimeout, "ring-timeout", 0, "how long the called party rings (0: the server default)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("a")
	return cmd
}

func (a *app) routeCmd() *cobra.Command {
	var x, caller, ext string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "route --x NUM --caller NUM",
		Short: "Show what a call from --caller to virtual number --x would do",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			peek := a.bindings.Peek
			if ext != "" {
				peek = func(ctx context.Context, x, caller string) (binding.Route, error) {
					return a.bindings.PeekExtension(ctx, x, caller, ext)
				}
			}
			r, err := peek(cmd.Context(), x, caller)
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(r)
			}
			switch r.Action {
			case binding.Connect:
				fmt.Fprintf(a.stdout, "connect %s -> %s (binding %s, %s, shown %s)\n", e164.Mask(r.Caller), r.Target, r.BindingID, r.Mode, r.CallerID)
			case binding.Collect:
				fmt.Fprintf(a.stdout, "collect: answer and ask for a %d-digit extension (%s; see --ext)\n", r.Digits, r.Mode)
			default:
				fmt.Fprintf(a.stdout, "reject: %s\n", r.Reason)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&x, "x", "", "the dialed virtual number (required)")
	cmd.Flags().StringVar(&caller, "caller", "", "the caller's number (required)")
	cmd.Flags().StringVar(&ext, "ext", "", "the extension the caller keys (axe: where the call goes after the digits)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("x")
	cmd.MarkFlagRequired("caller")
	return cmd
}
