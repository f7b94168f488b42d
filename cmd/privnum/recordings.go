package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/cdr"
	"github.com/privnum/privnum/recording"
)

// ariLogin is how a command reaches Asterisk's ARI.
type ariLogin struct{ url, user, password string }

// ariFlags adds --ari-url, --ari-user and --ari-password (env
// PRIVNUM_ARI_URL, _USER, _PASSWORD) to f; defURL is --ari-url's default.
func (a *app) ariFlags(f *pflag.FlagSet, l *ariLogin, defURL string) {
	f.StringVar(&l.url, "ari-url", defURL, "Asterisk HTTP base URL (without /ari); env PRIVNUM_ARI_URL")
	a.envFlag(f, "ari-url", "PRIVNUM_ARI_URL")
	f.StringVar(&l.user, "ari-user", "privnum", "ARI user; env PRIVNUM_ARI_USER")
	a.envFlag(f, "ari-user", "PRIVNUM_ARI_USER")
	f.StringVar(&l.password, "ari-password", "", "ARI password; env PRIVNUM_ARI_PASSWORD")
	a.envFlag(f, "ari-password", "PRIVNUM_ARI_PASSWORD")
}

// recordings returns the recording service over l's Asterisk.
func (a *app) recordings(l ariLogin) (*recording.Service, error) {
	// REST only: the application name is never registered (no Run).
	c, err := ari.New(ari.Config{URL: l.url, Username: l.user, Password: l.password, Application: "privnum-recordings"})
	if err != nil {
		return nil, usageError{err}
	}
	return recording.New(c, cdr.New(a.rdb, 0), nil), nil
}

// age is a flag value for an age: a Go duration (36h) or whole days (14d);
// 0 is off.
type age time.Duration

func (d *age) String() string {
	v := time.Duration(*d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *age) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return fmt.Errorf("%q: want days (14d) or a duration (36h)", s)
		}
		*d = age(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want days (14d) or a duration (36h)", s)
	}
	*d = age(v)
	return nil
}

func (d *age) Type() string { return "age" }

// callRecordingCmd is `privnum calls recording ID -o FILE`.
func (a *app) callRecordingCmd() *cobra.Command {
	var l ariLogin
	var out string
	cmd := &cobra.Command{
		Use:   "recording CALL-ID -o FILE",
		Short: "Download a call's recording from Asterisk (-o - writes to stdout)",
		Args:  exactArgs(1),
		RunE: a.withServices(func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("-o FILE is required")}
			}
			svc, err := a.recordings(l)
			if err != nil {
				return err
			}
			f, err := svc.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer f.Body.Close()
			if out == "-" {
				_, err = io.Copy(a.stdout, f.Body)
				return err
			}
			w, err := createOut(out)
			if err != nil {
				return err
			}
			defer w.abort()
			n, err := io.Copy(w, f.Body)
			if err == nil {
				err = w.commit()
			}
			if err != nil {
				return fmt.Errorf("recording of call %s: %w", args[0], err)
			}
			fmt.Fprintf(a.stderr, "wrote %s (%s, %d bytes)\n", out, f.ContentType, n)
			return nil
		}),
	}
	a.ariFlags(cmd.Flags(), &l, "http://127.0.0.1:8088")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the file to write (required; - is stdout)")
	return cmd
}

// recordingsCmd is `privnum recordings prune`.
func (a *app) recordingsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "recordings", Short: "Manage call recordings (Asterisk's stored recordings)"}
	var l ariLogin
	var older age
	var asJSON bool
	prune := &cobra.Command{
		Use:   "prune --older-than 14d",
		Short: "Delete, through ARI, the recordings of calls that ended longer ago than --older-than, and mark their call records",
		Args:  exactArgs(0),
		RunE: a.withServices(func(cmd *cobra.Command, _ []string) error {
			if older <= 0 {
				return usageError{fmt.Errorf("--older-than: required, e.g. 14d")}
			}
			svc, err := a.recordings(l)
			if err != nil {
				return err
			}
			res, err := svc.Prune(cmd.Context(), time.Now().Add(-time.Duration(older)))
			if asJSON && err == nil {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "pruned %d recording(s) older than %s (%d already gone from Asterisk)\n", res.Deleted+res.Missing, older.String(), res.Missing)
			return err
		}),
	}
	a.ariFlags(prune.Flags(), &l, "http://127.0.0.1:8088")
	prune.Flags().Var(&older, "older-than", "age of the recordings to delete: days (14d) or a duration (36h)")
	prune.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(prune)
	return cmd
}
