package arisim

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"
)

// playback is one queued or playing playback. Guarded by Sim.mu.
type playback struct {
	id       string
	media    []string
	index    int // the media playing (res_stasis_playback's media_index)
	lang     string
	state    string // queued, playing, continuing, done
	canceled bool   // stopped while queued: it reports done when its turn comes
	ch       *channel
	br       *bridge
	timer    *time.Timer
	started  time.Time
	finished time.Time
}

func (pb *playback) stopTimer() {
	if pb.timer != nil {
		pb.timer.Stop()
		pb.timer = nil
	}
}

func (pb *playback) targetURI() string {
	if pb.ch != nil {
		return "channel:" + pb.ch.id
	}
	return "bridge:" + pb.br.id
}

// wire is stasis_app_playback_to_json: the media playing and, unless it is
// the last one, the next (also in the final event of a playback stopped
// before its last media).
func (pb *playback) wire() wirePlayback {
	w := wirePlayback{ID: pb.id, TargetURI: pb.targetURI(), Language: pb.lang, State: pb.state}
	if pb.canceled {
		w.State = "done" // state_to_string(STASIS_PLAYBACK_STATE_CANCELED)
	}
	if pb.index < len(pb.media) {
		w.MediaURI = pb.media[pb.index]
	}
	if pb.index+1 < len(pb.media) {
		w.NextMediaURI = pb.media[pb.index+1]
	}
	return w
}

// playbackApps: the applications that see a playback's events.
func (s *Sim) playbackApps(pb *playback) []string {
	if pb.ch != nil {
		return s.chanApps(pb.ch)
	}
	return pb.br.subs
}

// mediaDuration is how long one media URI plays; ok is false for media
// that play until stopped (tones).
func (s *Sim) mediaDuration(m string) (time.Duration, bool) {
	if d, ok := s.opts.MediaDurations[m]; ok {
		return d, true
	}
	if strings.HasPrefix(m, "tone:") {
		return 0, false
	}
	return s.opts.PlaybackDuration, true
}

// queuePlayback adds a playback to its target and starts it when nothing
// else plays there. Playbacks on one target play one after the other.
func (s *Sim) queuePlayback(pb *playback) {
	s.playbacks[pb.id] = pb
	var queue *[]*playback
	if pb.ch != nil {
		queue = &pb.ch.playbacks
	} else {
		queue = &pb.br.playbacks
		s.retech(pb.br)
	}
	*queue = append(*queue, pb)
	if len(*queue) == 1 {
		// Started from a timer so that, as in the traces, the 201 usually
		// reaches the application before PlaybackStarted.
		s.afterFunc(0, func() {
			if pb.state == "queued" {
				s.startPlayback(pb)
			}
		})
	}
}

// startPlayback starts a playback's turn on its target. One stopped while
// queued reports done at once (playback_first_update on a canceled
// playback).
func (s *Sim) startPlayback(pb *playback) {
	pb.started = s.now()
	if pb.canceled {
		s.finishPlayback(pb, "done")
		return
	}
	s.playMedia(pb)
}

// playMedia plays pb.media[pb.index]: PlaybackStarted, then after the
// media's length PlaybackContinuing and the next media, or PlaybackFinished
// after the last one.
func (s *Sim) playMedia(pb *playback) {
	pb.state = "playing"
	s.emit(s.playbackApps(pb), &evPlayback{Type: "PlaybackStarted", Timestamp: s.ts(), Playback: pb.wire()})
	d, ok := s.mediaDuration(pb.media[pb.index])
	if !ok {
		return // a tone: until stopped
	}
	pb.timer = s.afterFunc(d, func() {
		if pb.state != "playing" {
			return
		}
		pb.timer = nil
		if pb.index+1 >= len(pb.media) {
			s.finishPlayback(pb, "done")
			return
		}
		pb.state = "continuing"
		s.emit(s.playbackApps(pb), &evPlayback{Type: "PlaybackContinuing", Timestamp: s.ts(), Playback: pb.wire()})
		pb.index++
		s.playMedia(pb)
	})
}

// finishPlayback ends a playback (completed, stopped, or its target gone)
// and starts the next one queued on the same target.
func (s *Sim) finishPlayback(pb *playback, state string) {
	if pb.state == "done" {
		return
	}
	pb.stopTimer()
	pb.state = state
	pb.finished = s.now()
	s.emit(s.playbackApps(pb), &evPlayback{Type: "PlaybackFinished", Timestamp: s.ts(), Playback: pb.wire()})
	delete(s.playbacks, pb.id)
	s.donePlaybacks.put(pb.id, pb.info())
	var queue *[]*playback
	if pb.ch != nil {
		queue = &pb.ch.playbacks
	} else {
		queue = &pb.br.playbacks
	}
	for i, x := range *queue {
		if x == pb {
			*queue = append((*queue)[:i], (*queue)[i+1:]...)
			break
		}
	}
	if pb.br != nil {
		s.retech(pb.br)
	}
	if len(*queue) > 0 && (*queue)[0].state == "queued" {
		next := (*queue)[0]
		if pb.ch == nil || !pb.ch.destroyed {
			s.startPlayback(next)
		}
	}
}

// afterFunc runs fn under the lock after d (scaled) unless the simulator is
// closed by then. Called with the lock held.
func (s *Sim) afterFunc(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(s.scale(d), func() {
		s.mu.Lock()
		defer s.unlockNotify()
		if s.closed {
			return
		}
		fn()
	})
}

