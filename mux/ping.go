package mux

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrPingBacklog is returned by Ping when too many of this side's pings are already waiting
// to be sent (the connection is not draining).
var ErrPingBacklog = errors.New("mux: too many pings waiting to be sent")

// pingTable tracks this side's pings that await their reply.
type pingTable struct {
	mu   sync.Mutex
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

// start registers a new ping and returns its opaque value.
func (t *pingTable) start() (uint32, *pingWait) {
	w := &pingWait{sent: time.Now(), done: make(chan struct{})}
	t.mu.Lock()
	t.next++
	id := t.next
	t.out[id] = w
	t.mu.Unlock()
	return id, w
}

// forget drops the ping with id; false if it was already answered or dropped.
func (t *pingTable) forget(id uint32) bool {
	t.mu.Lock()
	_, ok := t.out[id]
	delete(t.out, id)
	t.mu.Unlock()
	return ok
}

// startPing registers a ping. Until it is answered or forgotten (forgetPing) it counts as a
// wait on the peer, so the reply is read at once (readtoken.go).
func (s *Session) startPing() (uint32, *pingWait) {
	id, w := s.pings.start()
	s.addWaiter()
	return id, w
}

func (s *Session) forgetPing(id uint32) {
	if s.pings.forget(id) {
		s.endWait(nil)
	}
}

// answered resolves the ping with value v, if it is ours, and feeds the RTT estimate. Replies
// to pings never sent are ignored.
func (t *pingTable) answered(s *Session, v uint32) {
	t.mu.Lock()
	w := t.out[v]
	delete(t.out, v)
	t.mu.Unlock()
	if w == nil {
		return
	}
	s.endWait(nil)
	w.rtt = time.Since(w.sent)
	s.observeRTT(w.rtt)
	if o := s.cfg.RTTObserver; o != nil {
		o.ObserveRTT(w.rtt)
	}
	close(w.done)
	if w.probes > 0 {
		s.probeRTT(w.probes - 1)
	}
	if w.tuning {
		s.tuneProbe.Store(false)
	}
}

// observeRTT folds a sample into the smoothed RTT (weight 1/8 for new samples, as TCP's SRTT
// in RFC 6298 §2; the first sample is taken as it is) and the minimum RTT. Window auto-tuning
// uses the minimum: a sample taken while data queues in front of the ping is inflated, and an
// inflated RTT would grow windows, and with them the queues, further.
func (s *Session) observeRTT(d time.Duration) {
	for {
		old := s.minRTT.Load()
		if old != 0 && int64(d) >= old || s.minRTT.CompareAndSwap(old, int64(d)) {
			break
		}
	}
	for {
		old := s.rtt.Load()
		nv := int64(d)
		if old != 0 {
			nv = old + (int64(d)-old)/8
		}
		if s.rtt.CompareAndSwap(old, nv) {
			return
		}
	}
}

// RTT returns the smoothed round-trip time measured by pings (the one sent when the session
// starts, keepalives, and Ping calls), or 0 before the first reply.
func (s *Session) RTT() time.Duration { return time.Duration(s.rtt.Load()) }

// Ping sends a Ping frame (spec.md "Ping") ahead of queued data and returns the round-trip
// time when the reply arrives. Errors: ctx's error, ErrPingBacklog, or the session's error.
func (s *Session) Ping(ctx context.Context) (time.Duration, error) {
	id, w := s.startPing()
	if !s.sched.ping(id) {
		s.forgetPing(id)
		if err := s.Err(); err != nil {
			return 0, err
		}
		return 0, ErrPingBacklog
	}
	select {
	case <-w.done:
		return w.rtt, nil
	case <-ctx.Done():
		s.forgetPing(id)
		return 0, ctx.Err()
	case <-s.done:
		s.forgetPing(id)
		return 0, s.Err()
	}
}

// startupProbes is how many pings a new session sends, one after the other, to learn its RTT.
// The first one often waits for the peer's session to start; the minimum of several is the
// link's round trip.
const startupProbes = 3

// measureRTT sends one ping without waiting; its reply feeds the RTT estimates.
func (s *Session) measureRTT() { s.probeRTT(0) }

// probeRTT sends a ping whose reply sends `more` further probes, one at a time.
func (s *Session) probeRTT(more int) {
	id, w := s.startPing()
	w.probes = more
	if !s.sched.ping(id) {
		s.forgetPing(id)
	}
}

// probeForTuning sends one RTT probe unless one is already out. Window auto-tuning calls it at
// every judgement, so the minimum RTT keeps being refined while data flows: a startup sample
// inflated by a busy scheduler would otherwise pass for the link's round trip and grow windows
// that only lengthen queues.
func (s *Session) probeForTuning() {
	if !s.tuneProbe.CompareAndSwap(false, true) {
		return
	}
	id, w := s.startPing()
	w.tuning = true
	if !s.sched.ping(id) {
		s.forgetPing(id)
		s.tuneProbe.Store(false)
	}
}
