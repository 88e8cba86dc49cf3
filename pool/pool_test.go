package pool_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/muxpool/muxpool/pool"
)

func TestPoolAcquireReleaseReuses(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(2))
	r := mustAcquire(t, p)
	if r.Value() != 1 {
		t.Fatalf("value %d, want 1", r.Value())
	}
	r.Release()
	r2 := mustAcquire(t, p)
	if r2.Value() != 1 {
		t.Fatalf("value %d after release, want 1 (reused)", r2.Value())
	}
	r2.Release()
	p.Close()
	if f.constructs.Load() != 1 || f.destroys.Load() != 1 {
		t.Fatalf("constructs %d destroys %d", f.constructs.Load(), f.destroys.Load())
	}
}

func TestPoolAcquireCanceledContext(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire: %v", err)
	}
	if _, err := p.TryAcquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("TryAcquire: %v", err)
	}
	if s := p.Stat(); s.CanceledAcquireCount != 1 || s.Total != 0 {
		t.Fatalf("stat %+v", s)
	}
}

func TestPoolAcquireDeadlineOnFullPool(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	r := mustAcquire(t, p)
	defer r.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := p.Acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire: %v, want DeadlineExceeded as-is", err)
	}
}

func TestPoolTryAcquire(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	// Empty pool: not available now, but a construction starts in the background.
	if _, err := p.TryAcquire(context.Background()); !errors.Is(err, pool.ErrNotAvailable) {
		t.Fatalf("TryAcquire on empty pool: %v", err)
	}
	waitFor(t, "background construction", func() bool { return p.Stat().Idle == 1 })
	r, err := p.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire with idle resource: %v", err)
	}
	if _, err := p.TryAcquire(context.Background()); !errors.Is(err, pool.ErrNotAvailable) {
		t.Fatalf("TryAcquire on full pool: %v", err)
	}
	r.Release()
	if s := p.Stat(); s.AcquireCount != 1 || s.ConstructCount != 1 || s.Total != 1 {
		t.Fatalf("stat %+v", s)
	}
}

func TestPoolReset(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(3))
	held := mustAcquire(t, p)
	idle := mustAcquire(t, p)
	idle.Release()
	p.Reset()
	waitFor(t, "idle destroyed", func() bool { return f.destroys.Load() == 1 })
	held.Release() // stale: destroyed, not pooled
	waitFor(t, "held destroyed", func() bool { return f.destroys.Load() == 2 })
	r := mustAcquire(t, p)
	if r.Value() != 3 {
		t.Fatalf("after Reset got value %d, want a new one (3)", r.Value())
	}
	r.Release()
	f.checkDestroyedOnce(t)
}

// A construction in flight at Reset builds a stale resource: it is destroyed, and its waiter
// gets a fresh one.
func TestPoolResetDuringConstruction(t *testing.T) {
	f := newFake()
	gate := make(chan struct{})
	f.setConstruct(func(ctx context.Context, id int) error {
		if id == 1 {
			<-gate
		}
		return nil
	})
	p := mustNew(t, f.config(1))
	got := make(chan int, 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
			got <- 0
			return
		}
		got <- r.Value()
		r.Release()
	}()
	waitFor(t, "construction", func() bool { return p.Stat().Constructing == 1 })
	p.Reset()
	close(gate)
	if v := <-got; v != 2 {
		t.Fatalf("waiter got value %d, want the one built after Reset (2)", v)
	}
	waitFor(t, "stale destroyed", func() bool { return f.destroys.Load() == 1 })
	f.checkDestroyedOnce(t)
}

// Behaviour 6: Close wakes every blocked Acquire at once, destroys each resource exactly once
// (a held one when it is released), and leaves no goroutine behind.
func TestPoolCloseWakesWaitersAndDestroysOnce(t *testing.T) {
	f := newFake()
	p, err := pool.New(f.config(2))
	if err != nil {
		t.Fatal(err)
	}
	held := mustAcquire(t, p)
	mustAcquire(t, p).Release() // one idle

	// Fill the last slot with a held one so waiters block.
	held2 := mustAcquire(t, p)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := p.Acquire(context.Background())
			errs <- err
		})
	}
	waitWaiting(t, p, n)

	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	wg.Wait() // every waiter returns while resources are still held
	close(errs)
	for err := range errs {
		if !errors.Is(err, pool.ErrClosedPool) {
			t.Fatalf("waiter: %v, want ErrClosedPool", err)
		}
	}
	select {
	case <-closed:
		t.Fatal("Close returned while resources were held")
	default:
	}
	if _, err := p.Acquire(context.Background()); !errors.Is(err, pool.ErrClosedPool) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	if _, err := p.TryAcquire(context.Background()); !errors.Is(err, pool.ErrClosedPool) {
		t.Fatalf("TryAcquire after Close: %v", err)
	}
	held.Release()
	held2.Destroy()
	held2.Destroy()
	<-closed
	p.Close() // idempotent
	f.checkDestroyedOnce(t)
	if f.destroys.Load() != 2 || f.liveCount() != 0 {
		t.Fatalf("destroys %d, live %d", f.destroys.Load(), f.liveCount())
	}
	checkTotals(t, p, f)
	goleak.VerifyNone(t)
}

// Behaviour 6: Shutdown returns ctx's error when holders do not release in time; the held
// resource is still destroyed when released.
func TestPoolShutdownDeadline(t *testing.T) {
	f := newFake()
	p, err := pool.New(f.config(1))
	if err != nil {
		t.Fatal(err)
	}
	r := mustAcquire(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	r.Release()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if f.destroys.Load() != 1 {
		t.Fatalf("destroys %d", f.destroys.Load())
	}
	goleak.VerifyNone(t)
}

// The uncontended path allocates nothing.
func TestPoolAcquireReleaseAllocsNothing(t *testing.T) {
	f := newFake()
	cfg := f.config(4)
	cfg.MaxLifetime = time.Hour
	p := mustNew(t, cfg)
	mustAcquire(t, p).Release()
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		r, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}); n != 0 {
		t.Fatalf("%v allocations per Acquire+Release", n)
	}
}
