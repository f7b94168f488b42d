// Command arisim runs the ARI simulator standalone: a fake Asterisk 22 on
// --listen for the demo and load tests. Calls are injected and far parties
// scripted through its /_sim/ control endpoints (see package arisim).
//
//	arisim --listen 127.0.0.1:8088 --user asterisk --password secret
//	curl -u asterisk:secret -d '{"from":"13800000001","exten":"17000000000"}' http://127.0.0.1:8088/_sim/calls
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/privnum/privnum/ari/arisim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "arisim:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8088", "listen address")
	user := flag.String("user", "asterisk", "ARI user name (empty with --password empty: no auth)")
	password := flag.String("password", "asterisk", "ARI password")
	app := flag.String("app", "privnum", "Stasis application inbound calls enter")
	timeScale := flag.Float64("time-scale", 1, "multiplier of every simulated duration")
	answerAfter := flag.Duration("answer-after", time.Second, "default behavior: callees ring this long, then answer")
	flag.Parse()

	def := arisim.Answer(*answerAfter)
	sim := arisim.New(arisim.Options{
		Addr:            *listen,
		Username:        *user,
		Password:        *password,
		App:             *app,
		TimeScale:       *timeScale,
		DefaultBehavior: &def,
		Control:         true,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sim.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	fmt.Printf("ARI simulator on %s/ari (control: %s/_sim/)\n", sim.URL(), sim.URL())
	<-ctx.Done()
	sim.Close()
	return nil
}
