package pool

import (
	"context"
	"errors"
	"sync"
	"time"
)

var (
	// ErrClosedPool is returned by Acquire and TryAcquire on a closed pool, and by every
	// Acquire that was blocked when Close was called.
	ErrClosedPool = errors.New("pool: closed")
	// ErrNotAvailable is returned by TryAcquire when no resource can be had without waiting.
	ErrNotAvailable = errors.New("pool: no resource available without waiting")
	// ErrConstructTimeout wraps, next to the Constructor's own error, a construction cut off
	// by Config.ConstructTimeout, so that it is not taken for the caller's own deadline.
	ErrConstructTimeout = errors.New("pool: construction timed out (ConstructTimeout)")
)

// Pool is a bounded pool of resources of type T, made by New. It is safe for concurrent use.
// See the package documentation for the model.
type Pool[T any] struct {
	cfg   Config[T]
	epoch time.Time // origin of the pool clock (monotonic)

	// baseCtx is canceled by Close; it is the only cancellation source of constructions
	// besides ConstructTimeout.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	wg         sync.WaitGroup // construction, destroy and maintenance goroutines
	waiterPool sync.Pool      // *waiter[T], so blocking acquires allocate nothing
	kick       chan struct{}  // buffered 1: asks the maintainer for a pass now
	closing    chan struct{}  // closed by Close: stops the maintainer
	drained    chan struct{}  // closed once closed && slots == 0

	// mu guards everything below, and every Resource's state and lastUsed. No Constructor
	// or Destructor ever runs under mu; they run in goroutines started under it and tracked
	// by wg. Methods whose names end in Locked must be called with mu held, and mu is
	// released with unlock (never mu.Unlock directly), which wakes the waiters those methods
	// served.
	mu      sync.Mutex
	idle    []*Resource[T] // LIFO: the most recently released resource goes out first
	waiters waitQueue[T]   // FIFO; non-empty only while idle is empty

	// Slot accounting: slots = constructing + len(idle) + acquired + destroying <= MaxSize.
	slots, constructing, acquired, destroying int32
	warming                                   int32 // constructions started by the maintainer

	// toWake lists waiters served under mu (linked through next); unlock wakes them after
	// releasing mu, so a goroutine wake-up (possibly a futex call) never lengthens the
	// critical section.
	toWake *waiter[T]

	closed bool
	gen    uint64 // bumped by Reset; resources from older generations are destroyed
	count  counters

	// Warm-up backoff after a failed background construction, so a down backend is not
	// redialed in a tight loop (the PgBouncer server_login_retry idea). Pool clock, ns.
	warmBackoff, warmRetryAt int64

	// The construction gate and the capacity cap (gate.go). Pool clock, ns.
	failStreak int32 // failed constructions in a row; > 0 closes the gate until retryAt
	retryAt    int64
	probing    bool  // a construction started while failStreak > 0 is in flight
	capSize    int32 // 0, or the cap on slots after a capacity error
	capUntil   int64 // when capSize is raised by one
	maintainAt int64 // when the maintainer's timer fires next; 0 before its first pass
}

// New returns a pool for cfg. It fails only on an invalid Config (the error wraps
// ErrInvalidConfig); it does not wait for MinSize or MinIdle resources, which are built in the
// background. The pool runs one maintenance goroutine until Close.
func New[T any](cfg Config[T]) (*Pool[T], error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.HealthCheckPeriod == 0 {
		cfg.HealthCheckPeriod = DefaultHealthCheckPeriod
	}
	p := &Pool[T]{
		cfg:     cfg,
		epoch:   time.Now(),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		drained: make(chan struct{}),
	}
	p.maintainAt = int64(cfg.HealthCheckPeriod) // the maintainer's first timer
	p.baseCtx, p.cancelBase = context.WithCancel(context.Background())
	p.waiterPool.New = func() any { return &waiter[T]{ready: make(chan struct{}, 1)} }
	p.wg.Go(p.maintain)
	if cfg.MinSize > 0 || cfg.MinIdle > 0 {
		p.kickMaintainer()
	}
	return p, nil
}

// now is the pool clock: monotonic nanoseconds since New.
func (p *Pool[T]) now() int64 { return int64(time.Since(p.epoch)) }

