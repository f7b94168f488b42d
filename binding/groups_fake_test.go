package binding

import (
	"context"

	"github.com/privnum/privnum/reject"
)

// FakeGroups serves fixed groups (name → members) to AXG bindings in tests.
type FakeGroups map[string][]string

type fakeGroups = FakeGroups

// Members returns the group's members at version 1.
func (g FakeGroups) Members(_ context.Context, name string) ([]string, int64, error) {
	m, ok := g[name]
	if !ok {
		return nil, 0, &reject.FieldError{Field: "group", Reason: "no such group", Err: ErrInvalid}
	}
	return m, 1, nil
}

// Attach does nothing: the members never change.
func (g FakeGroups) Attach(context.Context, string, string) error { return nil }
