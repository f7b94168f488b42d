package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/redistest"
)

func TestRunCLI(t *testing.T) {
	srv := redistest.StartSingle(t)
	args := []string{"--redis", srv.URL, "--seed", "3", "--buyers", "100", "--couriers", "3",
		"--min-load", "4", "--max-load", "6", "--span", "30m", "--order-time", "20m", "--quarantine", "10m"}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"bindings in trace", "lower bound", "smallest pool with zero \"pool exhausted\"", "target ≤ Δ+2", "naive, one number per binding",
		"axe: the same", "ceil(parties / extensions per number)", "smallest pool giving every party an extension", "axb for the same parties"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// A database with data in it is refused without --flush.
	o, _ := redis.ParseURL(srv.URL)
	rdb := redis.NewClient(o)
	defer rdb.Close()
	if err := rdb.Set(context.Background(), "keep-me", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--flush") {
		t.Fatalf("non-empty db: exit %d, stderr %q; want 1 and a hint about --flush", code, errOut.String())
	}
	if n, _ := rdb.Exists(context.Background(), "keep-me").Result(); n != 1 {
		t.Fatal("poolsim flushed a database it was not allowed to")
	}
	if code := run(context.Background(), []string{"--bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}
