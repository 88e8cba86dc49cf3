package mux

import "time"

// keepalive ends the session when the peer goes silent. Any received frame is a sign of life;
// only after KeepAliveInterval without one is a ping sent (ahead of queued data), and if
// nothing at all arrives within KeepAliveTimeout after it, the session ends with
// ErrKeepAliveTimeout. A busy connection is never pinged, and a saturated one is never killed
// while frames keep arriving (unlike hashicorp/yamux, which pings on a fixed period and fails
// when the pong is stuck behind data).
func (s *Session) keepalive() {
	defer s.wg.Done()
	interval, timeout := s.cfg.KeepAliveInterval, s.cfg.KeepAliveTimeout
	t := time.NewTimer(interval)
	defer t.Stop()
	sleep := func(d time.Duration) bool {
		t.Reset(d)
		select {
		case <-s.done:
			return false
		case <-t.C:
			return true
		}
	}
	for wait := interval; sleep(wait); {
		last := s.lastRecv.Load()
		if idle := time.Since(time.Unix(0, last)); idle < interval {
			wait = interval - idle
			continue
		}
		s.mu.Lock()
		s.probeRTTLocked(0)
		s.mu.Unlock()
		// Look for an answer at least every interval, so that with a timeout longer than
		// the interval the next ping still follows the last sign of life by one interval.
		deadline := time.Now().Add(timeout)
		for s.lastRecv.Load() == last {
			left := time.Until(deadline)
			if left <= 0 {
				s.end(ErrKeepAliveTimeout, endAbort)
				return
			}
			if !sleep(min(left, interval)) {
				return
			}
		}
		wait = interval - time.Since(time.Unix(0, s.lastRecv.Load()))
	}
}
