package netem

import (
	"sync"
	"time"
)

// link schedules chunks on one direction of the emulated path: first the
// serialization time at Bandwidth (shared by every connection of the relay,
// as one wire would be), then the propagation Delay.
type link struct {
	bandwidth int64 // bytes/s; 0 = unlimited
	delay     time.Duration

	mu   sync.Mutex
	free time.Time // when the wire finishes sending what it has accepted
}

// due returns when a chunk of n bytes handed to the link at now reaches the
// far end.
func (l *link) due(now time.Time, n int) time.Time {
	if l.bandwidth == 0 {
		return now.Add(l.delay)
	}
	l.mu.Lock()
	start := now
	if l.free.After(now) {
		start = l.free
	}
	end := start.Add(time.Duration(int64(n) * int64(time.Second) / l.bandwidth))
	l.free = end
	l.mu.Unlock()
	return end.Add(l.delay)
}
