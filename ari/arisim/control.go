package arisim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// mountControl adds the /_sim/ endpoints documented in the package doc.
func (s *Sim) mountControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/calls", s.ctlCall)
	mux.HandleFunc("POST /_sim/endpoints", s.ctlEndpoint)
	mux.HandleFunc("GET /_sim/channels", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Channels())
	})
	mux.HandleFunc("GET /_sim/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.History())
	})
	mux.HandleFunc("GET /_sim/channels/{id}", func(w http.ResponseWriter, r *http.Request) {
		ci, ok := s.Channel(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, ctlError{Error: ErrChannelNotFound.Error()})
			return
		}
		writeJSON(w, http.StatusOK, ci)
	})
	mux.HandleFunc("POST /_sim/channels/{id}/hangup", s.ctlHangup)
	mux.HandleFunc("POST /_sim/channels/{id}/dtmf", s.ctlDTMF)
	mux.HandleFunc("POST /_sim/channels/{id}/answer", func(w http.ResponseWriter, r *http.Request) {
		ctlResult(w, s.AnswerFromPeer(r.PathValue("id")))
	})
	mux.HandleFunc("GET /_sim/identities", func(w http.ResponseWriter, r *http.Request) {
		n := r.URL.Query().Get("number")
		writeJSON(w, http.StatusOK, map[string]any{"number": n, "seen": nonNil(s.IdentitiesSeenBy(n))})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /_sim/drop", func(w http.ResponseWriter, r *http.Request) {
		s.DropConnections()
		w.WriteHeader(http.StatusNoContent)
	})
}

type ctlError struct {
	Error     string `json:"error"`
	ChannelID string `json:"channel_id,omitempty"`
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

func ctlResult(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrChannelNotFound):
		writeJSON(w, http.StatusNotFound, ctlError{Error: err.Error()})
	default:
		writeJSON(w, http.StatusConflict, ctlError{Error: err.Error()})
	}
}

func (s *Sim) ctlCall(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From       string `json:"from"`
		Exten      string `json:"exten"`
		App        string `json:"app"`
		AppArgs    string `json:"app_args"`
		Trunk      string `json:"trunk"`
		CallerName string `json:"caller_name"`
	}
	if err := decodeBody(r, &req); err != nil || req.From == "" || req.Exten == "" {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: `body must be {"from": ..., "exten": ...}`})
		return
	}
	var opts []CallOption
	if req.App != "" {
		opts = append(opts, WithApp(req.App))
	}
	if req.AppArgs != "" {
		opts = append(opts, WithAppArgs(req.AppArgs))
	}
	if req.Trunk != "" {
		opts = append(opts, WithTrunk(req.Trunk))
	}
	if req.CallerName != "" {
		opts = append(opts, WithCallerName(req.CallerName))
	}
	id, err := s.InboundCall(r.Context(), req.From, req.Exten, opts...)
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, map[string]string{"channel_id": id})
	case errors.Is(err, ErrNoApplication):
		writeJSON(w, http.StatusConflict, ctlError{Error: err.Error(), ChannelID: id})
	default:
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
	}
}

func (s *Sim) ctlEndpoint(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Pattern       string `json:"pattern"`
		Default       bool   `json:"default"`
		Outcome       string `json:"outcome"`
		RingAfterMS   int    `json:"ring_after_ms"`
		AfterMS       int    `json:"after_ms"`
		NoRinging     bool   `json:"no_ringing"`
		Cause         int    `json:"cause"`
		HangupAfterMS int    `json:"hangup_after_ms"`
	}
	if err := decodeBody(r, &req); err != nil || (req.Pattern == "" && !req.Default) {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: `body must be {"pattern": ..., "outcome": ...}`})
		return
	}
	o, err := ParseOutcome(req.Outcome)
	if req.Outcome == "" {
		o, err = OutcomeAnswer, nil
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
		return
	}
	b := Behavior{
		Outcome:     o,
		RingAfter:   time.Duration(req.RingAfterMS) * time.Millisecond,
		After:       time.Duration(req.AfterMS) * time.Millisecond,
		NoRinging:   req.NoRinging,
		Cause:       req.Cause,
		HangupAfter: time.Duration(req.HangupAfterMS) * time.Millisecond,
	}
	if req.Default {
		s.SetDefaultBehavior(b)
	} else {
		s.SetEndpoint(req.Pattern, b)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) ctlDTMF(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Digits string `json:"digits"`
		GapMS  int    `json:"gap_ms"`
	}
	if err := decodeBody(r, &req); err != nil || req.Digits == "" {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: `body must be {"digits": "1234#", "gap_ms": N}`})
		return
	}
	err := s.SendDTMF(r.PathValue("id"), req.Digits, time.Duration(req.GapMS)*time.Millisecond)
	if err != nil && !errors.Is(err, ErrChannelNotFound) && !errors.Is(err, ErrInvalidState) {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: err.Error()})
		return
	}
	ctlResult(w, err)
}

func (s *Sim) ctlHangup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Cause int `json:"cause"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, ctlError{Error: `body must be {"cause": N}`})
		return
	}
	ctlResult(w, s.HangupFromPeer(r.PathValue("id"), req.Cause))
}
