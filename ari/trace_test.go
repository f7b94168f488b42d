package ari

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// traceDir holds the recorded Asterisk 22.10.1 flows, relative to this
// package.
const traceDir = "../../shared/ari-traces"

// traceLine is one line of a trace file.
type traceLine struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// traceFiles returns the trace files, skipping the test if there are none.
func traceFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(traceDir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Skipf("no traces in %s", traceDir)
	}
	return files
}

// readTrace returns the lines of a trace file.
func readTrace(t *testing.T, file string) []traceLine {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []traceLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l traceLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return lines
}
