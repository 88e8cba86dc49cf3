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
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		last := time.Unix(0, s.lastRecv.Load())
		if idle := time.Since(last); idle < interval {
			t.Reset(interval - idle)
			continue
		}
		s.measureRTT()
		t.Reset(timeout)
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if s.lastRecv.Load() == last.UnixNano() {
			s.end(ErrKeepAliveTimeout, endAbort)
			return
		}
		t.Reset(interval)
	}
}
