package pool

import "time"

// Stat is a snapshot of a pool's state and counters, taken under the pool mutex, so its fields
// agree with each other. Counters are kept incrementally: taking a Stat costs O(1).
type Stat struct {
	// Total is every slot in use: Constructing + Idle + Acquired + Destroying. It never
	// exceeds Max.
	Total int32
	// Idle is resources ready in the idle set.
	Idle int32
	// Acquired is resources held by callers.
	Acquired int32
	// Constructing is Constructor calls in flight.
	Constructing int32
	// Destroying is Destructor calls scheduled or in flight; their slots are still in use.
	Destroying int32
	// Max is Config.MaxSize.
	Max int32
	// Cap is the effective bound on Total: Max, or less while the backend refuses more
	// resources (Config.CapacityError). It is raised by one each second of the hold.
	Cap int32
	// Waiting is Acquire calls currently blocked in the FIFO queue.
	Waiting int32

	// AcquireCount is successful Acquire and TryAcquire calls.
	AcquireCount int64
	// AcquireDuration is the total time successful acquires spent waiting for a resource.
	// An acquire served at once from the idle set adds nothing.
	AcquireDuration time.Duration
	// AcquireTime is the total time successful Acquire calls took, from the call until the
	// resource was theirs, waits included: pgxpool's Stat.AcquireDuration. TryAcquire adds
	// nothing.
	AcquireTime time.Duration
	// EmptyAcquireCount is successful acquires that found no idle resource and had to wait
	// for a release or a construction.
	EmptyAcquireCount int64
	// EmptyAcquireWaitTime is the total wait of those acquires (equal to AcquireDuration,
	// kept under both names for pgxpool users).
	EmptyAcquireWaitTime time.Duration
	// CanceledAcquireCount is Acquire calls that returned their ctx's error.
	CanceledAcquireCount int64

	// ConstructCount is Constructor calls that succeeded.
	ConstructCount int64
	// ConstructErrorCount is Constructor calls that failed.
	ConstructErrorCount int64
	// DestroyCount is Destructor calls that finished (including destroys with no
	// Destructor configured).
	DestroyCount int64
	// HijackCount is resources taken out of the pool by Hijack. At rest,
	// ConstructCount - DestroyCount - HijackCount == Total.
	HijackCount int64
	// LifetimeDestroyCount is destroys decided because of MaxLifetime.
	LifetimeDestroyCount int64
	// IdleDestroyCount is destroys decided because of MaxIdleTime.
	IdleDestroyCount int64
}

// counters are the Stat counters, guarded by the pool mutex.
type counters struct {
	acquire, emptyAcquire, canceled  int64
	waitTime, acquireTime            time.Duration
	construct, constructErr, destroy int64
	hijack, lifetimeDestroy          int64
	idleDestroy                      int64
}

// Stat returns a snapshot of the pool.
func (p *Pool[T]) Stat() Stat {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stat{
		Total:                p.slots,
		Idle:                 int32(len(p.idle)),
		Acquired:             p.acquired,
		Constructing:         p.constructing,
		Destroying:           p.destroying,
		Max:                  p.cfg.MaxSize,
		Cap:                  p.capLocked(),
		Waiting:              int32(p.waiters.len()),
		AcquireCount:         p.count.acquire,
		AcquireDuration:      p.count.waitTime,
		AcquireTime:          p.count.acquireTime,
		EmptyAcquireCount:    p.count.emptyAcquire,
		EmptyAcquireWaitTime: p.count.waitTime,
		CanceledAcquireCount: p.count.canceled,
		ConstructCount:       p.count.construct,
		ConstructErrorCount:  p.count.constructErr,
		DestroyCount:         p.count.destroy,
		HijackCount:          p.count.hijack,
		LifetimeDestroyCount: p.count.lifetimeDestroy,
		IdleDestroyCount:     p.count.idleDestroy,
	}
}

// capLocked is Stat.Cap.
func (p *Pool[T]) capLocked() int32 {
	if p.capSize > 0 {
		return p.capSize
	}
	return p.cfg.MaxSize
}
