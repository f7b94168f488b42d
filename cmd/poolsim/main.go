// Command poolsim measures how small a virtual-number pool the binding
// allocator gets by with on a synthetic e-commerce trace.
//
// It generates a seeded trace (many buyers, couriers each carrying tens of
// concurrent orders; a binding per order from opening to completion, then a
// quarantine), replays it through the real binding.Service on a real Redis,
// and searches for the smallest pool with zero "pool exhausted" errors. It
// prints that beside Δ, the most bindings any single party holds at once
// (no allocator can use fewer numbers), and beside the pool that one number
// per binding would need. For the same parties it then gives each one an
// AXE extension (--extension-digits long) and prints the pool that needs:
// at least ceil(parties / extensions per number).
//
// Usage:
//
//	poolsim [--redis URL] [--seed N] [--buyers N] [--couriers N]
//	        [--min-load N] [--max-load N] [--span D] [--order-time D]
//	        [--quarantine D] [--max-pool N] [--extension-digits N] [-v]
//
// Without --redis it starts a throwaway redis-server on a free loopback
// port and stops it on exit. With --redis the database is FLUSHED before
// every replay, so poolsim refuses a non-empty database unless --flush is
// given.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/pooltrace"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("poolsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tc := pooltrace.TraceConfig{}
	redisURL := fs.String("redis", "", "Redis URL to use (its database is flushed); empty starts a throwaway redis-server")
	flush := fs.Bool("flush", false, "allow --redis to name a database that is not empty (it will be flushed)")
	fs.Uint64Var(&tc.Seed, "seed", 1, "trace seed")
	fs.IntVar(&tc.Buyers, "buyers", 5000, "number of buyers")
	fs.IntVar(&tc.Couriers, "couriers", 60, "number of couriers")
	fs.IntVar(&tc.MinLoad, "min-load", 20, "least concurrent orders a courier carries on average")
	fs.IntVar(&tc.MaxLoad, "max-load", 40, "most concurrent orders a courier carries on average")
	fs.DurationVar(&tc.Span, "span", 2*time.Hour, "simulated time over which orders open")
	fs.DurationVar(&tc.OrderTime, "order-time", 45*time.Minute, "mean simulated time from order opening to completion")
	fs.DurationVar(&tc.Quarantine, "quarantine", 30*time.Minute, "simulated quarantine of a released (number, party) pair")
	maxPool := fs.Int("max-pool", 0, "largest pool to try (0: the naive figure including quarantine)")
	digits := fs.Int("extension-digits", 4, "length of the AXE extensions the same parties get (1 to 6; 0: skip AXE)")
	verbose := fs.Bool("v", false, "print every replay")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "poolsim: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *digits < 0 || *digits > 6 {
		fmt.Fprintf(stderr, "poolsim: --extension-digits %d: want 0 to 6\n", *digits)
		return 2
	}
	if err := simulate(ctx, *redisURL, *flush, tc, *maxPool, *digits, *verbose, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "poolsim: %v\n", err)
		return 1
	}
	return 0
}

func simulate(ctx context.Context, url string, flush bool, tc pooltrace.TraceConfig, maxPool, digits int, verbose bool, stdout, stderr io.Writer) error {
	if url == "" {
		u, stop, err := startRedis(ctx)
		if err != nil {
			return err
		}
		defer stop()
		url = u
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	n, err := rdb.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("redis %s: %w", o.Addr, err)
	}
	if n > 0 && !flush {
		return fmt.Errorf("redis %s db %d holds %d keys and every replay flushes it: pass --flush if that is intended", o.Addr, o.DB, n)
	}

	fmt.Fprintf(stdout, "trace: seed %d, %d buyers, %d couriers carrying %d–%d orders at once, orders opening over %s, lasting %s on average, quarantine %s\n",
		tc.Seed, tc.Buyers, tc.Couriers, tc.MinLoad, tc.MaxLoad, tc.Span, tc.OrderTime, tc.Quarantine)
	progress := func(r pooltrace.Run) {
		if verbose {
			fmt.Fprintf(stderr, "  %s\n", r)
		}
	}
	sim := pooltrace.NewSimulator(rdb)
	res, err := sim.Simulate(ctx, tc, maxPool, progress)
	if err != nil {
		return err
	}
	report(stdout, res)
	if digits == 0 {
		return nil
	}
	axe, err := sim.SimulateAXE(ctx, tc, digits, progress)
	if err != nil {
		return err
	}
	reportAXE(stdout, axe, res)
	return nil
}

