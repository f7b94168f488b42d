package binding

import (
	"fmt"
	"strings"

	"github.com/privnum/privnum/reject"
)

// Mode is how a binding routes the calls on its virtual number.
//
//   - AXB: A and B bound to X; A calling X reaches B and B reaches A. X is
//     shared: it carries many AXB pairs at once, one per (X, party).
//   - AXN: X belongs to A alone. Anyone calling X reaches A; A calling X
//     reaches the fixed B if set, else the last caller within the reply
//     window.
//   - AXG: X belongs to A alone, and only the members of A's group may
//     call it; A calling X reaches the fixed B if set, else the last
//     member who called within the reply window.
//   - AXE: X carries many extension bindings (one party each, each party
//     once per X); a caller enters the extension (see Collect and
//     Service.ResolveExtension); a party calling X reaches the last
//     caller to its extension within the reply window.
//
// The modes other than AXB hold their X exclusively (Exclusive): no AXB
// pair lives on a held X, and an exclusive mode takes only a number on
// which no AXB pair is live or quarantined. The hold is recorded in the
// number's pool hash ("held" = end of the hold in ms, "holder" = mode),
// which every create script reads; AXE records its hold there too, with
// "held" covering the quarantine of every extension.
type Mode string

// Binding modes.
const (
	AXB Mode = "axb"
	AXN Mode = "axn"
	AXE Mode = "axe"
	AXG Mode = "axg"
)

// ParseMode accepts axb, axn, axe and axg in any case; empty means AXB. An
// unknown mode is a *reject.FieldError naming "mode" wrapping ErrInvalid.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return AXB, nil
	case AXB, AXN, AXE, AXG:
		return m, nil
	}
	return "", &reject.FieldError{Field: "mode", Reason: fmt.Sprintf("unknown mode %q: want axb, axn, axe or axg", s), Err: ErrInvalid}
}

// Exclusive tells whether a mode holds its virtual number for itself: no
// AXB pair may use the number while it (or its quarantine) lasts.
func (m Mode) Exclusive() bool { return m == AXN || m == AXG || m == AXE }

// modeOf reads a stored mode; records written before modes existed are
// AXB.
func modeOf(s string) Mode {
	if s == "" {
		return AXB
	}
	return Mode(s)
}
