// Package cdr keeps call detail records: one record per call, with the
// parties masked, in a capped Redis stream.
package cdr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/privnum/privnum/internal/store"
)

// Disposition is how a call ended.
type Disposition string

// Call dispositions.
const (
	// Answered: the called party answered and the two were bridged.
	Answered Disposition = "answered"
	// Busy: the called party was busy.
	Busy Disposition = "busy"
	// NoAnswer: the called party did not answer in time.
	NoAnswer Disposition = "no_answer"
	// Failed: the outbound leg could not be placed (congestion, unknown endpoint, ...).
	Failed Disposition = "failed"
	// Cancelled: the caller hung up before the called party answered.
	Cancelled Disposition = "cancelled"
	// Rejected: no binding, an expired binding or a direction not allowed.
	Rejected Disposition = "rejected"
	// Relayed means a text message was passed on to the other party.
	Relayed Disposition = "relayed"
)

// Record is one call's detail record. Caller and Callee are masked.
type Record struct {
	CallID string `json:"call_id"`
	// Kind is "callback" for calls privnum placed to both parties; empty
	// for inbound calls on a virtual number.
	Kind      string `json:"kind,omitempty"`
	BindingID string `json:"binding_id,omitempty"`
	// Mode is the mode of the binding that routed the call or message
	// (axb, axn, axg, axe); empty when no binding did.
	Mode string `json:"mode,omitempty"`
	// Extension is the AXE extension the call reached or tried (the last
	// one keyed), or the caller's own on the reply path.
	Extension   string      `json:"extension,omitempty"`
	X           string      `json:"x"`
	Caller      string      `json:"caller"`
	Callee      string      `json:"callee,omitempty"`
	Start       time.Time   `json:"start"`
	Answer      *time.Time  `json:"answer,omitempty"`
	End         time.Time   `json:"end"`
	Disposition Disposition `json:"disposition"`
	Reason      string      `json:"reason,omitempty"`
	HangupCause int         `json:"hangup_cause"`
	HangupBy    string      `json:"hangup_by,omitempty"`
	// Recording names the call's recording (an ARI stored recording).
	Recording string `json:"recording,omitempty"`
	// RecordingPrunedAt is when the recording was deleted (privnum
	// recordings prune); List fills it in.
	RecordingPrunedAt *time.Time `json:"recording_pruned_at,omitempty"`
	// Length is a text message's length in characters (kind "sms"); its
	// body is never stored.
	Length int `json:"length,omitempty"`
}

// Duration is how long the parties talked.
func (r Record) Duration() time.Duration {
	if r.Answer == nil {
		return 0
	}
	return r.End.Sub(*r.Answer)
}

// Store writes and reads call records.
type Store struct {
	rdb    redis.UniversalClient
	maxLen int64
}

// New returns a Store keeping about maxLen records (default 1,000,000).
func New(rdb redis.UniversalClient, maxLen int64) *Store {
	if maxLen <= 0 {
		maxLen = 1_000_000
	}
	return &Store{rdb: rdb, maxLen: maxLen}
}

// Recording index keys. A record in the stream cannot change, so what
// becomes of a call's recording is kept beside it: pn:rec:{CALL ID} (a
// hash: name, end, pruned_at) and pn:recs (a sorted set of call ids by the
// call's end, the recordings not yet pruned). The two are written by
// separate commands, never by one script: they are in different slots.
const recsKey = "pn:recs"

func recKey(callID string) string { return "pn:rec:{" + callID + "}" }

// ErrNoRecording means the call has no recording (or no such call).
var ErrNoRecording = errors.New("cdr: the call has no recording")

// RecordingRef is what the store knows of one call's recording.
type RecordingRef struct {
	CallID string
	// Name is the ARI stored recording's name.
	Name string
	// End is when the call ended.
	End time.Time
	// PrunedAt is when the recording was deleted; nil while it is kept.
	PrunedAt *time.Time
}

