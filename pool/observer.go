package pool

import "time"

// AcquireObserver is told the duration of each successful Acquire (Config.AcquireObserver):
// from the call until the resource was the caller's, waits included, the same time that
// Stat.AcquireTime sums. TryAcquire and AcquireAllIdle are not observed, nor is an Acquire that
// fails. ObserveAcquire runs in the caller's goroutine after the pool's lock is released,
// before Acquire returns, so it must be quick, must not block, and may be called from many
// goroutines at once.
type AcquireObserver interface {
	ObserveAcquire(d time.Duration)
}

// observeAcquire calls the AcquireObserver, if any.
func (p *Pool[T]) observeAcquire(d time.Duration) {
	if o := p.cfg.AcquireObserver; o != nil {
		o.ObserveAcquire(d)
	}
}
