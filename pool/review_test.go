package pool_test

import (
	"context"
	"testing"
	"time"
)

// AcquireDuration and EmptyAcquireWaitTime count successful acquires only. An Acquire
// whose ctx ended just as a resource was handed to it passes the resource on and
// returns ctx's error; its acquire counts were taken back, but its wait stayed in
// AcquireDuration.
func TestReviewCanceledHandOffAddsNoWait(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	r := mustAcquire(t, p)
	var caught int
	for i := 0; i < 400 && caught < 5; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			r2, err := p.Acquire(ctx)
			if err == nil {
				r2.Release()
			}
			done <- err
		}()
		waitWaiting(t, p, 1)
		time.Sleep(200 * time.Microsecond) // the waiter has stamped its start
		before := p.Stat()
		cancel()
		r.Release() // races the cancellation: sometimes served, then canceled
		err := <-done
		after := p.Stat()
		if err != nil {
			caught++
			if after.AcquireDuration != before.AcquireDuration || after.AcquireCount != before.AcquireCount ||
				after.EmptyAcquireWaitTime != before.EmptyAcquireWaitTime {
				t.Fatalf("iteration %d: a canceled acquire changed the stats: before %+v after %+v", i, before, after)
			}
		}
		r = mustAcquire(t, p)
	}
	r.Release()
	t.Logf("%d canceled acquires checked", caught)
}
