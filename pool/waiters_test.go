package pool_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// queueInOrder starts n Acquire calls one after another, each queued before the next starts,
// and returns their results in completion order through got. ctxs[i] is waiter i's ctx.
func queueInOrder(t *testing.T, p *pool.Pool[int], ctxs []context.Context, base int32) (order chan int, errs []error, wg *sync.WaitGroup) {
	t.Helper()
	order = make(chan int, len(ctxs))
	errs = make([]error, len(ctxs))
	wg = &sync.WaitGroup{}
	for i, ctx := range ctxs {
		wg.Go(func() {
			r, err := p.Acquire(ctx)
			errs[i] = err
			if err != nil {
				return
			}
			order <- i
			r.Release()
		})
		waitWaiting(t, p, base+int32(i)+1)
	}
	return order, errs, wg
}

// Behaviour 1: waiters are served strictly in arrival order.
func TestWaitersServedInArrivalOrder(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	held := mustAcquire(t, p)

	const n = 10
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		ctxs[i] = context.Background()
	}
	order, errs, wg := queueInOrder(t, p, ctxs, 0)
	held.Release()
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d served in position %d", got, want)
		}
		want++
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("waiter %d: %v", i, err)
		}
	}
	if want != n {
		t.Fatalf("served %d waiters, want %d", want, n)
	}
	if s := p.Stat(); s.EmptyAcquireCount != n+1 || s.AcquireCount != n+1 || s.ConstructCount != 1 {
		t.Fatalf("stat %+v", s)
	}
}

// Behaviour 1: a waiter that gives up leaves the order intact and consumes nothing.
func TestWaitersCanceledLeaveOrderIntact(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	held := mustAcquire(t, p)

	const n = 10
	ctxs := make([]context.Context, n)
	cancels := map[int]context.CancelFunc{}
	for i := range ctxs {
		ctxs[i] = context.Background()
		if i == 0 || i == 3 || i == 7 {
			ctxs[i], cancels[i] = context.WithCancel(context.Background())
		}
	}
	order, errs, wg := queueInOrder(t, p, ctxs, 0)
	for _, cancel := range cancels {
		cancel()
	}
	waitWaiting(t, p, n-int32(len(cancels)))
	held.Release()
	wg.Wait()
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	want := []int{1, 2, 4, 5, 6, 8, 9}
	if len(got) != len(want) {
		t.Fatalf("served %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("served %v, want %v", got, want)
		}
	}
	for i := range cancels {
		if !errors.Is(errs[i], context.Canceled) {
			t.Errorf("canceled waiter %d: err %v, want context.Canceled", i, errs[i])
		}
	}
	s := p.Stat()
	if s.CanceledAcquireCount != int64(len(cancels)) || s.Total != 1 || s.Idle != 1 || s.Waiting != 0 {
		t.Fatalf("stat %+v", s)
	}
}

// Behaviour 1: a newcomer never takes a resource while others wait, even one just released.
func TestWaitersNoBarging(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(2))
	a, b := mustAcquire(t, p), mustAcquire(t, p)

	got := make(chan *pool.Resource[int], 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitWaiting(t, p, 1)
	a.Release()
	// The release went straight to the waiter: nothing is idle for the newcomer.
	if r, err := p.TryAcquire(context.Background()); !errors.Is(err, pool.ErrNotAvailable) {
		t.Fatalf("TryAcquire after hand-off: %v, %v; want ErrNotAvailable", r, err)
	}
	r := <-got
	if r.Value() != a.Value() {
		t.Fatalf("waiter got %d, want the released %d", r.Value(), a.Value())
	}
	r.Release()
	b.Release()
}

// Behaviour 2: the race between a hand-off and the waiter's deadline never leaks a resource
// or a slot.
func TestWaitersHandOffRacesDeadline(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	var served, timedOut int
	for i := range 300 {
		held := mustAcquire(t, p)
		d := time.Duration(i%30) * 20 * time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), d+100*time.Microsecond)
		done := make(chan error, 1)
		go func() {
			r, err := p.Acquire(ctx)
			if err == nil {
				r.Release()
			}
			done <- err
		}()
		time.Sleep(d)
		held.Release()
		err := <-done
		cancel()
		switch {
		case err == nil:
			served++
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		default:
			t.Fatalf("iteration %d: %v", i, err)
		}
		if s := p.Stat(); s.Total != 1 || s.Idle != 1 || s.Acquired != 0 || s.Waiting != 0 {
			t.Fatalf("iteration %d: leaked: %+v", i, s)
		}
	}
	t.Logf("served %d, timed out %d", served, timedOut)
	if f.constructs.Load() != 1 {
		t.Fatalf("%d constructions, want 1", f.constructs.Load())
	}
}
