package mux

import "time"

// RTTObserver is told every round-trip time a session measures (Config.RTTObserver): the reply
// to each Ping frame this side sent (Ping calls, keepalives, and the probes sent when the session
// starts and for window auto-tuning), the samples Stats.RTT smooths. ObserveRTT runs in the
// session's connection reader before a waiting Ping returns, so it must be quick and must not
// block; one observer may serve many sessions and be called from their readers at once.
type RTTObserver interface {
	ObserveRTT(d time.Duration)
}
