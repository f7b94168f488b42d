package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/group"
)

func (a *app) printGroup(g group.Group, asJSON bool) error {
	if asJSON {
		if g.Members == nil {
			g.Members = []string{}
		}
		if g.Bindings == nil {
			g.Bindings = []string{}
		}
		return a.printJSON(g)
	}
	fmt.Fprintf(a.stdout, "group %s\n  members  %d (of at most %d)\n  version  %d\n", g.Name, g.Size, a.groups.MaxMembers(), g.Version)
	for _, m := range g.Members {
		fmt.Fprintf(a.stdout, "    %s\n", m)
	}
	if len(g.Bindings) > 0 {
		fmt.Fprintf(a.stdout, "  used by  %s\n", strings.Join(g.Bindings, ", "))
	}
	return nil
}

func (a *app) groupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Manage the groups of allowed callers that axg bindings use"}

	var addJSON bool
	add := &cobra.Command{
		Use:   "add NAME NUMBER...",
		Short: "Add members to a group, creating it if needed",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("group add: give the group's name and at least one number")}
			}
			return nil
		},
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			g, err := a.groups.Add(cmd.Context(), args[0], args[1:])
			if errors.Is(err, group.ErrNotFound) {
				g, err = a.groups.Create(cmd.Context(), args[0], args[1:])
			}
			if err != nil {
				return err
			}
			return a.printGroup(g, addJSON)
		}),
	}
	add.Flags().BoolVar(&addJSON, "json", false, "print JSON")

	var rmJSON bool
	remove := &cobra.Command{
		Use:   "remove NAME NUMBER...",
		Short: "Remove members from a group (all or none: each must be a member)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("group remove: give the group's name and at least one number")}
			}
			return nil
		},
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			g, err := a.groups.Remove(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			return a.printGroup(g, rmJSON)
		}),
	}
	remove.Flags().BoolVar(&rmJSON, "json", false, "print JSON")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a group's members and the bindings that use it",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			g, err := a.groups.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printGroup(g, showJSON)
		}),
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a group (refused while axg bindings, live or quarantined, use it)",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			if err := a.groups.Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "deleted")
			return nil
		}),
	}
	cmd.AddCommand(add, remove, show, del)
	return cmd
}
