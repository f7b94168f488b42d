package api

import (
	"errors"
	"testing"
)

func TestDecodeNamesUnknownFields(t *testing.T) {
	type inner struct {
		Number string `json:"number"`
	}
	type Base struct {
		ID string `json:"id"`
	}
	type req struct {
		Base
		A      string            `json:"a"`
		TTL    int               `json:"ttl_seconds,omitempty"`
		Skip   string            `json:"-"`
		Party  *inner            `json:"party"`
		List   []inner           `json:"list"`
		Labels map[string]string `json:"labels"`
		Plain  string
	}
	tests := []struct {
		name, body, field string
	}{
		{"all known", `{"id":"1","a":"x","ttl_seconds":3,"party":{"number":"1"},"list":[{"number":"2"}],"labels":{"any":"v"},"Plain":"p"}`, ""},
		{"case folded", `{"A":"x","TTL_SECONDS":3,"plain":"p"}`, ""},
		{"top level", `{"a":"x","ttl":"2h"}`, "ttl"},
		{"ignored field", `{"Skip":"x"}`, "Skip"},
		{"nested object", `{"party":{"number":"1","name":"n"}}`, "party.name"},
		{"in a list", `{"list":[{"number":"1"},{"nmbr":"2"}]}`, "list.nmbr"},
		{"null nested", `{"party":null}`, ""},
		{"first in order", `{"zz":1,"bb":2}`, "bb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst req
			err := decode([]byte(tt.body), &dst)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("decode: %v, want a problem", err)
			}
			if p.Field != tt.field {
				t.Fatalf("problem names field %q, want %q (%s)", p.Field, tt.field, p.Detail)
			}
		})
	}
}
