// Package pool is a bounded, strictly fair pool of resources of any type (database
// connections, HTTP/1.1 upstream connections, ...), built to be faster than puddle (the core of
// pgxpool) and to fail better than puddle and database/sql.
//
// # Model
//
// Hard maximum. Every resource occupies one of Config.MaxSize slots from the moment its
// construction starts until its Destructor returns: constructions in flight + idle + acquired
// + being destroyed <= MaxSize, always, including while MinSize warm-up races with Acquire.
//
// Strict FIFO. An Acquire that cannot be served from the idle set joins a queue and is served
// in arrival order. While anyone waits, a newcomer queues behind them even if a resource or
// slot is free (TryAcquire, which never waits, returns ErrNotAvailable rather than jump the
// queue), so nobody starves (database/sql serves waiters in random order). A waiter whose ctx ends leaves the queue and consumes nothing.
//
// Hand-off. A released resource goes straight to the first waiter, under the pool's one
// mutex; the waiter wakes up owning it and does not compete for it again. If the hand-off
// races with that waiter's deadline, the waiter passes the resource on to the next in line,
// so the race never leaks a resource or a slot.
//
// Detached construction. When a waiter finds a free slot, a construction starts for it in its
// own goroutine. The Constructor's ctx carries the caller's values but is canceled only by
// Close and Config.ConstructTimeout, so a caller that gives up does not waste a half-made
// connection (pgx#1259, pgx#1287): the finished resource goes to the first waiter or to the
// idle set. A failed construction frees its slot and fails the waiter it was started for and,
// when the pool holds and builds no resource to wait for, every waiter still waiting.
//
// Failures. After a failed construction the pool does not redial at once: the next
// construction starts after a jittered delay that doubles with each failure in a row (10 ms to
// 250 ms, plus up to as much again), one at a time until one succeeds, so a backend that is
// down sees at most about 100 attempts a second from the whole pool, and one that comes back
// is tried again within half a second. A failure that Config.CapacityError recognizes (the
// backend is full), while the pool holds other resources, fails nobody: the pool caps itself
// at what it holds (Stat.Cap), the waiter stays in line for a release, and each second the cap
// is raised by one to probe the backend.
//
// Lifetimes. MaxLifetime (plus a per-resource jitter drawn once) is checked at acquire, at
// release and by the periodic health check, so it holds on a pool that is never idle.
// MaxIdleTime closes never take the pool below MinSize, and MinSize is rebuilt right after a
// destroy. Failed background constructions back off too.
//
// Close. Close wakes every blocked Acquire at once with ErrClosedPool, cancels constructions,
// destroys idle resources, destroys held ones when they are released, and returns when all
// are gone and the pool's goroutines have ended. Shutdown does the same within a deadline.
//
// Costs. Acquire and Release from the idle set take the mutex once each and allocate nothing:
// the pool reuses one Resource per built value and pools its waiter records. Stat is O(1).
// No Constructor or Destructor runs under the mutex.
//
// Checking a resource before use (a ping) is left to the caller or a wrapper: acquire, check
// (IdleDuration tells how long it sat idle), and Destroy it and acquire again if it is broken.
// pgpool does exactly that.
package pool
