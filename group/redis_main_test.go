package group_test

import (
	"testing"

	"github.com/privnum/privnum/internal/redistest"
)

// TestMain runs the tests against a single Redis, then against a Redis
// Cluster.
func TestMain(m *testing.M) { redistest.Main(m) }
