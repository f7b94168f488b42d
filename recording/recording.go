// Package recording serves and prunes the recordings of calls: the files
// Asterisk keeps as ARI stored recordings, which call records name (see
// cdr.Store.Recording). Fetching streams a call's file from Asterisk;
// pruning deletes old ones through ARI and marks their call records.
package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/privnum/privnum/ari"
	"github.com/privnum/privnum/cdr"
)

// Files is where the recordings are: Asterisk's stored recordings.
// *ari.Client implements it.
type Files interface {
	StoredRecording(ctx context.Context, name string) (ari.StoredRecording, error)
	StoredRecordingFile(ctx context.Context, name string) (io.ReadCloser, error)
	DeleteStoredRecording(ctx context.Context, name string) error
}

// Errors Open returns.
var (
	// ErrNoRecording: the call has no recording (or there is no such call),
	// or Asterisk no longer has it.
	ErrNoRecording = errors.New("recording: the call has no recording")
	// ErrPruned: the call's recording was deleted by Prune.
	ErrPruned = errors.New("recording: the call's recording was pruned")
)

// Service fetches and prunes call recordings.
type Service struct {
	files Files
	calls *cdr.Store
	log   *slog.Logger
}

// New returns a Service over the recordings in files, named by calls. A
// nil log discards.
func New(files Files, calls *cdr.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{files: files, calls: calls, log: log}
}

// File is an open recording.
type File struct {
	// Name and Format are the stored recording's.
	Name, Format string
	// ContentType is the media type of Format (see ContentType).
	ContentType string
	// Body is the file; the caller closes it.
	Body io.ReadCloser
}

// ContentType is the media type of a recording format: wav is audio/wav,
// gsm audio/x-gsm, and so on; application/octet-stream for formats
// without one.
func ContentType(format string) string {
	switch format {
	case "wav", "WAV", "wav16":
		return "audio/wav"
	case "gsm":
		return "audio/x-gsm"
	case "ulaw":
		return "audio/basic"
	case "alaw":
		return "audio/x-alaw-basic"
	case "sln":
		return "audio/L16;rate=8000"
	case "sln16":
		return "audio/L16;rate=16000"
	case "g722":
		return "audio/G722"
	case "g729":
		return "audio/G729"
	case "ogg":
		return "audio/ogg"
	}
	return "application/octet-stream"
}

// Open opens the recording of call callID.
func (s *Service) Open(ctx context.Context, callID string) (File, error) {
	ref, err := s.calls.Recording(ctx, callID)
	if errors.Is(err, cdr.ErrNoRecording) {
		return File{}, fmt.Errorf("call %s: %w", callID, ErrNoRecording)
	}
	if err != nil {
		return File{}, err
	}
	if ref.PrunedAt != nil {
		return File{}, fmt.Errorf("call %s: %w at %s", callID, ErrPruned, ref.PrunedAt.Format(time.RFC3339))
	}
	st, err := s.files.StoredRecording(ctx, ref.Name)
	if err == nil {
		var body io.ReadCloser
		if body, err = s.files.StoredRecordingFile(ctx, ref.Name); err == nil {
			return File{Name: st.Name, Format: st.Format, ContentType: ContentType(st.Format), Body: body}, nil
		}
	}
	if errors.Is(err, ari.ErrNotFound) {
		return File{}, fmt.Errorf("call %s: %w (Asterisk has no recording %s)", callID, ErrNoRecording, ref.Name)
	}
	return File{}, fmt.Errorf("call %s: recording: %w", callID, err)
}

// PruneResult counts what Prune did.
type PruneResult struct {
	// Deleted recordings were deleted through ARI.
	Deleted int `json:"deleted"`
	// Missing recordings were already gone from Asterisk; they are marked
	// pruned too.
	Missing int `json:"missing"`
}

// pruneBatch is how many recordings Prune reads from Redis at a time.
const pruneBatch = 200

// Prune deletes, through ARI, the recordings of calls that ended before
// cutoff, and marks each call record (cdr.Store.MarkPruned). It is
// idempotent: a recording already pruned is not touched again, one
// Asterisk no longer has is only marked. It stops at the first other
// error, keeping what it did.
func (s *Service) Prune(ctx context.Context, cutoff time.Time) (PruneResult, error) {
	var res PruneResult
	for {
		refs, err := s.calls.RecordingsEndedBefore(ctx, cutoff, pruneBatch)
		if err != nil {
			return res, err
		}
		if len(refs) == 0 {
			return res, nil
		}
		for _, ref := range refs {
			err := s.files.DeleteStoredRecording(ctx, ref.Name)
			switch {
			case errors.Is(err, ari.ErrNotFound):
				res.Missing++
			case err != nil:
				return res, fmt.Errorf("delete recording of call %s: %w", ref.CallID, err)
			default:
				res.Deleted++
			}
			if err := s.calls.MarkPruned(ctx, ref.CallID, time.Now()); err != nil {
				return res, err
			}
		}
	}
}

// RunDaily prunes the recordings older than olderThan now and then every
// day, until ctx is done; failures are logged and retried the next day.
func (s *Service) RunDaily(ctx context.Context, olderThan time.Duration) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		res, err := s.Prune(ctx, time.Now().Add(-olderThan))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("pruning recordings failed", "older_than", olderThan, "deleted", res.Deleted, "err", err)
		} else if res.Deleted+res.Missing > 0 {
			s.log.Info("recordings pruned", "older_than", olderThan, "deleted", res.Deleted, "missing", res.Missing)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
