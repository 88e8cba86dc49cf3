package demux

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Proxy's upstream pool. Gauges describe the moment of the
// call; counters are cumulative since New.
type Stats struct {
	// Conns is the number of open upstream connections, DrainingConns of which take
	// no new streams (GOAWAY received, RFC 9113 §6.8) and close when idle.
	Conns         int
	DrainingConns int
	// Dialing is the number of connections being established.
	Dialing int
	// StreamsInUse is the number of requests holding an upstream stream (HTTP/2) or
	// connection (HTTP/1.1), up to the end of their response body.
	StreamsInUse int
	// Queued is the number of requests waiting in the FIFO queue.
	Queued int

	// Requests counts requests given to the upstream pool.
	Requests uint64
	// QueueWaits counts requests that had to queue; QueueWaitTotal and QueueWaitMax
	// are the sum and the maximum of their waits.
	QueueWaits     uint64
	QueueWaitTotal time.Duration
	QueueWaitMax   time.Duration
	// QueueTimeouts and QueueFull count requests refused with ErrQueueTimeout and
	// ErrQueueFull (both 503).
	QueueTimeouts uint64
	QueueFull     uint64
	// Retries counts re-sends of failed attempts: requests the upstream never saw or
	// refused (REFUSED_STREAM, RFC 9113 §8.7), and idempotent ones lost to a GOAWAY
	// or to a reused connection that failed (RFC 9110 §9.2.2).
	Retries uint64
	// Resets counts RST_STREAM frames received from the upstream (RFC 9113 §6.4).
	Resets uint64
	// GoAways counts GOAWAY frames received from the upstream (RFC 9113 §6.8).
	GoAways uint64
	// Dials and DialErrors count connection attempts and failures.
	Dials      uint64
	DialErrors uint64

	// Targets has one entry per upstream address, in the order they were found.
	Targets []TargetStats
}

// TargetStats describes one upstream target: an address a configured upstream host
// resolved to. Gauges describe the moment of the call; counters are cumulative.
type TargetStats struct {
	// Addr is the target's ip:port (or host:port as configured).
	Addr string
	// Conns, DrainingConns, Dialing and StreamsInUse are as in Stats, for this target.
	Conns, DrainingConns, Dialing, StreamsInUse int
	// Ejected: the target failed ejectAfter (3) times in a row (dial errors, lost
	// connections, GOAWAY, REFUSED_STREAM) and takes no new streams for a backoff
	// (1 s, doubling per ejection in a row, up to 30 s).
	Ejected bool
	// Gone: the target's address no longer resolves; it leaves once idle.
	Gone bool
	// Requests counts requests sent to the target; Dials and DialErrors its
	// connection attempts and failures; Ejections how often it was ejected.
	Requests, Dials, DialErrors, Ejections uint64
}

// counters are the cumulative Stats fields.
type counters struct {
	requests, retries, resets, goAways, dials, dialErrors atomic.Uint64
	queueWaits, queueTimeouts, queueFull                  atomic.Uint64
	queueWaitNanos, maxQueueWaitNanos                     atomic.Int64
}

func (u *upstream) noteWait(info *reqInfo, d time.Duration, waited bool) {
	if !waited {
		return
	}
	u.st.queueWaits.Add(1)
	u.st.queueWaitNanos.Add(int64(d))
	for {
		m := u.st.maxQueueWaitNanos.Load()
		if int64(d) <= m || u.st.maxQueueWaitNanos.CompareAndSwap(m, int64(d)) {
			break
		}
	}
	if info != nil {
		info.queueWait = d
	}
}

// stats snapshots the pool.
func (u *upstream) stats() Stats {
	s := Stats{
		Requests:       u.st.requests.Load(),
		Retries:        u.st.retries.Load(),
		Resets:         u.st.resets.Load(),
		GoAways:        u.st.goAways.Load(),
		Dials:          u.st.dials.Load(),
		DialErrors:     u.st.dialErrors.Load(),
		QueueWaits:     u.st.queueWaits.Load(),
		QueueWaitTotal: time.Duration(u.st.queueWaitNanos.Load()),
		QueueWaitMax:   time.Duration(u.st.maxQueueWaitNanos.Load()),
		QueueTimeouts:  u.st.queueTimeouts.Load(),
		QueueFull:      u.st.queueFull.Load(),
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	s.Targets = make([]TargetStats, 0, len(u.targets))
	for _, t := range u.targets {
		ts := TargetStats{
			Addr:         t.addr,
			Dialing:      t.dialing,
			StreamsInUse: t.inUse,
			Ejected:      !t.gone && now.Before(t.ejectedTil),
			Gone:         t.gone,
			Requests:     t.requests.Load(),
			Dials:        t.dials.Load(),
			DialErrors:   t.dialErrors.Load(),
			Ejections:    t.ejected.Load(),
		}
		for _, uc := range t.conns {
			ts.Conns++
			if uc.draining {
				ts.DrainingConns++
			}
		}
		s.Conns += ts.Conns
		s.DrainingConns += ts.DrainingConns
		s.Dialing += ts.Dialing
		s.StreamsInUse += ts.StreamsInUse
		s.Targets = append(s.Targets, ts)
	}
	s.Queued = u.waitq.Len()
	return s
}
