package pool

import "time"

// resourceState is where a Resource is. It only changes under the pool mutex.
type resourceState uint8

const (
	stateIdle       resourceState = iota // in the idle stack
	stateAcquired                        // held by a caller
	stateDestroying                      // Destructor scheduled or running; slot still counted
	stateDestroyed                       // gone; slot freed
	stateHijacked                        // handed to the caller for good; slot freed
)

// Resource is one pooled value. A *Resource is obtained from Acquire or TryAcquire and is
// given back with exactly one of Release, ReleaseUnused, Destroy or Hijack. A second such
// call is a no-op (never a panic) while the resource is idle, destroyed or hijacked.
//
// The pool keeps one Resource per built value and hands the same *Resource out again on
// later acquires (that is how acquiring allocates nothing). So after giving a resource back,
// drop the handle: once another caller has acquired the value, a stale Release through the
// old handle would give back that caller's hold. Wrappers that need a handle per acquire, so
// that any number of late Releases stay harmless, make one (pgpool's Conn does).
type Resource[T any] struct {
	pool  *Pool[T]
	value T

	createdAt time.Time
	created   int64 // pool clock (ns) at creation
	expiresAt int64 // pool clock (ns) after which the resource is expired; 0 = never
	lastUsed  int64 // pool clock (ns) of the last Release (creation until then); under mu

	state resourceState // under mu
	gen   uint64        // Pool.gen at construction; a Reset since makes the resource stale
}

// Value returns the pooled value. It may be called while the caller holds the resource (and
// after Hijack, when the caller owns it).
func (r *Resource[T]) Value() T { return r.value }

// CreatedAt returns when the Constructor that built the value returned.
func (r *Resource[T]) CreatedAt() time.Time { return r.createdAt }

// LastUsed returns when the resource was last given back with Release (its creation time if
// never, or if only ReleaseUnused was used). Call it only while holding the resource.
func (r *Resource[T]) LastUsed() time.Time {
	return r.createdAt.Add(time.Duration(r.lastUsed - r.created))
}

// IdleDuration returns the time since the resource was last given back with Release (or
// built). Called right after Acquire it says how long the value sat idle, which is what a
// "ping before reuse if idle for more than X" rule needs. Call it only while holding the
// resource.
func (r *Resource[T]) IdleDuration() time.Duration {
	return time.Duration(r.pool.now() - r.lastUsed)
}

// Release gives the resource back to the pool: to the oldest waiter if any, else to the idle
// set, marked as used now. A resource past MaxLifetime, or built before a Reset, or released
// after Close, is destroyed instead. A second call is a no-op.
func (r *Resource[T]) Release() { r.pool.release(r, true) }

// ReleaseUnused is Release without marking the resource as used: its idle time keeps
// counting from the previous use. Use it for a resource that was only inspected.
func (r *Resource[T]) ReleaseUnused() { r.pool.release(r, false) }

// Destroy closes the resource (the Destructor runs in a goroutine) and frees its slot when the
// Destructor returns. Use it for a broken resource. A second call, or a call after Release, is
// a no-op.
func (r *Resource[T]) Destroy() { r.pool.destroyAcquired(r) }

// Hijack removes the resource from the pool without destroying it: the caller now owns the
// value and must close it. The slot is freed at once. A call on a resource not held is a
// no-op.
func (r *Resource[T]) Hijack() { r.pool.hijack(r) }

// expired reports whether r is past its lifetime at pool time now.
func (r *Resource[T]) expired(now int64) bool {
	return r.expiresAt != 0 && now >= r.expiresAt
}
