package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/cdr"
)

// Config tunes a Dispatcher. Zero fields take the defaults.
type Config struct {
	// Client sends the deliveries. Default: a client with a 10s timeout
	// that does not follow redirects (a 3xx counts as a failure).
	Client *http.Client
	// MaxAttempts bounds the attempts per delivery, the first included.
	// Default 10.
	MaxAttempts int
	// Backoff is the wait before the first retry; each further retry waits
	// twice as long (plus up to 10% jitter), up to MaxBackoff. Default 5s.
	Backoff time.Duration
	// MaxBackoff caps the wait between attempts. Default 1h.
	MaxBackoff time.Duration
	// PollInterval is how often Run looks for due deliveries when nothing
	// wakes it. Default 1s.
	PollInterval time.Duration
	// Workers is how many deliveries run at once. Default 4.
	Workers int
	// Lease is how long a claimed delivery is hidden from other
	// dispatchers; if this one dies, the delivery is retried after it.
	// It must exceed the client timeout. Default 2m.
	Lease time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Dispatcher queues events for the registered webhooks and delivers them.
// Several dispatchers (processes) may share one Redis.
type Dispatcher struct {
	store *Store
	cfg   Config
	log   *slog.Logger
	wake  chan struct{}
}

// NewDispatcher returns a Dispatcher delivering to the webhooks in s.
func NewDispatcher(s *Store, cfg Config) *Dispatcher {
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Dispatcher{store: s, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}
}

// delivery is one event on its way to one webhook, as queued in Redis.
type delivery struct {
	ID   string `json:"id"`
	Hook string `json:"hook"`
	// Failed counts the attempts made so far.
	Failed int             `json:"failed"`
	Event  json.RawMessage `json:"event"`
	Type   string          `json:"type"`
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// Publish queues ev for every webhook subscribed to its type. It returns
// once the deliveries are in Redis; Run sends them.
func (d *Dispatcher) Publish(ctx context.Context, ev Event) error {
	if ev.ID == "" || ev.Type == "" {
		return fmt.Errorf("%w: event without id or type", ErrInvalid)
	}
	hooks, err := d.store.List(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	var members []redis.Z
	now := float64(ms(time.Now()))
	for _, h := range hooks {
		if !h.wants(ev.Type) {
			continue
		}
		m, err := json.Marshal(delivery{ID: randomID("dlv_", 12), Hook: h.ID, Event: body, Type: ev.Type})
		if err != nil {
			return fmt.Errorf("encode delivery: %w", err)
		}
		members = append(members, redis.Z{Score: now, Member: m})
	}
	if len(members) == 0 {
		return nil
	}
	if err := d.store.rdb.ZAdd(ctx, dueKey, members...).Err(); err != nil {
		return fmt.Errorf("queue event %s: %w", ev.ID, err)
	}
	d.poke()
	return nil
}

// poke wakes Run without blocking.
func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// claimScript hands out up to ARGV[3] deliveries due by ARGV[1] and hides
// them until ARGV[2] (the lease).
var claimScript = redis.NewScript(`
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, v in ipairs(m) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], v) end
return m`)

// rescheduleScript replaces a claimed delivery by its next attempt, or
// moves it to the dead list when ARGV[4] is 1. It does nothing if the
// delivery is no longer queued.
//
// KEYS: 1 due, 2 dead. ARGV: 1 old member, 2 new member, 3 due ms, 4 dead.
var rescheduleScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[4] == '1' then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, 999)
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
end
return 1`)

// Run delivers queued events until ctx is done, then waits for the
// deliveries under way.
func (d *Dispatcher) Run(ctx context.Context) error {
	slots := make(chan struct{}, d.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	for {
		free := cap(slots) - len(slots)
		claimed := 0
		if free > 0 {
			now := time.Now()
			members, err := claimScript.Run(ctx, d.store.rdb, []string{dueKey}, ms(now), ms(now.Add(d.cfg.Lease)), free).StringSlice()
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				d.log.Warn("webhook queue unreadable", "err", err)
			}
			claimed = len(members)
			for _, m := range members {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.deliver(context.WithoutCancel(ctx), m)
					<-slots
					d.poke() // a slot is free: look for more
				}()
			}
		}
		if claimed > 0 && claimed == free {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// deliver makes one attempt and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, member string) {
	var dl delivery
	if err := json.Unmarshal([]byte(member), &dl); err != nil {
		d.log.Error("webhook delivery unreadable: dropped", "err", err)
		d.store.rdb.ZRem(ctx, dueKey, member)
		return
	}
	attempt := dl.Failed + 1
	log := d.log.With("webhook", dl.Hook, "delivery", dl.ID, "event", dl.Type, "attempt", attempt)
	status, err := d.send(ctx, dl, attempt)
	if errors.Is(err, errGone) {
		log.Info("webhook removed: delivery dropped")
		d.store.rdb.ZRem(ctx, dueKey, member)
		return
	}
	if err == nil {
		log.Info("webhook delivered", "status", status)
		if err := d.store.rdb.ZRem(ctx, dueKey, member).Err(); err != nil {
			log.Warn("webhook delivered but not dequeued: it will be sent again", "err", err)
		}
		return
	}
	dl.Failed = attempt
	next, _ := json.Marshal(dl)
	dead := attempt >= d.cfg.MaxAttempts
	wait := d.backoff(attempt)
	if err := rescheduleScript.Run(ctx, d.store.rdb, []string{dueKey, deadKey},
		member, next, ms(time.Now().Add(wait)), map[bool]string{true: "1", false: "0"}[dead]).Err(); err != nil {
		log.Warn("webhook retry not recorded: it will be retried after the lease", "err", err)
	}
	if dead {
		log.Error("webhook delivery failed for good", "status", status, "err", err)
		return
	}
	log.Warn("webhook delivery failed: will retry", "status", status, "err", err, "retry_in", wait.Round(time.Millisecond))
}

// backoff is the wait after the given failed attempt: Backoff doubling
// with each attempt, capped at MaxBackoff, plus up to 10% jitter.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	w := d.cfg.Backoff
	for i := 1; i < attempt && w < d.cfg.MaxBackoff; i++ {
		w *= 2
	}
	w = min(w, d.cfg.MaxBackoff)
	return w + rand.N(w/10+1)
}

// send POSTs the event to the hook once.
func (d *Dispatcher) send(ctx context.Context, dl delivery, attempt int) (int, error) {
	h, secret, err := d.store.get(ctx, dl.Hook)
	if errors.Is(err, ErrNotFound) {
		return 0, errGone
	}
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(dl.Event))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "privnum-webhook/1")
	req.Header.Set(SignatureHeader, Sign(secret, time.Now(), dl.Event))
	req.Header.Set("Privnum-Event", dl.Type)
	req.Header.Set("Privnum-Delivery", dl.ID)
	req.Header.Set("Privnum-Attempt", strconv.Itoa(attempt))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Recorder keeps call records; *cdr.Store and call.Recorder match it.
type Recorder interface {
	Add(ctx context.Context, r cdr.Record) error
}

// CallRecorder returns a Recorder that stores each record with next and
// then publishes its event (CallCompleted, or MessageRelayed for a relayed
// text message). A failed publish is logged, not
// returned: the record is kept either way.
func (d *Dispatcher) CallRecorder(next Recorder) Recorder {
	return callRecorder{next: next, d: d}
}

type callRecorder struct {
	next Recorder
	d    *Dispatcher
}

func (c callRecorder) Add(ctx context.Context, r cdr.Record) error {
	if err := c.next.Add(ctx, r); err != nil {
		return err
	}
	ev, ok, err := CallEvent(r)
	if ok {
		err = c.d.Publish(ctx, ev)
	}
	if err != nil {
		c.d.log.Warn("call event not published", "call", r.CallID, "err", err)
	}
	return nil
}

// Dead returns up to limit deliveries that ran out of attempts, newest
// first, as the events they carried.
func (d *Dispatcher) Dead(ctx context.Context, limit int64) ([]Event, error) {
	if limit <= 0 {
		limit = 100
	}
	raw, err := d.store.rdb.LRange(ctx, deadKey, 0, limit-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read dead webhook deliveries: %w", err)
	}
	out := make([]Event, 0, len(raw))
	for _, m := range raw {
		var dl delivery
		var ev Event
		if json.Unmarshal([]byte(m), &dl) == nil && json.Unmarshal(dl.Event, &ev) == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}
