package pool

import "time"

// maintain is the pool's one background goroutine. Every HealthCheckPeriod, and whenever
// kicked (after a destroy, a failed construction, or an acquire that took the idle count below
// MinIdle), it enforces MaxLifetime and MaxIdleTime on idle resources and starts the
// constructions MinSize and MinIdle call for, and those that waiters need once the
// construction gate or the capacity cap lets them (it wakes up for that). It ends at Close.
func (p *Pool[T]) maintain() {
	t := time.NewTimer(p.cfg.HealthCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-p.closing:
			return
		case <-p.kick:
		case <-t.C:
		}
		t.Reset(p.checkIdle())
	}
}

// checkIdle is one maintenance pass. It returns the delay until the next one.
func (p *Pool[T]) checkIdle() time.Duration {
	now := p.now()
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return p.cfg.HealthCheckPeriod
	}

	// built counts resources that exist (not those being built or destroyed): idle closes
	// never take it below MinSize. Expired resources go regardless and are rebuilt below.
	built := int32(len(p.idle)) + p.acquired
	kept := p.idle[:0]
	for _, r := range p.idle {
		switch {
		case r.expired(now):
			p.count.lifetimeDestroy++
			p.startDestroyLocked(r)
			built--
		case p.cfg.MaxIdleTime > 0 && now-r.lastUsed >= int64(p.cfg.MaxIdleTime) && built > p.cfg.MinSize:
			p.count.idleDestroy++
			p.startDestroyLocked(r)
			built--
		default:
			kept = append(kept, r)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept

	next := p.cfg.HealthCheckPeriod
	// Waiters whose constructions the gate or the capacity cap held back (gate.go).
	p.constructForWaitersLocked()
	var need int32
	if p.warmRetryAt > now {
		next = min(next, time.Duration(p.warmRetryAt-now))
	} else {
		need = p.cfg.MinSize - (built + p.constructing)
		if d := p.cfg.MinIdle - (int32(len(p.idle)) + p.warming); d > need {
			need = d
		}
		for ; need > 0 && p.canConstructLocked(now); need-- {
			p.startConstructLocked(nil, nil, true)
		}
	}
	if d := p.gateWakeLocked(now, p.waiters.unbound > 0 || need > 0); d > 0 {
		next = min(next, d)
	}
	p.maintainAt = now + int64(next)
	return next
}
