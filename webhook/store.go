package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keys; all share the {webhooks} hash tag.
const (
	hooksKey = "pn:{webhooks}:hooks"
	dueKey   = "pn:{webhooks}:due"
	deadKey  = "pn:{webhooks}:dead"
)

func hookKey(id string) string { return "pn:{webhooks}:h:" + id }

// Hook is a registered webhook. It never holds the secret.
type Hook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Events are the event types delivered, or ["*"] for all.
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
}

// wants reports whether the hook subscribes to event type typ.
func (h Hook) wants(typ string) bool {
	return slices.Contains(h.Events, AllEvents) || slices.Contains(h.Events, typ)
}

// Store keeps the registered webhooks.
type Store struct {
	rdb redis.UniversalClient
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb}
}

// CheckURL accepts an absolute http or https URL with a host and no
// fragment, of at most 2048 bytes.
func CheckURL(raw string) error {
	if len(raw) > 2048 {
		return fmt.Errorf("%w: url longer than 2048 bytes", ErrInvalid)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: url %q: %v", ErrInvalid, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: url %q: want an absolute http:// or https:// URL without a fragment", ErrInvalid, raw)
	}
	return nil
}

// CheckEvents normalises an event list: known types or "*", no duplicates;
// empty means ["*"].
func CheckEvents(events []string) ([]string, error) {
	var out []string
	for _, e := range events {
		e = strings.TrimSpace(e)
		if e != AllEvents && !slices.Contains(EventTypes, e) {
			return nil, fmt.Errorf("%w: event type %q: want %s or %q", ErrInvalid, e, strings.Join(EventTypes, ", "), AllEvents)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 || slices.Contains(out, AllEvents) {
		return []string{AllEvents}, nil
	}
	return out, nil
}

// Add registers a webhook for events (empty: all) and returns it with its
// signing secret, which is shown only now.
func (s *Store) Add(ctx context.Context, rawURL string, events []string) (Hook, string, error) {
	if err := CheckURL(rawURL); err != nil {
		return Hook{}, "", err
	}
	events, err := CheckEvents(events)
	if err != nil {
		return Hook{}, "", err
	}
	var raw [32]byte
	rand.Read(raw[:])
	secret := "whsec_" + base64.RawURLEncoding.EncodeToString(raw[:])
	h := Hook{ID: randomID("wh_", 8), URL: rawURL, Events: events, CreatedAt: time.UnixMilli(time.Now().UnixMilli()).UTC()}
	_, err = s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, hookKey(h.ID), "url", h.URL, "events", strings.Join(events, ","), "secret", secret,
			"created", strconv.FormatInt(h.CreatedAt.UnixMilli(), 10))
		pipe.SAdd(ctx, hooksKey, h.ID)
		return nil
	})
	if err != nil {
		return Hook{}, "", fmt.Errorf("add webhook: %w", err)
	}
	return h, secret, nil
}

func hookFrom(id string, m map[string]string) Hook {
	created, _ := strconv.ParseInt(m["created"], 10, 64)
	return Hook{ID: id, URL: m["url"], Events: strings.Split(m["events"], ","), CreatedAt: time.UnixMilli(created).UTC()}
}

// get returns a hook and its secret.
func (s *Store) get(ctx context.Context, id string) (Hook, string, error) {
	m, err := s.rdb.HGetAll(ctx, hookKey(id)).Result()
	if err != nil {
		return Hook{}, "", fmt.Errorf("get webhook %s: %w", id, err)
	}
	if len(m) == 0 {
		return Hook{}, "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return hookFrom(id, m), m["secret"], nil
}

// Get returns one webhook.
func (s *Store) Get(ctx context.Context, id string) (Hook, error) {
	h, _, err := s.get(ctx, id)
	return h, err
}

// List returns every webhook, oldest first.
func (s *Store) List(ctx context.Context) ([]Hook, error) {
	ids, err := s.rdb.SMembers(ctx, hooksKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, hookKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	out := make([]Hook, 0, len(ids))
	for i, id := range ids {
		if m := cmds[i].Val(); len(m) > 0 {
			out = append(out, hookFrom(id, m))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Remove deletes a webhook; its pending deliveries are dropped when due.
func (s *Store) Remove(ctx context.Context, id string) error {
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		del = pipe.Del(ctx, hookKey(id))
		pipe.SRem(ctx, hooksKey, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove webhook %s: %w", id, err)
	}
	if del.Val() == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return nil
}

// errGone marks a delivery whose webhook was removed.
var errGone = errors.New("webhook removed")