// Add appends a record; a record naming a recording also indexes it (see
// Recording, RecordingsEndedBefore).
func (s *Store) Add(ctx context.Context, r Record) error {
	r.RecordingPrunedAt = nil
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode call record: %w", err)
	}
	if r.Recording != "" {
		// Indexed first: a recording is never in the stream unindexed,
		// where prune could not find it.
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, recKey(r.CallID), "name", r.Recording, "end", r.End.UnixMilli())
			p.ZAdd(ctx, recsKey, redis.Z{Score: float64(r.End.UnixMilli()), Member: r.CallID})
			return nil
		})
		if err != nil {
			return fmt.Errorf("index recording of call %s: %w", r.CallID, err)
		}
	}
	err = s.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: store.CallsKey, MaxLen: s.maxLen, Approx: true,
		Values: []any{"r", data},
	}).Err()
	if err != nil {
		return fmt.Errorf("write call record %s: %w", r.CallID, err)
	}
	return nil
}

// List returns up to limit records, newest first.
func (s *Store) List(ctx context.Context, limit int64) ([]Record, error) {
	if limit <= 0 {
		limit = 100
	}
	msgs, err := s.rdb.XRevRangeN(ctx, store.CallsKey, "+", "-", limit).Result()
	if err != nil {
		return nil, fmt.Errorf("read call records: %w", err)
	}
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["r"].(string)
		var r Record
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("call record %s: %w", m.ID, err)
		}
		out = append(out, r)
	}
	return out, s.fillPruned(ctx, out)
}

// fillPruned sets RecordingPrunedAt on the records whose recording was
// pruned.
func (s *Store) fillPruned(ctx context.Context, recs []Record) error {
	cmds := map[int]*redis.StringCmd{}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range recs {
			if r.Recording != "" {
				cmds[i] = p.HGet(ctx, recKey(r.CallID), "pruned_at")
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read recording marks: %w", err)
	}
	for i, c := range cmds {
		if ms, err := c.Int64(); err == nil {
			t := time.UnixMilli(ms).UTC()
			recs[i].RecordingPrunedAt = &t
		}
	}
	return nil
}

// Recording returns the call's recording; ErrNoRecording when it has none.
func (s *Store) Recording(ctx context.Context, callID string) (RecordingRef, error) {
	h, err := s.rdb.HGetAll(ctx, recKey(callID)).Result()
	if err != nil {
		return RecordingRef{}, fmt.Errorf("read recording of call %s: %w", callID, err)
	}
	if h["name"] == "" {
		return RecordingRef{}, fmt.Errorf("call %s: %w", callID, ErrNoRecording)
	}
	return refOf(callID, h), nil
}

func refOf(callID string, h map[string]string) RecordingRef {
	ref := RecordingRef{CallID: callID, Name: h["name"]}
	if ms, err := strconv.ParseInt(h["end"], 10, 64); err == nil {
		ref.End = time.UnixMilli(ms).UTC()
	}
	if ms, err := strconv.ParseInt(h["pruned_at"], 10, 64); err == nil {
		t := time.UnixMilli(ms).UTC()
		ref.PrunedAt = &t
	}
	return ref
}

// RecordingsEndedBefore returns up to n recordings not yet pruned of calls
// that ended before t, oldest first.
func (s *Store) RecordingsEndedBefore(ctx context.Context, t time.Time, n int64) ([]RecordingRef, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, recsKey, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(t.UnixMilli(), 10), Count: n,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list recordings: %w", err)
	}
	out := make([]RecordingRef, 0, len(ids))
	for _, id := range ids {
		ref, err := s.Recording(ctx, id)
		if errors.Is(err, ErrNoRecording) {
			s.rdb.ZRem(ctx, recsKey, id) // an index entry without its hash
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// PrunedMarkTTL is how long the mark of a pruned recording is kept: the
// index of a recording that is gone does not grow forever.
const PrunedMarkTTL = 400 * 24 * time.Hour

// MarkPruned records that the call's recording was deleted at t, and takes
// it off the list RecordingsEndedBefore reads. Marking again keeps the
// first time. The mark itself goes after PrunedMarkTTL.
func (s *Store) MarkPruned(ctx context.Context, callID string, t time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, recKey(callID), "pruned_at", t.UnixMilli())
		p.Expire(ctx, recKey(callID), PrunedMarkTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark recording of call %s pruned: %w", callID, err)
	}
	if err := s.rdb.ZRem(ctx, recsKey, callID).Err(); err != nil {
		return fmt.Errorf("mark recording of call %s pruned: %w", callID, err)
	}
	return nil
}
