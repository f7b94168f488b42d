package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/pool"
)

func (a *app) poolCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "Manage the virtual-number pool"}

	var area, file, mode string
	add := &cobra.Command{
		Use:   "add NUMBER... | --file numbers.csv",
		Short: "Add virtual numbers (arguments, or a CSV of number[,area])",
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			var entries []pool.Entry
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				if entries, err = a.pool.ReadCSV(f); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			if err := pool.CheckMode(mode); err != nil {
				return usageError{fmt.Errorf("--mode: %w", err)}
			}
			for _, n := range args {
				entries = append(entries, pool.Entry{Number: n, Area: area})
			}
			for i := range entries {
				entries[i].Mode = mode
			}
			if len(entries) == 0 {
				return usageError{fmt.Errorf("pool add: give numbers as arguments or --file")}
			}
			added, err := a.pool.Add(cmd.Context(), entries)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added %d new number(s), %d already in the pool\n", added, len(entries)-added)
			return nil
		}),
	}
	add.Flags().StringVar(&area, "area", "", "area/region tag for the numbers given as arguments")
	add.Flags().StringVar(&file, "file", "", "CSV file with number and optional area per row")
	add.Flags().StringVar(&mode, "mode", "", "reserve the numbers for one binding mode (axb, axn, axe, axg; any: serve every mode); default: leave as is, new numbers serve every mode")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List pool numbers with their state and active bindings",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			nums, err := a.pool.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if nums == nil {
					nums = []pool.Number{}
				}
				return a.printJSON(map[string]any{"numbers": nums})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NUMBER\tAREA\tSTATE\tACTIVE BINDINGS\tRESERVED FOR\tHELD BY")
			for _, n := range nums {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", n.Number, n.Area, n.State, n.ActiveBindings, n.Mode, n.HeldBy)
			}
			return w.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	retire := &cobra.Command{
		Use:   "retire NUMBER",
		Short: "Stop new bindings on a number; existing ones run to expiry",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			if err := a.pool.Retire(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "retired")
			return nil
		}),
	}
	restore := &cobra.Command{
		Use:   "restore NUMBER",
		Short: "Let a retired number take new bindings again",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			if err := a.pool.Restore(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "restored")
			return nil
		}),
	}
	var fcJSON bool
	forecast := &cobra.Command{
		Use:   "forecast",
		Short: "The smallest pool that serves the current load, and the headroom left, per area tag",
		Long: `From the live party index and the quarantine: per area tag and for the whole pool, the most
numbers one party holds now, live or quarantined (Δ, the smallest pool that serves the current load),
and the headroom: the pool minus that. At headroom 0 for the whole pool, the busiest party's next
binding fails with "pool exhausted".`,
		Args: exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			f, err := a.bindings.Forecast(cmd.Context())
			if err != nil {
				return err
			}
			if fcJSON {
				return a.printJSON(f)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "AREA\tPOOL\tNEEDED\tHEADROOM\tBUSIEST PARTY")
			row := func(area string, r binding.AreaForecast) {
				busiest := r.Busiest
				if busiest == "" {
					busiest = "-"
				}
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", area, r.Pool, r.Needed, r.Headroom, busiest)
			}
			for _, r := range f.Areas {
				row(areaLabel(r.Area), r)
			}
			row("(all)", f.Total)
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d parties hold numbers\n", f.Parties)
			return nil
		}),
	}
	forecast.Flags().BoolVar(&fcJSON, "json", false, "print JSON")
	cmd.AddCommand(add, list, retire, restore, forecast)
	return cmd
}
