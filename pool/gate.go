package pool

import (
	"math/rand/v2"
	"time"
)

// The construction gate. After a failed construction the pool does not redial at once: the
// next construction, for whoever needs one, starts after a delay that doubles with each
// failure in a row, and only one runs at a time until one succeeds (a probe). So a backend
// that is down sees at most one attempt per minRetryDelay from the whole pool, whatever its
// callers do, and one that comes back is found within 2*maxRetryDelay.
//
// The capacity cap. A construction that fails with an error Config.CapacityError recognizes
// (PostgreSQL's too_many_connections) while the pool holds other resources does not fail its
// waiter: the pool caps itself at what it holds, the waiter stays in line for one of them, and
// every capacityHold the cap is raised by one to see whether the backend takes more.
const (
	// minRetryDelay is the first delay after a failure, and the shortest: at most about 100
	// failed constructions a second.
	minRetryDelay = 10 * time.Millisecond
	// maxRetryDelay caps the doubling; a random extra of up to the same again is added.
	maxRetryDelay = 250 * time.Millisecond
	// capacityHold is how long a capacity cap holds before it is raised by one.
	capacityHold = time.Second
)

// retryDelay is the jittered delay after the n-th failed construction in a row (n >= 1):
// d in [minRetryDelay, maxRetryDelay] doubling with n, plus a random extra in [0, d).
func retryDelay(n int32) time.Duration {
	d := maxRetryDelay
	if n <= 6 {
		d = min(minRetryDelay<<(n-1), maxRetryDelay)
	}
	return d + rand.N(d)
}

// canConstructLocked reports whether a construction may start now (pool clock now): a slot is
// free under MaxSize and under the capacity cap, and the gate is open. It raises an expired
// capacity cap by one.
func (p *Pool[T]) canConstructLocked(now int64) bool {
	limit := p.cfg.MaxSize
	if p.capSize > 0 {
		if now >= p.capUntil {
			p.capSize++
			p.capUntil = now + int64(capacityHold)
			if p.capSize >= p.cfg.MaxSize {
				p.capSize = 0
			}
		}
		if p.capSize > 0 {
			limit = p.capSize
		}
	}
	if p.slots >= limit {
		return false
	}
	return p.failStreak == 0 || (!p.probing && now >= p.retryAt)
}

// constructFailedLocked records a failed construction at pool time now. capacity says whether
// Config.CapacityError recognized its error. It returns true when the failure is absorbed: the
// pool holds other resources, so it caps itself at them, and the waiter the construction was
// for keeps waiting. Otherwise the gate closes for a retry delay.
func (p *Pool[T]) constructFailedLocked(now int64, capacity bool) (absorbed bool) {
	if others := p.slots - 1; capacity && others > 0 {
		if p.capSize == 0 || others < p.capSize {
			p.capSize = others
		}
		p.capUntil = now + int64(capacityHold)
		return true
	}
	p.failStreak++
	p.retryAt = now + int64(retryDelay(p.failStreak))
	p.kickMaintainer() // it starts the next construction when the delay is over
	return false
}

// gateOpensLocked returns the pool time at which the gate or the capacity cap may next let a
// held-back construction start (the retry delay's end, the cap's raise), or 0 if neither
// holds one back by time.
func (p *Pool[T]) gateOpensLocked() int64 {
	var at int64
	if p.failStreak > 0 && !p.probing {
		at = p.retryAt
	}
	if p.capSize > 0 && (at == 0 || p.capUntil < at) {
		at = p.capUntil
	}
	return at
}

// gateWakeLocked returns how long until a construction the gate or the capacity cap holds back
// could start, for the maintainer's timer, or 0 when there is no demand for one (demand: a
// waiter or MinSize/MinIdle needs a construction) or only a free slot would let it start
// (freeing a slot kicks the maintainer).
func (p *Pool[T]) gateWakeLocked(now int64, demand bool) time.Duration {
	if !demand {
		return 0
	}
	if at := p.gateOpensLocked(); at > now {
		return time.Duration(at - now)
	}
	return 0
}

// wakeForGateLocked kicks the maintainer when a waiter needs a construction that the gate or
// the cap holds back until a time (after now) before the maintainer's next pass, so that the
// waiter is not left until then. Once kicked, the maintainer's pass sets its timer for that
// time, so later waiters do not kick again. A construction held back only by a full pool needs
// no kick: freeing a slot gives one.
func (p *Pool[T]) wakeForGateLocked(now int64) {
	if p.waiters.unbound == 0 {
		return
	}
	if at := p.gateOpensLocked(); at > now && at < p.maintainAt {
		p.kickMaintainer()
	}
}

// failUnboundLocked fails, with err, every queued waiter that has no construction of its own,
// when the pool holds no resource that a release could hand them and builds none: after a
// failed construction they would otherwise wait for the gate's next probe, or their deadline,
// only to fail the same way (a backend that is down).
func (p *Pool[T]) failUnboundLocked(err error, now int64) {
	if p.acquired > 0 || len(p.idle) > 0 || p.constructing > 0 {
		return
	}
	for w := p.waiters.head; w != nil; {
		next := w.next
		if w.cons == nil {
			p.serveLocked(w, nil, err, now)
		}
		w = next
	}
}
