package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// construction is one Constructor call in flight.
type construction[T any] struct {
	owner  *waiter[T]      // the waiter it was started for, while that waiter still waits; under mu
	values context.Context // source of ctx values (the caller's ctx), or nil
	gen    uint64          // Pool.gen at start
	warm   bool            // started by the maintainer for MinSize/MinIdle
	probe  bool            // started while the gate was closed for failures (gate.go)
}

// constructForWaitersLocked starts one construction for each waiter that has none, oldest
// first, while the pool has free slots. The gate and the capacity cap (gate.go) may hold them
// back; the maintainer starts them when they open.
func (p *Pool[T]) constructForWaitersLocked() {
	if p.closed || p.waiters.unbound == 0 {
		return
	}
	now := p.now()
	for p.canConstructLocked(now) {
		w := p.waiters.firstUnbound()
		if w == nil {
			return
		}
		p.startConstructLocked(w, w.ctx, false)
	}
	p.wakeForGateLocked(now)
}

// startConstructLocked takes a slot and starts a construction in its own goroutine, for owner
// (may be nil) with values from values (may be nil).
func (p *Pool[T]) startConstructLocked(owner *waiter[T], values context.Context, warm bool) {
	c := &construction[T]{values: values, gen: p.gen, warm: warm}
	if p.failStreak > 0 {
		c.probe = true
		p.probing = true
	}
	if owner != nil {
		p.waiters.bind(owner, c)
	}
	if warm {
		p.warming++
	}
	p.slots++
	p.constructing++
	p.wg.Go(func() { p.construct(c) })
}

// construct runs the Constructor for c, then hands the resource to the first waiter (or the
// idle set), or on failure fails c's owner and frees the slot.
func (p *Pool[T]) construct(c *construction[T]) {
	// Values from the caller, cancellation only from Close and ConstructTimeout.
	ctx := context.Background()
	if c.values != nil {
		ctx = context.WithoutCancel(c.values)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.baseCtx, cancel)
	if p.cfg.ConstructTimeout > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, p.cfg.ConstructTimeout)
		defer cancelT()
	}
	v, err := p.cfg.Constructor(ctx)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w after %v: %w", ErrConstructTimeout, p.cfg.ConstructTimeout, err)
	}
	stop()
	cancel()
	c.values = nil
	// The classifier is a callback: it runs here, before the lock.
	capacity := err != nil && p.cfg.CapacityError != nil && p.cfg.CapacityError(err)

	now := p.now()
	p.mu.Lock()
	defer p.unlock()
	p.constructing--
	if c.warm {
		p.warming--
	}
	if c.probe {
		p.probing = false
	}
	owner := c.owner
	if owner != nil {
		p.waiters.unbind(owner)
	}

	if err != nil {
		p.count.constructErr++
		if absorbed := p.constructFailedLocked(now, capacity); !absorbed {
			if owner != nil {
				p.serveLocked(owner, nil, err, now)
			}
			p.failUnboundLocked(err, now)
		}
		if c.warm {
			p.warmBackoff = min(max(2*p.warmBackoff, int64(50*time.Millisecond)), int64(p.cfg.HealthCheckPeriod))
			p.warmRetryAt = now + p.warmBackoff
		}
		p.freeSlotLocked()
		return
	}

	p.count.construct++
	if p.failStreak > 0 {
		// The gate opens: let the maintainer start what it held back (MinSize, MinIdle).
		p.failStreak = 0
		p.kickMaintainer()
	}
	if c.warm {
		p.warmBackoff, p.warmRetryAt = 0, 0
	}
	r := &Resource[T]{
		pool:      p,
		value:     v,
		createdAt: p.epoch.Add(time.Duration(now)),
		created:   now,
		lastUsed:  now,
		gen:       c.gen,
	}
	if lt := p.cfg.MaxLifetime; lt > 0 {
		if j := p.cfg.MaxLifetimeJitter; j > 0 {
			lt += rand.N(j)
		}
		r.expiresAt = now + int64(lt)
	}
	if p.closed || c.gen != p.gen {
		p.startDestroyLocked(r)
		p.constructForWaitersLocked()
		return
	}
	p.putLocked(r, now)
	// The owner, if it is still waiting, may need a new construction.
	p.constructForWaitersLocked()
}