// Acquire returns a resource, waiting if none is free. Waiters are served strictly in arrival
// order: while anyone waits, a newcomer queues behind them even if a slot is free. If the pool
// has room, Acquire starts a construction for the waiter; the construction outlives ctx (see
// Config.Constructor), and whichever waiter is first in line when a resource becomes ready
// (released or built) gets it.
//
// Errors: ctx.Err() as-is if ctx ends first (the waiter leaves the queue and consumes
// nothing), ErrClosedPool if the pool is or gets closed, or the Constructor's error if the
// construction started for this caller fails (also matching ErrConstructTimeout if
// Config.ConstructTimeout cut it off), or if another one fails while the pool holds and builds
// no resource. A failure that Config.CapacityError recognizes is not returned while the pool holds
// other resources: the caller keeps waiting for one. After a failure the next construction
// waits for the retry delay (see the package documentation), but never past ctx.
func (p *Pool[T]) Acquire(ctx context.Context) (*Resource[T], error) {
	if err := ctx.Err(); err != nil {
		p.mu.Lock()
		p.count.canceled++
		p.unlock()
		return nil, err
	}
	start := p.now()
	p.mu.Lock()
	if p.closed {
		p.unlock()
		return nil, ErrClosedPool
	}
	if p.waiters.len() == 0 {
		if r := p.popIdleLocked(); r != nil {
			took := time.Duration(p.now() - start)
			p.count.acquire++
			p.count.acquireTime += took
			p.unlock()
			p.observeAcquire(took)
			return r, nil
		}
	}
	return p.waitLocked(ctx, start)
}

// waitLocked queues the caller, who called Acquire at pool time start, and waits for a
// hand-off. It is entered with mu held and returns with it released.
func (p *Pool[T]) waitLocked(ctx context.Context, start int64) (*Resource[T], error) {
	w := p.waiterPool.Get().(*waiter[T])
	w.ctx = ctx
	w.enter = start
	p.waiters.pushBack(w)
	p.constructForWaitersLocked()
	p.unlock()
	// Stamp the start outside the lock; the server, which reads the clock anyway, computes
	// the wait. A waiter served before it stamps counts no wait.
	w.start.Store(p.now())

	done := ctx.Done()
	if done == nil { // cannot be canceled: a plain receive is cheaper than a select
		<-w.ready
		return p.served(w)
	}
	select {
	case <-w.ready:
		return p.served(w)
	case <-done:
	}

	p.mu.Lock()
	p.count.canceled++
	if w.queued {
		// Not served: leave the line. A construction started for us carries on unowned.
		p.waiters.remove(w)
		p.waiters.unbind(w)
		p.unlock()
		p.putWaiter(w)
		return nil, ctx.Err()
	}
	// Served while ctx ended; the server sends the token right after unlocking. Pass a
	// resource on (to the next in line, or idle) so the race never leaks it.
	if w.res != nil {
		p.count.acquire--
		p.count.emptyAcquire--
		p.count.waitTime -= w.waited
		p.count.acquireTime -= w.took
		p.releaseLocked(w.res, false, p.now())
	}
	p.unlock()
	<-w.ready
	p.putWaiter(w)
	return nil, ctx.Err()
}

// served returns what w was served, recycling w.
func (p *Pool[T]) served(w *waiter[T]) (*Resource[T], error) {
	r, err, took := w.res, w.err, w.took
	p.putWaiter(w)
	if r != nil {
		p.observeAcquire(took)
	}
	return r, err
}

func (p *Pool[T]) putWaiter(w *waiter[T]) {
	w.ctx, w.res, w.err, w.waited, w.took, w.enter = nil, nil, nil, 0, 0, 0
	w.start.Store(0)
	p.waiterPool.Put(w)
}

