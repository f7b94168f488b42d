// Command privnum runs and operates the privnum phone-number privacy
// platform: the number pool, bindings, orders and call control.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/internal/store"
	"github.com/privnum/privnum/order"
	"github.com/privnum/privnum/pool"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, stdout, stderr, os.Getenv)
}

// runEnv is run with getenv as the process environment.
func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.close()
	if err != nil {
		fmt.Fprintf(stderr, "privnum: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

// app holds the global flags and the services built from them.
type app struct {
	stdout, stderr io.Writer
	// getenv reads the environment; nil means os.Getenv.
	getenv func(string) string
	// envErrs are the environment variables whose values their flags
	// refused; the command fails with them before it runs.
	envErrs []error

	redisURL   string
	region     string
	quarantine time.Duration
	durability string
	logLevel   string
	// replyWindow and groupLimit configure the AXN/AXG services.
	replyWindow time.Duration
	groupLimit  int
	// extDigits is the length of AXE extensions.
	extDigits int

	rdb      redis.UniversalClient
	parser   e164.Parser
	pool     *pool.Pool
	bindings *binding.Service
	orders   *order.Service
	groups   *group.Service
}

// env returns the environment variable name ("" when unset).
func (a *app) env(name string) string {
	if a.getenv != nil {
		return a.getenv(name)
	}
	return os.Getenv(name)
}

// envOr returns the environment variable name, or def when it is unset.
func (a *app) envOr(name, def string) string {
	if v := a.env(name); v != "" {
		return v
	}
	return def
}

// envAnnotation is the flag annotation naming the environment variable a
// flag reads.
const envAnnotation = "privnum_env"

// envFlag binds the flag name of fs to the environment variable env: when
// env is set, its value replaces the flag's default (the command line still
// wins; --help shows the built-in default, never a secret from the
// environment). The flag is annotated with env, which is how the tests tell
// which variables a command reads. A value the flag refuses fails the
// command before it runs.
func (a *app) envFlag(fs *pflag.FlagSet, name, env string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("envFlag: no flag --" + name)
	}
	if err := fs.SetAnnotation(name, envAnnotation, []string{env}); err != nil {
		panic(err)
	}
	if v := a.env(env); v != "" {
		if err := f.Value.Set(v); err != nil {
			a.envErrs = append(a.envErrs, fmt.Errorf("%s=%q (--%s): %w", env, v, name, err))
		}
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "privnum",
		Short:         "privnum keeps real phone numbers private behind virtual numbers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := errors.Join(a.envErrs...); err != nil {
			return usageError{err}
		}
		return nil
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.redisURL, "redis", store.DefaultURL, "Redis URL (redis://, rediss://, redis+cluster://, redis+sentinel://); env PRIVNUM_REDIS_URL")
	a.envFlag(pf, "redis", "PRIVNUM_REDIS_URL")
	pf.StringVar(&a.region, "region", "", "default region for national numbers, e.g. CN; env PRIVNUM_REGION")
	a.envFlag(pf, "region", "PRIVNUM_REGION")
	pf.DurationVar(&a.quarantine, "quarantine", 24*time.Hour, "how long a released (number, party) pair stays reserved; env PRIVNUM_QUARANTINE")
	a.envFlag(pf, "quarantine", "PRIVNUM_QUARANTINE")
	pf.StringVar(&a.logLevel, "log-level", "info", "debug, info, warn or error (serve and api); no level logs a secret or a real number; env PRIVNUM_LOG_LEVEL")
	a.envFlag(pf, "log-level", "PRIVNUM_LOG_LEVEL")
	pf.StringVar(&a.durability, "durability", "off", "off: a binding change is done when the Redis master has it; replica: when a replica confirmed it too (WAIT), so a failover cannot lose it; env PRIVNUM_DURABILITY")
	a.envFlag(pf, "durability", "PRIVNUM_DURABILITY")
	pf.DurationVar(&a.replyWindow, "reply-window", 24*time.Hour, "how long after a caller reached the owner of an axn or axg binding without a fixed B the owner reaches that caller by calling X (serve, route); env PRIVNUM_REPLY_WINDOW")
	a.envFlag(pf, "reply-window", "PRIVNUM_REPLY_WINDOW")
	pf.IntVar(&a.groupLimit, "group-limit", 1000, "most members an axg group may hold (CLI and api)")
	pf.IntVar(&a.extDigits, "extension-digits", 4, "length of the extensions axe bindings get, 1 to 6 (a number carries 10^n - 1); env PRIVNUM_EXTENSION_DIGITS")
	a.envFlag(pf, "extension-digits", "PRIVNUM_EXTENSION_DIGITS")
	root.AddCommand(a.poolCmd(), a.bindCmd(), a.groupCmd(), a.routeCmd(), a.orderCmd(), a.serveCmd(), a.callsCmd(), a.demoCmd(), a.qrCmd(), a.callbackCmd(), a.verifyCmd(), a.apiCmd(), a.apikeyCmd(), a.webhookCmd(), a.versionCmd(), a.healthcheckCmd(), a.recordingsCmd(), a.doctorCmd())
	return root
}

// level returns the log level --log-level names.
func (a *app) level() (slog.Level, error) {
	var l slog.Level
	if a.logLevel == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(a.logLevel)); err != nil {
		return 0, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)}
	}
	return l, nil
}

// services connects to Redis and builds the services on first use.
func (a *app) services(ctx context.Context) error {
	if a.rdb != nil {
		return nil
	}
	p, err := e164.NewParser(a.region)
	if err != nil {
		return usageError{err}
	}
	if a.replyWindow < 0 {
		return usageError{fmt.Errorf("--reply-window %s: want more than 0", a.replyWindow)}
	}
	if a.groupLimit < 0 {
		return usageError{fmt.Errorf("--group-limit %d: want more than 0", a.groupLimit)}
	}
	if a.extDigits < 0 || a.extDigits > 6 { // 0: the binding service's default
		return usageError{fmt.Errorf("--extension-digits %d: want 1 to 6", a.extDigits)}
	}
	bcfg := binding.Config{Quarantine: a.quarantine, AutoPipeline: true, ReplyWindow: a.replyWindow, ExtensionDigits: a.extDigits}
	switch a.durability {
	case "off", "":
	case "replica":
		bcfg.WaitReplicas = 1
	default:
		return usageError{fmt.Errorf("--durability %q: want off or replica", a.durability)}
	}
	rdb, err := store.Open(a.redisURL)
	if err != nil {
		return usageError{err}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return fmt.Errorf("cannot reach Redis at %s: %w", a.redisURL, err)
	}
	a.rdb, a.parser = rdb, p
	a.pool = pool.New(rdb, p)
	a.groups = group.New(rdb, p, group.Config{MaxMembers: a.groupLimit})
	bcfg.Groups = a.groups
	a.bindings = binding.New(rdb, a.pool, p, bcfg)
	a.orders = order.New(rdb, a.bindings)
	return nil
}

func (a *app) close() {
	if a.rdb != nil {
		a.rdb.Close()
	}
}

// printJSON writes v as one indented JSON object.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withServices wraps a RunE so that it runs with the services connected.
func (a *app) withServices(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := a.services(cmd.Context()); err != nil {
			return err
		}
		return f(cmd, args)
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
