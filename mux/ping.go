package mux

import (
	"context"
	"errors"
	"time"
)

// ErrPingBacklog is returned by Ping when too many of this side's pings are already waiting
// to be sent (the connection is not draining).
var ErrPingBacklog = errors.New("mux: too many pings waiting to be sent")

// pingTable tracks this side's pings that await their reply. Guarded by s.mu.
type pingTable struct {
	next uint32
	out  map[uint32]*pingWait
}

type pingWait struct {
	sent   time.Time
	done   chan struct{} // closed when answered
	rtt    time.Duration
	probes int  // startup probes still to send after this one
	tuning bool // a probe sent for window auto-tuning
}

func (t *pingTable) init() { t.out = make(map[uint32]*pingWait) }

// startPingLocked registers a ping and queues it; false (and nothing registered) when the
// ping backlog is full or the session stopped sending. Until it is answered or forgotten the
// ping counts as a wait on the peer, so the reply is read at once (readtoken.go). s.mu must be
// held.
func (s *Session) startPingLocked() (uint32, *pingWait, bool) {
	t := &s.pings
	t.next++
	id := t.next
	if !s.sched.pingLocked(id) {
		return 0, nil, false
	}
	w := &pingWait{sent: s.now(), done: make(chan struct{})}
	t.out[id] = w
	s.addWaiterLocked()
	return id, w, true
}

// forgetPingLocked drops the ping with id unless it was already answered. s.mu must be held.
func (s *Session) forgetPingLocked(id uint32) {
	if _, ok := s.pings.out[id]; ok {
		delete(s.pings.out, id)
		s.endWaitLocked(nil)
	}
}

// pingAnsweredLocked resolves the ping with value v, if it is ours (replies to pings never
// sent are ignored: nil), and feeds the RTT estimate. The caller tells Config.RTTObserver and
// then closes the returned wait's done channel, after releasing s.mu. s.mu must be held.
func (s *Session) pingAnsweredLocked(v uint32) *pingWait {
	w := s.pings.out[v]
	if w == nil {
		return nil
	}
	delete(s.pings.out, v)
	s.endWaitLocked(nil)
	w.rtt = s.now().Sub(w.sent)
	s.observeRTTLocked(w.rtt)
	if w.probes > 0 {
		s.probeRTTLocked(w.probes - 1)
	}
	if w.tuning {
		s.tuneProbe = false
	}
	return w
}

// observeRTTLocked folds a sample into the smoothed RTT (weight 1/8 for new samples, as TCP's
// SRTT in RFC 6298 §2; the first sample is taken as it is) and the minimum RTT. Window
// auto-tuning uses the minimum: a sample taken while data queues in front of the ping is
// inflated, and an inflated RTT would grow windows, and with them the queues, further. s.mu
// must be held.
func (s *Session) observeRTTLocked(d time.Duration) {
	if s.minRTT == 0 || d < s.minRTT {
		s.minRTT = d
	}
	if s.rtt == 0 {
		s.rtt = d
	} else {
		s.rtt += (d - s.rtt) / 8
	}
}

// RTT returns the smoothed round-trip time measured by pings (the one sent when the session
// starts, keepalives, and Ping calls), or 0 before the first reply.
func (s *Session) RTT() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rtt
}

// Ping sends a Ping frame (spec.md "Ping") ahead of queued data and returns the round-trip
// time when the reply arrives. Errors: ctx's error, ErrPingBacklog, or the session's error.
func (s *Session) Ping(ctx context.Context) (time.Duration, error) {
	s.mu.Lock()
	id, w, ok := s.startPingLocked()
	s.mu.Unlock()
	if !ok {
		if err := s.Err(); err != nil {
			return 0, err
		}
		return 0, ErrPingBacklog
	}
	var err error
	select {
	case <-w.done:
		return w.rtt, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.done:
		err = s.Err()
	}
	s.mu.Lock()
	s.forgetPingLocked(id)
	s.mu.Unlock()
	return 0, err
}

// startupProbes is how many pings a new session sends, one after the other, to learn its RTT.
// The first one often waits for the peer's session to start; the minimum of several is the
// link's round trip.
const startupProbes = 3

// probeRTTLocked sends a ping whose reply sends `more` further probes, one at a time, and
// feeds the RTT estimates. s.mu must be held.
func (s *Session) probeRTTLocked(more int) {
	if _, w, ok := s.startPingLocked(); ok {
		w.probes = more
	}
}

// probeForTuningLocked sends one RTT probe unless one is already out. Window auto-tuning calls
// it at every judgement, so the minimum RTT keeps being refined while data flows: a startup
// sample inflated by a busy scheduler would otherwise pass for the link's round trip and grow
// windows that only lengthen queues. s.mu must be held.
func (s *Session) probeForTuningLocked() {
	if s.tuneProbe {
		return
	}
	if _, w, ok := s.startPingLocked(); ok {
		w.tuning = true
		s.tuneProbe = true
	}
}
