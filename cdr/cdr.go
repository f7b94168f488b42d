// Package cdr keeps call detail records: one record per call, with the
// parties masked, in a capped Redis stream.
package cdr

import (
	"context"
	"encoding/json"
	"fmt"
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
	// (axb, axn, axg); empty when no binding did.
	Mode        string      `json:"mode,omitempty"`
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
	Recording   string      `json:"recording,omitempty"`
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

// Add appends a record.
func (s *Store) Add(ctx context.Context, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode call record: %w", err)
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
	return out, nil
}
