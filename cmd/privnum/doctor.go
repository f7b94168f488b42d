package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/doctor"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/pool"
)

func (a *app) doctorCmd() *cobra.Command {
	var sc serveConfig
	var asJSON, strict bool
	var recordingDir string
	var minHeadroom int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the deployment: Redis, ARI, Asterisk's modules and trunk options, the pool's headroom",
		Long: `Check the deployment serve runs in, with the same flags: Redis and its persistence, ARI and its
credentials, the Asterisk version, the modules privnum needs, the Stasis application, the identity and
qualify options of the trunk endpoints (--message-endpoint, --endpoint-template), the recording
directory and the pool's headroom. It only reads. Exit status 1 when a check fails (with --strict,
also when one warns).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			p, err := e164.NewParser(a.region)
			if err != nil {
				return usageError{err}
			}
			// Not a.services: an unreachable Redis is a finding here.
			rdb, err := store.Open(a.redisURL)
			if err != nil {
				return usageError{err}
			}
			defer rdb.Close()
			client, err := ari.New(ari.Config{URL: sc.ariURL, Username: sc.ariUser, Password: sc.ariPassword, Application: sc.app})
			if err != nil {
				return usageError{err}
			}
			defer client.CloseIdleConnections()
			cfg := doctor.Config{
				Redis: rdb, ARI: client, ARIURL: sc.ariURL, ARIUser: sc.ariUser, App: sc.app,
				InboundEndpoints: inboundEndpoints(sc.trunks), OutboundEndpoint: doctor.EndpointOf(sc.endpoint),
				SMSRelay: sc.msgTo != "", RecordingDir: recordingDir, MinHeadroom: minHeadroom,
				Forecast: binding.New(rdb, pool.New(rdb, p), p, binding.Config{Quarantine: a.quarantine}),
			}
			r := doctor.Run(ctx, cfg)
			failed := r.Failed(strict)
			if asJSON {
				if err := a.printJSON(struct {
					OK bool `json:"ok"`
					doctor.Report
				}{!failed, r}); err != nil {
					return err
				}
			} else {
				printFindings(a, r)
			}
			if failed {
				n := 0
				for _, f := range r.Findings {
					if f.Status == doctor.Fail || strict && f.Status == doctor.Warn {
						n++
					}
				}
				return fmt.Errorf("doctor: %d finding(s) failed", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	a.addAsteriskFlags(f, &sc)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	f.StringVar(&recordingDir, "recording-dir", "/var/spool/asterisk/recording", "where Asterisk writes recordings, checked on this host (empty: Asterisk runs elsewhere, not checked)")
	f.IntVar(&minHeadroom, "min-headroom", 5, "warn when the pool (or an area tag) has fewer numbers left for its busiest party")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up on the checks after this long")
	return cmd
}

// printFindings writes one line per finding, ✓ ok, ! warn, ✗ fail, - skip,
// with the fix under it.
func printFindings(a *app, r doctor.Report) {
	w := 0
	for _, f := range r.Findings {
		w = max(w, len(f.Check))
	}
	mark := map[doctor.Status]string{doctor.OK: "✓", doctor.Warn: "!", doctor.Fail: "✗", doctor.Skip: "-"}
	for _, f := range r.Findings {
		fmt.Fprintf(a.stdout, "%s %-*s  %s\n", mark[f.Status], w, f.Check, f.Found)
		if f.Fix != "" {
			fmt.Fprintf(a.stdout, "  %s  fix: %s\n", strings.Repeat(" ", w), f.Fix)
		}
	}
}

// inboundEndpoints turns serve's --trunk-endpoint values into the
// endpoint names doctor reads.
func inboundEndpoints(trunks []string) []string {
	var out []string
	for _, t := range trunkList(trunks) {
		if ep := doctor.EndpointOf(t); ep != "" {
			out = append(out, ep)
		}
	}
	return out
}
