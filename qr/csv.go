package qr

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadCSV reads label-sheet rows: per row an owner number, a label text and
// optionally a mode ("middle-number" or "callback").
//
// An optional first row with a cell "owner" is a header naming the columns
// (owner and label required, mode optional, in any order); without one the
// columns are owner,label[,mode]. Blank lines and lines starting with '#'
// are skipped. Every row is checked (the owner number, a non-empty label
// that a label sheet can print, the mode) and the first invalid row is
// reported with its line number; nothing is returned then. Owners come back
// in E.164; Mode is empty where the row gives none, for the caller's
// default.
func (s *Service) ReadCSV(r io.Reader) ([]MintRequest, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	cols := map[string]int{"owner": 0, "label": 1, "mode": 2}
	width := 3
	first := true
	var out []MintRequest
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%w: csv line %d: %v", ErrInvalid, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		if first {
			first = false
			if isHeader(rec) {
				if cols, err = header(rec); err != nil {
					return nil, fmt.Errorf("csv line %d: %w", line, err)
				}
				width = len(rec)
				continue
			}
		}
		if len(rec) > width || len(rec) < 2 {
			return nil, fmt.Errorf("%w: csv line %d: want owner,label[,mode], got %d field(s)", ErrInvalid, line, len(rec))
		}
		cell := func(name string) string {
			i, ok := cols[name]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		req := MintRequest{Owner: cell("owner"), Label: cell("label"), Mode: Mode(cell("mode"))}
		if err := s.checkRow(&req); err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		out = append(out, req)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: csv has no rows", ErrInvalid)
	}
	return out, nil
}

// checkRow validates a row, normalising the owner and keeping an empty mode.
func (s *Service) checkRow(req *MintRequest) error {
	if req.Label == "" {
		return fmt.Errorf("%w: empty label", ErrInvalid)
	}
	n := *req
	if err := s.normalize(&n); err != nil {
		return err
	}
	if req.Mode != "" {
		req.Mode = n.Mode
	}
	req.Owner, req.Label = n.Owner, n.Label
	return nil
}

// isHeader reports whether a row names the columns: one of its cells is
// "owner" (which no phone number is).
func isHeader(rec []string) bool {
	for _, c := range rec {
		if strings.EqualFold(strings.TrimSpace(c), "owner") {
			return true
		}
	}
	return false
}

func blank(rec []string) bool {
	for _, c := range rec {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func header(rec []string) (map[string]int, error) {
	cols := map[string]int{}
	for i, c := range rec {
		name := strings.ToLower(strings.TrimSpace(c))
		switch name {
		case "owner", "label", "mode":
		default:
			return nil, fmt.Errorf("%w: unknown column %q: want owner, label and optionally mode", ErrInvalid, c)
		}
		if _, dup := cols[name]; dup {
			return nil, fmt.Errorf("%w: column %q twice", ErrInvalid, name)
		}
		cols[name] = i
	}
	if _, ok := cols["label"]; !ok {
		return nil, fmt.Errorf("%w: header lacks a label column", ErrInvalid)
	}
	return cols, nil
}
