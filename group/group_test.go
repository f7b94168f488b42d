package group_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/group"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
	"github.com/privnum/privnum/reject"
)

var cn = e164.Parser{Region: "CN"}

func fieldOf(err error) string {
	var fe *reject.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestGroupLifecycle(t *testing.T) {
	ctx := context.Background()
	g := group.New(redistest.Client(t), cn, group.Config{MaxMembers: 3})
	got, err := g.Create(ctx, "drivers", []string{"13600000001", "+8613600000001"})
	if err != nil || got.Size != 1 || got.Members[0] != "+8613600000001" || got.Version != 1 {
		t.Fatalf("Create = %+v, %v", got, err)
	}
	if _, err := g.Create(ctx, "drivers", nil); !errors.Is(err, group.ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	if got, err = g.Add(ctx, "drivers", []string{"13600000002", "13600000003"}); err != nil || got.Size != 3 || got.Version != 2 {
		t.Fatalf("Add = %+v, %v", got, err)
	}
	for _, tt := range []struct {
		name  string
		err   error
		want  error
		field string
	}{
		{"over the limit", func() error { _, err := g.Add(ctx, "drivers", []string{"13600000004"}); return err }(), group.ErrInvalid, "members"},
		{"bad number", func() error { _, err := g.Add(ctx, "drivers", []string{"12ab"}); return err }(), e164.ErrInvalid, "members"},
		{"remove a stranger", func() error {
			_, err := g.Remove(ctx, "drivers", []string{"13600000001", "13600000009"})
			return err
		}(), group.ErrInvalid, "members"},
		{"add to no group", func() error { _, err := g.Add(ctx, "nope", []string{"13600000001"}); return err }(), group.ErrNotFound, ""},
		{"bad name", func() error { _, err := g.Create(ctx, "a b", nil); return err }(), group.ErrInvalid, "name"},
		{"show no group", func() error { _, err := g.Get(ctx, "nope"); return err }(), group.ErrNotFound, ""},
		{"delete no group", g.Delete(ctx, "nope"), group.ErrNotFound, ""},
	} {
		if !errors.Is(tt.err, tt.want) || fieldOf(tt.err) != tt.field {
			t.Errorf("%s: %v; want %v naming %q", tt.name, tt.err, tt.want, tt.field)
		}
	}
	// Refusals stored nothing.
	if got, _ = g.Get(ctx, "drivers"); got.Size != 3 || got.Version != 2 {
		t.Fatalf("after refusals: %+v", got)
	}
	if got, err = g.Remove(ctx, "drivers", []string{"13600000003"}); err != nil || got.Size != 2 || got.Version != 3 {
		t.Fatalf("Remove = %+v, %v", got, err)
	}
	if err := g.Delete(ctx, "drivers"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Get(ctx, "drivers"); !errors.Is(err, group.ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}

// TestBindingsFollowTheGroup: an AXG binding's copy of its group follows
// every change, so a call checks membership as the group is now; a group
// in use cannot be deleted.
func TestBindingsFollowTheGroup(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	g := group.New(rdb, cn, group.Config{})
	p := pool.New(rdb, cn)
	if _, err := p.Add(ctx, []pool.Entry{{Number: "17000000000"}, {Number: "17000000001"}}); err != nil {
		t.Fatal(err)
	}
	svc := binding.New(rdb, p, cn, binding.Config{Quarantine: time.Hour, Groups: g})
	if _, err := svc.Create(ctx, binding.Request{Mode: binding.AXG, A: "13800000001", Group: "nope", TTL: time.Hour}); !errors.Is(err, group.ErrNotFound) || fieldOf(err) != "group" {
		t.Fatalf("AXG on no group: %v; want not found naming group", err)
	}
	if _, err := g.Create(ctx, "riders", []string{"13600000001"}); err != nil {
		t.Fatal(err)
	}
	owner, m1, m2 := "+8613800000001", "+8613600000001", "+8613600000002"
	b1, err := svc.Create(ctx, binding.Request{Mode: binding.AXG, A: owner, Group: "riders", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := svc.Create(ctx, binding.Request{Mode: binding.AXG, A: "13800000002", Group: "riders", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reaches := func(b binding.Binding, caller string) bool {
		t.Helper()
		r, err := svc.Resolve(ctx, b.X, caller)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != binding.Connect && r.Reason != binding.ReasonNotInGroup {
			t.Fatalf("Resolve(%s): %+v", caller, r)
		}
		return r.Action == binding.Connect
	}
	for _, b := range []binding.Binding{b1, b2} {
		if !reaches(b, m1) || reaches(b, m2) {
			t.Fatalf("%s: before changes", b.ID)
		}
	}
	if _, err := g.Add(ctx, "riders", []string{m2}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []binding.Binding{b1, b2} {
		if !reaches(b, m2) {
			t.Errorf("%s: added member refused", b.ID)
		}
	}
	if _, err := g.Remove(ctx, "riders", []string{m1}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []binding.Binding{b1, b2} {
		if reaches(b, m1) || !reaches(b, m2) {
			t.Errorf("%s: after removing %s", b.ID, m1)
		}
	}
	if err := g.Delete(ctx, "riders"); !errors.Is(err, group.ErrInUse) {
		t.Fatalf("Delete while used: %v", err)
	}
	shown, _ := g.Get(ctx, "riders")
	if len(shown.Bindings) != 2 {
		t.Errorf("Get shows bindings %v", shown.Bindings)
	}
	// A copy that fell behind (a change it missed) is copied whole.
	if err := rdb.HSet(ctx, "pn:{"+b1.X+"}:mode", "gver", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Add(ctx, "riders", []string{m1}); err != nil {
		t.Fatal(err)
	}
	if !reaches(b1, m1) || !reaches(b1, m2) {
		t.Errorf("stale copy not brought up to date")
	}
}
