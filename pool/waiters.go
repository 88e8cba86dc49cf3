package pool

import (
	"context"
	"sync/atomic"
	"time"
)

// waiter is one blocked Acquire. Waiters are pooled per Pool (sync.Pool), so a blocking
// Acquire allocates nothing once the pool is warm.
//
// Delivery protocol: whoever serves a waiter holds the pool mutex, removes it from the queue
// and sets res or err; right after unlocking it sends one token on ready. A waiter whose ctx
// ended decides under the mutex: still queued means not served (it leaves, consuming
// nothing); not queued means served, and the token is sent or about to be (it receives it and
// passes the resource on).
type waiter[T any] struct {
	next, prev *waiter[T] // queue links; next also links Pool.toWake once served
	queued     bool

	// cons is the construction started on this waiter's behalf, if any. A waiter has at
	// most one; a failed construction fails only its own waiter.
	cons *construction[T]

	ctx   context.Context // the Acquire ctx: values for a construction started for it
	start atomic.Int64    // pool clock when the wait began (0: not yet stamped)

	enter int64 // pool clock when Acquire was called; under mu

	res    *Resource[T]
	err    error
	waited time.Duration // wait counted in AcquireDuration when served; under mu
	took   time.Duration // time counted in AcquireTime when served; under mu
	ready  chan struct{} // buffered 1; empty whenever the waiter is in the sync.Pool
}

// waitQueue is an intrusive FIFO list of waiters. It keeps a count of waiters with no
// construction of their own, so the pool can skip looking for one when there is none.
//
// WARNING: every method must be called with the pool mutex held.
type waitQueue[T any] struct {
	head, tail *waiter[T]
	n          int
	unbound    int // queued waiters with cons == nil
}

func (q *waitQueue[T]) len() int { return q.n }

// pushBack appends w (arrival order).
func (q *waitQueue[T]) pushBack(w *waiter[T]) {
	w.queued = true
	w.next = nil
	w.prev = q.tail
	if q.tail == nil {
		q.head = w
	} else {
		q.tail.next = w
	}
	q.tail = w
	q.n++
	if w.cons == nil {
		q.unbound++
	}
}

// remove unlinks w, which must be queued.
func (q *waitQueue[T]) remove(w *waiter[T]) {
	if w.prev == nil {
		q.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		q.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.next, w.prev = nil, nil
	w.queued = false
	q.n--
	if w.cons == nil {
		q.unbound--
	}
}

// firstUnbound returns the oldest waiter with no construction of its own, or nil.
func (q *waitQueue[T]) firstUnbound() *waiter[T] {
	if q.unbound == 0 {
		return nil
	}
	for w := q.head; w != nil; w = w.next {
		if w.cons == nil {
			return w
		}
	}
	return nil
}

// bind records c as w's construction. w must be queued and unbound.
func (q *waitQueue[T]) bind(w *waiter[T], c *construction[T]) {
	w.cons = c
	c.owner = w
	q.unbound--
}

// unbind forgets w's construction (it finished, or w left). If w is still queued it becomes
// eligible for a new construction.
func (q *waitQueue[T]) unbind(w *waiter[T]) {
	if w.cons == nil {
		return
	}
	w.cons.owner = nil
	w.cons = nil
	if w.queued {
		q.unbound++
	}
}
