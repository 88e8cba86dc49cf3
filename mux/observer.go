package mux

import "time"

// RTTObserver is told every round-trip time a session measures (Config.RTTObserver): each reply
// to a Ping frame this side sent, whether from Ping, a keepalive, or the probes that feed window
// auto-tuning, the samples Stats.RTT smooths. ObserveRTT runs in the session's connection
// reader, so it must be quick and must not block; one observer may serve many sessions and be
// called from their readers at once.
type RTTObserver interface {
	ObserveRTT(d time.Duration)
}
