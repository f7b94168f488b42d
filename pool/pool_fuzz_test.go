package pool_test

import (
	"strings"
	"testing"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/pool"
)

// FuzzReadCSV reads any bytes as a pool CSV: the result is an error that
// names the line, or entries whose numbers parse and whose area tags are
// ones Add takes. It needs no Redis.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"number,area\n17000000000,sh\n\n# comment\n+8617000000001\n",
		"17000000000\nnope,sh\n",
		"17000000000,sh,extra\n",
		"\"17000000000\",\"bj\"\n",
		"17000000000,sh pd\n",
		"a\"b\n",
		"\n\n   \n",
	} {
		f.Add([]byte(s))
	}
	parser := e164.Parser{Region: "CN"}
	p := pool.New(nil, parser)
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := p.ReadCSV(strings.NewReader(string(in)))
		if err != nil {
			if entries != nil {
				t.Fatalf("ReadCSV returned entries with error %v", err)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("ReadCSV error %q does not name the line", err)
			}
			return
		}
		for i, e := range entries {
			if _, err := parser.Parse(e.Number); err != nil {
				t.Fatalf("entry %d: number %q: %v", i, e.Number, err)
			}
			if e.Number != strings.TrimSpace(e.Number) || e.Area != strings.TrimSpace(e.Area) {
				t.Fatalf("entry %d %+v is not trimmed", i, e)
			}
			if len(e.Area) > 64 || strings.Trim(e.Area, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
				t.Fatalf("entry %d: area %q is not a valid tag", i, e.Area)
			}
		}
	})
}
