package main

import (
	"os"
	"testing"

	"github.com/privnum/privnum/internal/redistest"
)

// runMainEnv makes the test binary run privnum's main instead of the tests,
// so that a test can start privnum as a process of its own and kill it.
const runMainEnv = "PRIVNUM_TEST_RUN_MAIN"

// TestMain runs the tests against a single Redis, then against a Redis
// Cluster.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	redistest.Main(m)
}
