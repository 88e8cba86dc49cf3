package pool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// acquireTimes is an AcquireObserver that counts and sums what it is told.
type acquireTimes struct {
	n   atomic.Int64
	sum atomic.Int64
}

func (a *acquireTimes) ObserveAcquire(d time.Duration) {
	a.n.Add(1)
	a.sum.Add(int64(d))
}

// The observer sees every successful Acquire, idle or waited for, with the time Stat.AcquireTime
// sums; TryAcquire and failed acquires are not observed.
func TestAcquireObserverSeesEverySuccessfulAcquire(t *testing.T) {
	f := newFake()
	obs := &acquireTimes{}
	cfg := f.config(1)
	cfg.AcquireObserver = obs
	p := mustNew(t, cfg)

	mustAcquire(t, p).Release() // constructed for a waiter
	mustAcquire(t, p).Release() // idle
	r, err := p.TryAcquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A second Acquire waits for the release.
	got := make(chan *pool.Resource[int], 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitWaiting(t, p, 1)
	// One that gives up is not observed.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := p.Acquire(ctx)
		gaveUp <- err
	}()
	waitWaiting(t, p, 2)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Acquire: %v", err)
	}
	r.Release()
	if r := <-got; r != nil {
		r.Release()
	}

	st := p.Stat()
	if n := obs.n.Load(); n != 3 || st.AcquireCount != 4 {
		t.Fatalf("observed %d acquires, Stat.AcquireCount %d; want 3 and 4 (one TryAcquire)", n, st.AcquireCount)
	}
	if sum := time.Duration(obs.sum.Load()); sum != st.AcquireTime {
		t.Fatalf("observed %v in all, Stat.AcquireTime %v", sum, st.AcquireTime)
	}
}

// An observer adds no allocation to the uncontended path.
func TestAcquireObserverAllocsNothing(t *testing.T) {
	f := newFake()
	cfg := f.config(4)
	cfg.AcquireObserver = &acquireTimes{}
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
		t.Fatalf("%v allocations per Acquire+Release with an AcquireObserver", n)
	}
}

func benchmarkAcquireRelease(b *testing.B, obs pool.AcquireObserver) {
	f := newFake()
	cfg := f.config(4)
	cfg.AcquireObserver = obs
	p := mustNew(b, cfg)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		r.Release()
	}
}

// BenchmarkAcquireRelease is the uncontended Acquire+Release, with no observer and with one:
// both report 0 allocs/op.
func BenchmarkAcquireRelease(b *testing.B) {
	b.Run("observer=nil", func(b *testing.B) { benchmarkAcquireRelease(b, nil) })
	b.Run("observer=set", func(b *testing.B) { benchmarkAcquireRelease(b, &acquireTimes{}) })
}