// TryAcquire returns an idle resource without waiting, or ErrNotAvailable. When nobody waits
// and the pool has room, it also starts a construction in the background (with ctx's values,
// not its cancellation), so a later call may succeed; the new resource goes to the idle set or
// the first waiter. Errors: ctx.Err(), ErrClosedPool, ErrNotAvailable.
func (p *Pool[T]) TryAcquire(ctx context.Context) (*Resource[T], error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return nil, ErrClosedPool
	}
	if p.waiters.len() == 0 {
		if r := p.popIdleLocked(); r != nil {
			p.count.acquire++
			return r, nil
		}
		if p.canConstructLocked(p.now()) {
			p.startConstructLocked(nil, ctx, false)
		}
	}
	return nil, ErrNotAvailable
}

// AcquireAllIdle acquires every idle resource at once, without waiting, and returns them (nil
// when there is none); the caller gives each back as usual. It is meant for health checks and
// keep-alive passes (pgxpool's AcquireAllIdle): resources are idle only while nobody waits, so
// it never takes one from a waiter. Resources past MaxLifetime are destroyed instead of
// returned. Like puddle's, it does not count in Stat's acquire counters. On a closed pool it
// returns nil.
func (p *Pool[T]) AcquireAllIdle() []*Resource[T] {
	p.mu.Lock()
	defer p.unlock()
	if p.closed || len(p.idle) == 0 {
		return nil
	}
	now := p.now()
	out := make([]*Resource[T], 0, len(p.idle))
	for i, r := range p.idle {
		p.idle[i] = nil
		if r.expired(now) {
			p.count.lifetimeDestroy++
			p.startDestroyLocked(r)
			continue
		}
		r.state = stateAcquired
		p.acquired++
		out = append(out, r)
	}
	p.idle = p.idle[:0]
	return out
}

// popIdleLocked takes the most recently released idle resource, destroying expired ones on
// the way (MaxLifetime is enforced at acquire). It returns nil if none is left.
func (p *Pool[T]) popIdleLocked() *Resource[T] {
	var now int64
	for n := len(p.idle); n > 0; n = len(p.idle) {
		r := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if r.expiresAt != 0 {
			if now == 0 {
				now = p.now()
			}
			if r.expired(now) {
				p.count.lifetimeDestroy++
				p.startDestroyLocked(r)
				continue
			}
		}
		r.state = stateAcquired
		p.acquired++
		if int32(len(p.idle)) < p.cfg.MinIdle && p.slots < p.cfg.MaxSize {
			p.kickMaintainer()
		}
		return r
	}
	return nil
}

// putLocked gives r, which is counted nowhere, to the first waiter, or else to the idle set.
// now is the pool clock, for the waiter's wait time.
func (p *Pool[T]) putLocked(r *Resource[T], now int64) {
	if w := p.waiters.head; w != nil {
		p.serveLocked(w, r, nil, now)
		return
	}
	r.state = stateIdle
	p.idle = append(p.idle, r)
}

// unlock releases mu and then wakes the waiters served while it was held.
func (p *Pool[T]) unlock() {
	w := p.toWake
	p.toWake = nil
	p.mu.Unlock()
	for w != nil {
		next := w.next // read before the wake: the waiter may be reused at once
		w.next = nil
		w.ready <- struct{}{}
		w = next
	}
}

// serveLocked hands r (or err) to the queued waiter w; unlock wakes it.
func (p *Pool[T]) serveLocked(w *waiter[T], r *Resource[T], err error, now int64) {
	p.waiters.remove(w)
	p.waiters.unbind(w)
	if r != nil {
		r.state = stateAcquired
		p.acquired++
		p.count.acquire++
		p.count.emptyAcquire++
		if start := w.start.Load(); start != 0 && now > start {
			w.waited = time.Duration(now - start)
			p.count.waitTime += w.waited
		}
		if now > w.enter {
			w.took = time.Duration(now - w.enter)
			p.count.acquireTime += w.took
		}
	}
	w.res, w.err = r, err
	w.next = p.toWake
	p.toWake = w
}

// release is Resource.Release (used) and Resource.ReleaseUnused (!used).
func (p *Pool[T]) release(r *Resource[T], used bool) {
	p.mu.Lock()
	// The clock is read under mu: r may go straight to a waiter that queued after a reading
	// taken before the lock, and must not be past its lifetime when it does.
	now := p.now()
	p.releaseLocked(r, used, now)
	p.unlock()
}