// reportAXE prints the pool the same parties need as AXE extensions, next
// to the AXB figure.
func reportAXE(w io.Writer, r pooltrace.AXEResult, axb pooltrace.Result) {
	row := func(label string, v any) { fmt.Fprintf(w, "  %-62s %v\n", label, v) }
	fmt.Fprintf(w, "axe: the same %d parties, one %d-digit extension each (%d per number)\n", r.Parties, r.Digits, pooltrace.ExtensionsPerNumber(r.Digits))
	row("lower bound, ceil(parties / extensions per number)", r.Bound)
	tried := make([]string, len(r.Runs))
	for i, run := range r.Runs {
		mark := "✗"
		if run.OK() {
			mark = "✓"
		}
		tried[i] = fmt.Sprintf("%d%s", run.Pool, mark)
	}
	smallest := "none up to bound+2"
	if r.Smallest != 0 {
		smallest = strconv.Itoa(r.Smallest)
	}
	row("smallest pool giving every party an extension", fmt.Sprintf("%s (tried %s)", smallest, strings.Join(tried, " ")))
	axbPool := "?"
	if axb.Smallest != 0 {
		axbPool = strconv.Itoa(axb.Smallest)
	}
	row("axb for the same parties (smallest pool above)", axbPool)
}

func report(w io.Writer, r pooltrace.Result) {
	row := func(label string, v any) { fmt.Fprintf(w, "  %-62s %v\n", label, v) }
	row("bindings in trace", r.Bindings)
	row("Δ, most active bindings one party holds", r.DeltaActive)
	row("Δ, most active+quarantined pairs one party holds (lower bound)", fmt.Sprintf("%d (%s)", r.DeltaHeld, r.DeltaParty))
	tried := make([]string, len(r.Runs))
	for i, run := range r.Runs {
		mark := "✗"
		if run.OK() {
			mark = "✓"
		}
		tried[i] = fmt.Sprintf("%d%s", run.Pool, mark)
	}
	if r.Smallest == 0 {
		row("smallest pool with zero \"pool exhausted\"", "none up to the cap; tried "+strings.Join(tried, " "))
	} else {
		how := "scanned up from Δ"
		if !r.Exact {
			how = "bisected"
		}
		row("smallest pool with zero \"pool exhausted\"", fmt.Sprintf("%d (%s: %s)", r.Smallest, how, strings.Join(tried, " ")))
	}
	target := r.DeltaHeld + 2
	met := "no"
	if r.Smallest != 0 && r.Smallest <= target {
		met = "yes"
	}
	row("target ≤ Δ+2 (Δ = active+quarantined)", fmt.Sprintf("%d: %s (smallest − Δ = %s)", target, met, gap(r)))
	row("naive, one number per binding (most bindings active at once)", r.Naive)
	row("naive incl. quarantine (most active+quarantined at once)", r.NaiveHeld)
	if r.Smallest != 0 {
		row("create-script runs per create at the answer", fmt.Sprintf("%.2f (%d for %d creates, full replay %s)",
			float64(r.Final.Scripts)/float64(max(r.Final.Created, 1)), r.Final.Scripts, r.Final.Created, r.Final.Took.Round(time.Millisecond)))
	}
}

func gap(r pooltrace.Result) string {
	if r.Smallest == 0 {
		return "?"
	}
	return strconv.Itoa(r.Smallest - r.DeltaHeld)
}

// startRedis starts a throwaway redis-server on a free loopback port and
// returns its URL and a function that stops it.
func startRedis(ctx context.Context) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("no --redis given and redis-server not found: %w", err)
	}
	dir, err := os.MkdirTemp("", "poolsim-redis-")
	if err != nil {
		return "", nil, err
	}
	var lastErr error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
		out, err := cmd.StdoutPipe()
		if err != nil {
			return "", nil, err
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		exited := make(chan string, 1)
		go func() {
			var log strings.Builder
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if log.Len() < 4096 {
					log.WriteString(sc.Text() + "\n")
				}
			}
			cmd.Wait()
			exited <- log.String()
		}()
		stop := func() {
			cmd.Process.Kill()
			<-exited
			os.RemoveAll(dir)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if lastErr = waitDial(ctx, addr, exited); lastErr == nil {
			return "redis://" + addr + "/0", stop, nil
		}
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}
	os.RemoveAll(dir)
	return "", nil, fmt.Errorf("start redis-server: %w", lastErr)
}

func waitDial(ctx context.Context, addr string, exited chan string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case log := <-exited:
			exited <- log
			return fmt.Errorf("redis-server on %s exited: %s", addr, log)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on %s did not start", addr)
}
