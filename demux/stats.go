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
	// Retries counts re-sends of requests the upstream did not process
	// (REFUSED_STREAM, streams above a GOAWAY's last stream ID; RFC 9113 §8.7).
	Retries uint64
	// Resets counts RST_STREAM frames received from the upstream (RFC 9113 §6.4).
	Resets uint64
	// GoAways counts GOAWAY frames received from the upstream (RFC 9113 §6.8).
	GoAways uint64
	// Dials and DialErrors count connection attempts and failures.
	Dials      uint64
	DialErrors uint64
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
	for _, uc := range u.conns {
		s.Conns++
		s.StreamsInUse += uc.inUse
		if uc.draining {
			s.DrainingConns++
		}
	}
	s.Dialing = u.dialing
	s.Queued = u.waitq.Len()
	return s
}
