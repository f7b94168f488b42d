package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/order"
)

func (a *app) printOrder(o order.Order, asJSON bool) error {
	if asJSON {
		return a.printJSON(o)
	}
	fmt.Fprintf(a.stdout, "order %s: %s\n", o.ID, o.Status)
	if o.Binding != nil {
		fmt.Fprintf(a.stdout, "  virtual number %s (binding %s, %s, expires %s)\n",
			o.Binding.X, o.Binding.ID, o.Binding.State, o.Binding.ExpiresAt.Local().Format(time.RFC3339))
	}
	return nil
}

func (a *app) orderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "order", Short: "Bind numbers to e-commerce orders"}

	var req order.Request
	var openJSON bool
	open := &cobra.Command{
		Use:   "open ORDER_ID --buyer NUM --courier NUM",
		Short: "Open an order: bind buyer and courier on a virtual number (idempotent)",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			req.ID = args[0]
			o, err := a.orders.Open(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printOrder(o, openJSON)
		}),
	}
	f := open.Flags()
	f.StringVar(&req.Buyer, "buyer", "", "buyer's real number (required)")
	f.StringVar(&req.Courier, "courier", "", "courier's or merchant's real number (required)")
	f.StringVar(&req.Area, "area", "", "prefer virtual numbers tagged with this area")
	f.DurationVar(&req.TTL, "ttl", 72*time.Hour, "how long the order's number lives at most")
	f.BoolVar(&req.Record, "record", false, "record calls on this order")
	f.BoolVar(&openJSON, "json", false, "print JSON")
	open.MarkFlagRequired("buyer")
	open.MarkFlagRequired("courier")

	closer := func(use, short string, do func(ctx context.Context, id string) (order.Order, error)) *cobra.Command {
		var asJSON bool
		c := &cobra.Command{
			Use: use, Short: short, Args: exactArgs(1),
			RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
				o, err := do(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printOrder(o, asJSON)
			}),
		}
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return c
	}
	complete := closer("complete ORDER_ID", "Complete an order and reclaim its number",
		func(ctx context.Context, id string) (order.Order, error) { return a.orders.Complete(ctx, id) })
	cancel := closer("cancel ORDER_ID", "Cancel an order and reclaim its number",
		func(ctx context.Context, id string) (order.Order, error) { return a.orders.Cancel(ctx, id) })
	show := closer("show ORDER_ID", "Show an order and its binding",
		func(ctx context.Context, id string) (order.Order, error) { return a.orders.Get(ctx, id) })
	cmd.AddCommand(open, complete, cancel, show)
	return cmd
}
