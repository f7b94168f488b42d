package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployEnvNamesRealVariables checks that every variable the systemd
// environment example sets (or shows commented out) is one privnum reads.
func TestDeployEnvNamesRealVariables(t *testing.T) {
	example, err := os.ReadFile("../../deploy/systemd/privnum.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	names := regexp.MustCompile(`(?m)^#? ?(PRIVNUM_[A-Z_]+)=`).FindAllStringSubmatch(string(example), -1)
	if len(names) < 10 {
		t.Fatalf("found %d variables in the example", len(names))
	}
	for _, m := range names {
		if !strings.Contains(src.String(), `"`+m[1]+`"`) {
			t.Errorf("the example sets %s, which privnum does not read", m[1])
		}
	}
}
