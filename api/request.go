package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// readBody reads the request body within the size limit and checks its
// Content-Type. Nothing has happened yet when it refuses a request.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, mode bodyMode) ([]byte, *Problem) {
	if mode == noBody {
		return nil, nil
	}
	limit := s.cfg.MaxBodyBytes
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p := problem(kTooLarge, fmt.Sprintf("the request body exceeds %d bytes", limit))
			p.MaxBytes = limit
			return nil, p
		}
		return nil, problem(kMalformed, "the request body could not be read: "+err.Error())
	}
	if len(b) == 0 {
		if mode == jsonBody {
			return nil, problem(kMalformed, "the request body is empty: want a JSON object")
		}
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		if ct == "" {
			ct = "none"
		}
		return nil, problem(kMediaType, fmt.Sprintf("Content-Type %q: want application/json", ct))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, problem(kMediaType, fmt.Sprintf("charset %q: want utf-8", cs))
	}
	return b, nil
}

// decode parses body, a JSON object, into dst: unknown fields, values of
// the wrong type and anything after the object are refused.
func decode(body []byte, dst any) error {
	if len(body) == 0 {
		return nil // an optional body that was not sent
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem(kMalformed, "unexpected data after the JSON object")
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return jsonProblem(err)
	}
	if name := unknownField(doc, reflect.TypeOf(dst), ""); name != "" {
		return fieldProblem(kUnknownField, name, fmt.Sprintf("unknown field %q: see the request schema in /openapi.json", name))
	}
	return nil
}

// unknownField returns the path (a.b) of the first member of doc, a decoded
// JSON value, that type t does not have, matched as encoding/json matches
// names; "" when every member is known.
func unknownField(doc any, t reflect.Type, prefix string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := doc.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return "" // a map, or an interface: every key is welcome
		}
		names := make([]string, 0, len(v))
		for k := range v {
			names = append(names, k)
		}
		slices.Sort(names) // the same answer for the same body
		for _, k := range names {
			ft, ok := jsonField(t, k)
			if !ok {
				return prefix + k
			}
			if name := unknownField(v[k], ft, prefix+k+"."); name != "" {
				return name
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return ""
		}
		for _, e := range v {
			if name := unknownField(e, t.Elem(), prefix); name != "" {
				return name
			}
		}
	}
	return ""
}

// jsonField finds the field of struct t that the JSON member name decodes
// into: its tag name or Go name, an exact match first, then any case.
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	var fold reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && tag == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if ft, ok := jsonField(et, name); ok {
					return ft, true
				}
				continue
			}
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type, true
		}
		if fold == nil && strings.EqualFold(tag, name) {
			fold = f.Type
		}
	}
	return fold, fold != nil
}

func jsonProblem(err error) *Problem {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return problem(kMalformed, fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(kMalformed, "the JSON object is cut short")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return problem(kMalformed, fmt.Sprintf("the body is a JSON %s: want a JSON object", typ.Value))
		}
		return fieldProblem(kMalformed, typ.Field, fmt.Sprintf("field %s: got a JSON %s, want %s", typ.Field, typ.Value, jsonType(typ.Type.Kind().String())))
	}
	return problem(kMalformed, "invalid JSON: "+err.Error())
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return goKind
}
