package dialq

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/redistest"
)

// FuzzTake decodes dial jobs from stream entries of any shape: an entry
// with a non-empty kind and id is committed and handed to the handler once,
// as the job it holds; any other (fields missing or empty, or the entry
// deleted while pending) is dropped; either way it leaves the stream and
// the consumer's pending list. A job queued with Enqueue comes back as it
// was queued. One Redis serves every input.
//
// fields chooses what the entry holds: 0 is Enqueue(kind, id); otherwise
// bit 0 adds kind, bit 1 id, bit 2 at, and bit 3 deletes the entry after
// it was read, before it is read again and taken.
func FuzzTake(f *testing.F) {
	for _, s := range []struct {
		fields              uint8
		kind, id, at, extra string
	}{
		{0, "callback", "cb1", "", ""},
		{0, "flash", "v-\x00\xff", "", ""},
		{7, "callback", "cb1", "1790000000000", ""},
		{7, "callback", "cb1", "soon", ""},
		{3, "flash", "v1", "", "x"},
		{1, "callback", "", "", ""},
		{2, "", "cb1", "", ""},
		{4, "", "", "1", "kind"},
		{15, "callback", "cb1", "1", ""},
	} {
		f.Add(s.fields, s.kind, s.id, s.at, s.extra)
	}
	rdb := redistest.Client(f)
	ctx := context.Background()
	q := NewWithConfig(rdb, Config{Logger: quiet})
	if err := q.createGroup(ctx); err != nil {
		f.Fatal(err)
	}
	var got []Job
	c := &runner{q: q, name: "fuzz", token: "fuzz/1", handle: func(_ context.Context, j Job) error {
		got = append(got, j)
		return nil
	}}
	f.Fuzz(func(t *testing.T, fields uint8, kind, id, at, extra string) {
		got = got[:0]
		start := time.Now()
		if fields&15 == 0 {
			if err := q.Enqueue(ctx, kind, id); err != nil {
				t.Fatal(err)
			}
		} else {
			var vals []any
			for i, kv := range [][2]string{{"kind", kind}, {"id", id}, {"at", at}} {
				if fields&(1<<i) != 0 {
					vals = append(vals, kv[0], kv[1])
				}
			}
			vals = append(vals, extra, "extra")
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Stream, Values: vals}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		m := readOne(t, rdb, ">")
		if fields&8 != 0 {
			if err := rdb.XDel(ctx, Stream, m.ID).Err(); err != nil {
				t.Fatal(err)
			}
			m = readOne(t, rdb, "0")
		}
		before := q.Stats()
		c.take(ctx, m)
		after := q.Stats()

		k, _ := m.Values["kind"].(string)
		i, _ := m.Values["id"].(string)
		switch {
		case k != "" && i != "":
			if len(got) != 1 || after.Placed != before.Placed+1 {
				t.Fatalf("entry %v: handled %v, placed %d -> %d; want it placed once", m.Values, got, before.Placed, after.Placed)
			}
			j := got[0]
			if j.Kind != k || j.ID != i {
				t.Fatalf("entry %v: job %+v", m.Values, j)
			}
			if fields&15 == 0 {
				if j.Kind != kind || j.ID != id || j.Queued.Before(start.Truncate(time.Millisecond)) || j.Queued.After(time.Now()) {
					t.Fatalf("Enqueue(%q, %q) at %v came back as %+v", kind, id, start, j)
				}
			} else if ms, _ := strconv.ParseInt(atOf(m), 10, 64); !j.Queued.Equal(time.UnixMilli(ms)) {
				t.Fatalf("entry %v: queued %v, want %v", m.Values, j.Queued, time.UnixMilli(ms))
			}
		default:
			if len(got) != 0 || after.Dropped != before.Dropped+1 {
				t.Fatalf("entry %v: handled %v, dropped %d -> %d; want it dropped", m.Values, got, before.Dropped, after.Dropped)
			}
		}
		if n, err := rdb.XLen(ctx, Stream).Result(); err != nil || n != 0 {
			t.Fatalf("stream length %d, %v after take, want 0", n, err)
		}
		if p, err := rdb.XPending(ctx, Stream, Group).Result(); err != nil || p.Count != 0 {
			t.Fatalf("pending %+v, %v after take, want none", p, err)
		}
	})
}

// atOf is the at field of m as take reads it.
func atOf(m redis.XMessage) string {
	s, _ := m.Values["at"].(string)
	return s
}

// readOne reads one entry of the stream as the fuzz consumer, from start.
func readOne(t *testing.T, rdb redis.UniversalClient, start string) redis.XMessage {
	t.Helper()
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: Group, Consumer: "fuzz", Streams: []string{Stream, start}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(res) != 1 || len(res[0].Messages) != 1 {
		t.Fatalf("read from %s: %v, %v", start, res, err)
	}
	return res[0].Messages[0]
}
