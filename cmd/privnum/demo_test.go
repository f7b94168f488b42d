package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"B's phone rang showing caller ID +8617000000000",
		"A's phone rang showing caller ID +8617000000000",
		"Every identity B's phone was sent: [+8617000000000]",
		"answered  cause 16",
		"rejected  cause 16  by system",
		"mode axn: +86136****0004 holds +8617000000001 alone",
		"privnum reached S: dialed +86136****0004, whose phone showed caller ID +8617000000001.",
		"privnum replied to the last caller: dialed +86135****0005, whose phone showed caller ID +8617000000001.",
		"[axn]",
		"is extension 1234 on +8617000000002",
		"privnum resolved extension 1234: dialed +86134****0006, whose phone showed caller ID +8617000000002",
		"[axe ext 1234]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	for _, real := range []string{"+8613800000001", "+8613900000002", "+8613700000003", "+8613600000004", "+8613500000005", "+8613400000006", "+8613300000007"} {
		if strings.Contains(out.String(), real) || strings.Contains(errb.String(), real) {
			t.Errorf("demo printed the real number %s unmasked", real)
		}
	}
}
