package dialq_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/privnum/privnum/dialq"
)

func TestRouter(t *testing.T) {
	errBusy := errors.New("busy")
	var placed []string
	r := dialq.Router{
		"callback": func(_ context.Context, id string) error { placed = append(placed, "callback:"+id); return nil },
		"flash":    func(_ context.Context, id string) error { placed = append(placed, "flash:"+id); return errBusy },
	}
	for _, tt := range []struct {
		job    dialq.Job
		want   error
		placed []string
	}{
		{dialq.Job{Kind: "callback", ID: "c1"}, nil, []string{"callback:c1"}},
		{dialq.Job{Kind: "flash", ID: "v1"}, errBusy, []string{"flash:v1"}},
		{dialq.Job{Kind: "fax", ID: "f1"}, dialq.ErrUnknownKind, nil},
	} {
		placed = nil
		err := r.Place(context.Background(), tt.job)
		if !errors.Is(err, tt.want) {
			t.Errorf("Place(%+v) = %v, want %v", tt.job, err, tt.want)
		}
		if !slices.Equal(placed, tt.placed) {
			t.Errorf("Place(%+v) placed %v, want %v", tt.job, placed, tt.placed)
		}
	}
}