// releaseLocked gives back r if it is acquired: to the first waiter or the idle set, or to
// its Destructor if it is stale, expired, or the pool is closed.
func (p *Pool[T]) releaseLocked(r *Resource[T], used bool, now int64) {
	if r.state != stateAcquired {
		return
	}
	p.acquired--
	if used {
		r.lastUsed = now
	}
	switch {
	case p.closed || r.gen != p.gen:
		p.startDestroyLocked(r)
	case r.expired(now):
		p.count.lifetimeDestroy++
		p.startDestroyLocked(r)
	default:
		p.putLocked(r, now)
	}
}

// destroyAcquired is Resource.Destroy.
func (p *Pool[T]) destroyAcquired(r *Resource[T]) {
	p.mu.Lock()
	if r.state == stateAcquired {
		p.acquired--
		p.startDestroyLocked(r)
	}
	p.unlock()
}

// hijack is Resource.Hijack.
func (p *Pool[T]) hijack(r *Resource[T]) {
	p.mu.Lock()
	if r.state == stateAcquired {
		r.state = stateHijacked
		p.acquired--
		p.count.hijack++
		p.freeSlotLocked()
	}
	p.unlock()
}

// startDestroyLocked schedules the Destructor for r, which is counted nowhere. The slot stays
// in use until the Destructor returns.
func (p *Pool[T]) startDestroyLocked(r *Resource[T]) {
	r.state = stateDestroying
	p.destroying++
	p.wg.Go(func() { p.destroy(r) })
}

// destroy runs the Destructor for r and frees its slot.
func (p *Pool[T]) destroy(r *Resource[T]) {
	if p.cfg.Destructor != nil {
		p.cfg.Destructor(r.value)
	}
	p.mu.Lock()
	r.state = stateDestroyed
	p.destroying--
	p.count.destroy++
	p.freeSlotLocked()
	p.unlock()
}

// freeSlotLocked gives a slot back: to a waiter that needs a construction, else to MinSize
// warm-up, and finishes Close when it was the last one.
func (p *Pool[T]) freeSlotLocked() {
	p.slots--
	p.constructForWaitersLocked()
	if p.cfg.MinSize > 0 || p.cfg.MinIdle > 0 {
		p.kickMaintainer()
	}
	p.checkDrainedLocked()
}

func (p *Pool[T]) checkDrainedLocked() {
	if p.closed && p.slots == 0 {
		select {
		case <-p.drained:
		default:
			close(p.drained)
		}
	}
}

// kickMaintainer asks for a maintenance pass without blocking.
func (p *Pool[T]) kickMaintainer() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Reset destroys every idle resource and marks the others stale: held ones are destroyed when
// released, constructions in flight when they finish. The pool stays open, and MinSize is
// rebuilt. Use it when the backend behind every resource has changed (a failover).
func (p *Pool[T]) Reset() {
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return
	}
	p.gen++
	p.destroyIdleLocked()
}

// destroyIdleLocked destroys every idle resource.
func (p *Pool[T]) destroyIdleLocked() {
	for i, r := range p.idle {
		p.idle[i] = nil
		p.startDestroyLocked(r)
	}
	p.idle = p.idle[:0]
}

// Close closes the pool: every blocked Acquire returns ErrClosedPool at once, constructions
// in flight are canceled through their ctx, idle resources are destroyed, and held resources
// are destroyed when released. Close returns once every resource is destroyed and every
// goroutine of the pool has ended, so it waits for holders; use Shutdown to bound that wait.
// Calling it again waits again and is otherwise a no-op. Do not call it from a Constructor or
// Destructor: it would wait for itself.
func (p *Pool[T]) Close() { _ = p.Shutdown(context.Background()) }

// Shutdown is Close bounded by ctx: it returns ctx.Err() if holders have not released their
// resources (or destructors have not finished) when ctx ends. The pool is closed either way,
// and resources released later are still destroyed.
func (p *Pool[T]) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
		for w := p.waiters.head; w != nil; w = p.waiters.head {
			p.serveLocked(w, nil, ErrClosedPool, 0)
		}
		p.destroyIdleLocked()
		p.checkDrainedLocked()
	}
	p.unlock()
	p.cancelBase()

	select {
	case <-p.drained:
		p.wg.Wait()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