// stopChannelMedia ends a channel's playbacks and recording (hangup).
func (s *Sim) stopChannelMedia(ch *channel) {
	s.dropPlaybacks(ch.playbacks)
	ch.playbacks = nil
	if ch.recording != nil {
		s.finishRecording(ch.recording, "done")
	}
}

// dropPlaybacks ends every playback of a target that goes away: the playing
// one finishes, the queued ones are dropped without events.
func (s *Sim) dropPlaybacks(list []*playback) {
	for _, pb := range list {
		if pb.state == "done" {
			continue
		}
		delete(s.playbacks, pb.id)
		if pb.state == "queued" {
			pb.state = "done"
			continue
		}
		pb.stopTimer()
		pb.state = "done"
		pb.finished = s.now()
		s.emit(s.playbackApps(pb), &evPlayback{Type: "PlaybackFinished", Timestamp: s.ts(), Playback: pb.wire()})
		s.donePlaybacks.put(pb.id, pb.info())
	}
}

// recording is one live recording. Guarded by Sim.mu.
type recording struct {
	name     string
	format   string
	state    string // queued, recording, done, canceled
	ch       *channel
	br       *bridge
	timer    *time.Timer
	started  time.Time
	finished time.Time
}

func (rec *recording) stopTimer() {
	if rec.timer != nil {
		rec.timer.Stop()
		rec.timer = nil
	}
}

func (rec *recording) targetURI() string {
	if rec.ch != nil {
		return "channel:" + rec.ch.id
	}
	return "bridge:" + rec.br.id
}

func (rec *recording) wire() wireLiveRecording {
	w := wireLiveRecording{Name: rec.name, Format: rec.format, TargetURI: rec.targetURI(), State: rec.state}
	if rec.state == "done" || rec.state == "canceled" {
		d := int(rec.finished.Sub(rec.started) / time.Second)
		w.Duration, w.TalkingDuration, w.SilenceDuration = intPtr(d), intPtr(d), intPtr(0)
	}
	return w
}

func (s *Sim) recordingApps(rec *recording) []string {
	if rec.ch != nil {
		return s.chanApps(rec.ch)
	}
	return rec.br.subs
}

// knownFormat reports whether the simulated Asterisk can record in format.
func knownFormat(format string) bool {
	switch format {
	case "wav", "wav16", "WAV", "gsm", "ulaw", "alaw", "sln", "sln16", "g722", "g729", "ogg":
		return true
	}
	return false
}

// startRecording registers a live recording and starts it; maxDuration > 0
// stops it after that long.
func (s *Sim) startRecording(rec *recording, maxDuration time.Duration) {
	s.recordings[rec.name] = rec
	if rec.ch != nil {
		rec.ch.recording = rec
	} else {
		rec.br.recordings = append(rec.br.recordings, rec)
		s.retech(rec.br)
	}
	s.afterFunc(0, func() {
		if rec.state != "queued" {
			return
		}
		rec.state = "recording"
		rec.started = s.now()
		s.emit(s.recordingApps(rec), &evRecording{Type: "RecordingStarted", Timestamp: s.ts(), Recording: rec.wire()})
		if maxDuration > 0 {
			rec.timer = s.afterFunc(maxDuration, func() {
				if rec.state == "recording" {
					s.finishRecording(rec, "done")
				}
			})
		}
	})
}

// finishRecording ends a live recording: stopped, canceled, or its target
// gone.
func (s *Sim) finishRecording(rec *recording, state string) {
	if rec.state == "done" || rec.state == "canceled" {
		return
	}
	rec.stopTimer()
	if rec.started.IsZero() {
		rec.started = s.now()
	}
	rec.state = state
	rec.finished = s.now()
	s.emit(s.recordingApps(rec), &evRecording{Type: "RecordingFinished", Timestamp: s.ts(), Recording: rec.wire()})
	delete(s.recordings, rec.name)
	s.doneRecordings.put(rec.name, rec.info())
	// A finished recording is kept as a stored recording (with
	// ifExists=overwrite, in place of the old one); a canceled one's file
	// is deleted.
	if state == "done" {
		s.stored[rec.name] = &storedRecording{format: rec.format, length: rec.finished.Sub(rec.started)}
	} else {
		delete(s.stored, rec.name)
	}
	if rec.ch != nil {
		rec.ch.recording = nil
	} else {
		for i, x := range rec.br.recordings {
			if x == rec {
				rec.br.recordings = append(rec.br.recordings[:i], rec.br.recordings[i+1:]...)
				break
			}
		}
		s.retech(rec.br)
	}
}

// storedRecording is a finished recording; its file is made when it is
// fetched. Guarded by Sim.mu.
type storedRecording struct {
	format string
	length time.Duration
}

// recordingFile is the file of a recording of format that lasted d: for
// wav a valid WAV file of 8 kHz 16-bit mono silence, for other formats
// that many bytes of 8 kHz silence-like data.
func recordingFile(format string, d time.Duration) []byte {
	samples := int(d.Seconds()*8000) + 160
	if format != "wav" {
		return bytes.Repeat([]byte{0xff}, samples)
	}
	data := 2 * samples
	b := make([]byte, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	return b
}
