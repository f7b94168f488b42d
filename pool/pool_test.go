package pool_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/privnum/privnum/e164"
	"github.com/privnum/privnum/internal/redistest"
	"github.com/privnum/privnum/pool"
)

func newPool(t *testing.T) *pool.Pool {
	return pool.New(redistest.Client(t), e164.Parser{Region: "CN"})
}

func TestAddListRetireRestore(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	n, err := p.Add(ctx, []pool.Entry{{Number: "17000000001", Area: "sh"}, {Number: "+86 170 0000 0000"}})
	if err != nil || n != 2 {
		t.Fatalf("Add = %d, %v", n, err)
	}
	n, err = p.Add(ctx, []pool.Entry{{Number: "17000000001", Area: "bj"}})
	if err != nil || n != 0 {
		t.Fatalf("re-Add = %d, %v", n, err)
	}
	if err := p.Retire(ctx, "17000000000"); err != nil {
		t.Fatal(err)
	}
	list, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []pool.Number{
		{Number: "+8617000000000", State: pool.Retired},
		{Number: "+8617000000001", Area: "bj", State: pool.Active},
	}
	if len(list) != len(want) {
		t.Fatalf("List = %+v", list)
	}
	for i := range want {
		if list[i].Number != want[i].Number || list[i].Area != want[i].Area || list[i].State != want[i].State || list[i].Added.IsZero() {
			t.Errorf("List[%d] = %+v, want %+v", i, list[i], want[i])
		}
	}
	snap, err := p.Snapshot(ctx)
	if err != nil || len(snap.Numbers) != 1 || snap.Numbers[0].Number != "+8617000000001" {
		t.Fatalf("Snapshot = %+v, %v", snap, err)
	}
	if err := p.Restore(ctx, "17000000000"); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Get(ctx, "17000000000"); got.State != pool.Active {
		t.Fatalf("after restore: %+v", got)
	}
	snap2, _ := p.Snapshot(ctx)
	if snap2.Version <= snap.Version || len(snap2.Numbers) != 2 {
		t.Fatalf("Snapshot after restore = %+v", snap2)
	}
}

func TestAddRefusesBadInputAndStoresNothing(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	tests := []struct {
		name    string
		entries []pool.Entry
		want    error
	}{
		{"bad number", []pool.Entry{{Number: "17000000001"}, {Number: "12ab"}}, e164.ErrInvalid},
		{"bad area", []pool.Entry{{Number: "17000000001", Area: "sh pd"}}, pool.ErrInvalidArea},
	}
	for _, tt := range tests {
		if _, err := p.Add(ctx, tt.entries); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if list, _ := p.List(ctx); len(list) != 0 {
		t.Fatalf("bad input stored %+v", list)
	}
	if err := p.Retire(ctx, "17000000009"); !errors.Is(err, pool.ErrNotFound) {
		t.Fatalf("Retire unknown: %v", err)
	}
}

func TestReadCSV(t *testing.T) {
	p := newPool(t)
	in := "number,area\n17000000000,sh\n\n# comment\n+8617000000001\n"
	got, err := p.ReadCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (pool.Entry{Number: "17000000000", Area: "sh"}) || got[1].Number != "+8617000000001" {
		t.Fatalf("ReadCSV = %+v", got)
	}
	_, err = p.ReadCSV(strings.NewReader("17000000000\nnope,sh\n"))
	if !errors.Is(err, e164.ErrInvalid) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad row error = %v", err)
	}
	if _, err := p.ReadCSV(strings.NewReader("17000000000,sh,extra\n")); err == nil {
		t.Fatal("three fields accepted")
	}
}

func TestReserveForMode(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	if _, err := p.Add(ctx, []pool.Entry{{Number: "17000000001", Mode: "axn"}, {Number: "17000000002"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Add(ctx, []pool.Entry{{Number: "17000000003"}, {Number: "17000000004", Mode: "axq"}}); !errors.Is(err, pool.ErrInvalidMode) {
		t.Fatalf("bad mode: %v, want ErrInvalidMode", err)
	}
	list, _ := p.List(ctx)
	if len(list) != 2 || list[0].Mode != "axn" || list[1].Mode != "" {
		t.Fatalf("List = %+v", list)
	}
	snap, _ := p.Snapshot(ctx)
	if len(snap.Numbers) != 2 || snap.Numbers[0].Mode != "axn" || len(snap.Held) != 2 || len(snap.Shared) != 2 {
		t.Fatalf("Snapshot = %+v", snap)
	}
	// Re-adding changes the reservation only when one is given; "any" clears it.
	for _, tt := range []struct{ mode, want string }{{"", "axn"}, {"axe", "axe"}, {pool.Unreserved, ""}} {
		if _, err := p.Add(ctx, []pool.Entry{{Number: "17000000001", Mode: tt.mode}}); err != nil {
			t.Fatal(err)
		}
		if n, _ := p.Get(ctx, "17000000001"); n.Mode != tt.want {
			t.Errorf("after Add with mode %q: reserved for %q, want %q", tt.mode, n.Mode, tt.want)
		}
	}
}
