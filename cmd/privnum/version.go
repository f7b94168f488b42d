package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionCmd prints what this binary was built from: the module version
// (or "devel"), the VCS revision and time when the build recorded them,
// and the Go version.
func (a *app) versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this privnum binary",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			if asJSON {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "privnum %s", v.Version)
			if v.Revision != "" {
				fmt.Fprintf(a.stdout, " (%s", v.Revision)
				if v.Modified {
					fmt.Fprint(a.stdout, ", modified")
				}
				if v.Time != "" {
					fmt.Fprintf(a.stdout, ", %s", v.Time)
				}
				fmt.Fprint(a.stdout, ")")
			}
			fmt.Fprintf(a.stdout, " %s\n", v.Go)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// version is what a build of privnum records about itself.
type version struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func buildVersion() version {
	v := version{Version: "devel", Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if m := info.Main.Version; m != "" && m != "(devel)" {
		v.Version = m
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
			if len(v.Revision) > 12 {
				v.Revision = v.Revision[:12]
			}
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}
