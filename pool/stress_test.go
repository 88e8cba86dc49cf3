package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// stressDuration is how long TestStress runs: POOL_STRESS_DURATION (a Go duration) or 1 s
// (200 ms with -short).
func stressDuration(t *testing.T) time.Duration {
	if s := os.Getenv("POOL_STRESS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("POOL_STRESS_DURATION: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 200 * time.Millisecond
	}
	return time.Second
}

// Behaviour 7: random acquires with random deadlines, TryAcquire, release/destroy/hijack,
// failing (some with capacity errors) and slow constructors, Reset and Stat from many goroutines end with consistent
// totals, nothing acquired, every value destroyed exactly once, and no goroutine left.
func TestStress(t *testing.T) {
	const max = 6
	f := newFake()
	var occ occupancy
	var hijacked atomic.Int64
	f.setConstruct(func(ctx context.Context, id int) error {
		occ.add(1)
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		}
		if rand.IntN(8) == 0 {
			occ.add(-1)
			if rand.IntN(2) == 0 {
				return errFull // absorbed while the pool holds others (CapacityError)
			}
			return errBackend
		}
		if err := ctx.Err(); err != nil {
			occ.add(-1)
			return err
		}
		return nil
	})
	f.destroy = func(int) { occ.add(-1) }
	cfg := f.config(max)
	cfg.MinSize = 2
	cfg.MinIdle = 1
	cfg.MaxLifetime = 20 * time.Millisecond
	cfg.MaxLifetimeJitter = 10 * time.Millisecond
	cfg.MaxIdleTime = 5 * time.Millisecond
	cfg.HealthCheckPeriod = 2 * time.Millisecond
	cfg.ConstructTimeout = time.Second
	cfg.CapacityError = func(err error) bool { return errors.Is(err, errFull) }
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var acquired, canceled, failed, notAvail atomic.Int64
	for range 24 {
		wg.Go(func() {
			for !stop.Load() {
				var r *pool.Resource[int]
				var err error
				if rand.IntN(5) == 0 {
					r, err = p.TryAcquire(context.Background())
				} else {
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(3000))*time.Microsecond)
					r, err = p.Acquire(ctx)
					cancel()
				}
				switch {
				case err == nil:
					acquired.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					canceled.Add(1)
					continue
				case errors.Is(err, errBackend), errors.Is(err, errFull):
					failed.Add(1)
					continue
				case errors.Is(err, pool.ErrNotAvailable):
					notAvail.Add(1)
					continue
				default:
					t.Errorf("acquire: %v", err)
					return
				}
				if rand.IntN(3) == 0 {
					time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
				}
				switch n := rand.IntN(20); {
				case n == 0:
					r.Destroy()
				case n == 1:
					occ.add(-1) // the caller now owns it; it no longer counts against the pool
					hijacked.Add(1)
					r.Hijack()
				case n < 5:
					r.ReleaseUnused()
				default:
					r.Release()
				}
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			if rand.IntN(4) == 0 {
				p.Reset()
			}
			s := p.Stat()
			if s.Total > s.Max || s.Cap > s.Max || s.Total != s.Idle+s.Acquired+s.Constructing+s.Destroying {
				t.Errorf("inconsistent stat %+v", s)
			}
		}
	})
	time.Sleep(stressDuration(t))
	stop.Store(true)
	wg.Wait()

	waitFor(t, "quiescence", func() bool { s := p.Stat(); return s.Constructing == 0 && s.Destroying == 0 })
	s := p.Stat()
	if s.Acquired != 0 || s.Waiting != 0 {
		t.Errorf("after the run: %+v", s)
	}
	if s.HijackCount != hijacked.Load() {
		t.Errorf("HijackCount %d, hijacked %d", s.HijackCount, hijacked.Load())
	}
	if s.AcquireCount != acquired.Load() {
		t.Errorf("AcquireCount %d, callers got %d", s.AcquireCount, acquired.Load())
	}
	checkTotals(t, p, f)
	p.Close()
	s = p.Stat()
	if s.Total != 0 || s.ConstructCount-s.DestroyCount-s.HijackCount != 0 {
		t.Errorf("after Close: %+v", s)
	}
	if peak := occ.peak.Load(); peak > max {
		t.Errorf("peak occupancy %d > MaxSize %d", peak, max)
	}
	if cur := occ.cur.Load(); cur != 0 {
		t.Errorf("occupancy %d after Close", cur)
	}
	if live := int64(f.liveCount()); live != hijacked.Load() {
		t.Errorf("%d values alive after Close, %d hijacked", live, hijacked.Load())
	}
	f.checkDestroyedOnce(t)
	t.Logf("acquired %d, deadline %d, constructor errors %d, not available %d, hijacked %d; stat %+v",
		acquired.Load(), canceled.Load(), failed.Load(), notAvail.Load(), hijacked.Load(), s)
}
