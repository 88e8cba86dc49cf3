package pool_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// hammer runs n goroutines that Acquire (each with a ctx of timeout) and Release in a loop
// until stop is closed. It records every error, and fails t if a call returned after its
// deadline. Run it inside a synctest bubble: the deadlines are then exact.
func hammer(t *testing.T, p *pool.Pool[int], n int, timeout time.Duration, stop <-chan struct{}, errs chan<- error, firstOK chan<- time.Time) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				r, err := p.Acquire(ctx)
				cancel()
				if took := time.Since(start); took > timeout {
					t.Errorf("Acquire returned %v after its %v deadline", took-timeout, timeout)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				select {
				case firstOK <- time.Now():
				default:
				}
				time.Sleep(time.Millisecond)
				r.Release()
			}
		})
	}
	return &wg
}

// TestDownBackendRedialIsBounded: while every construction fails, 32 callers retrying in a
// tight loop with 50 ms contexts cause at most about 100 failed attempts a second in total,
// every call returns by its deadline, the backend's error reaches callers, and once the
// backend is back the pool serves again within half a second.
func TestDownBackendRedialIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		var down atomic.Bool
		down.Store(true)
		f.setConstruct(func(context.Context, int) error {
			if down.Load() {
				return errBackend
			}
			return nil
		})
		p := mustNew(t, f.config(8))
		stop := make(chan struct{})
		errs := make(chan error, 1<<16)
		firstOK := make(chan time.Time, 1)
		wg := hammer(t, p, 32, 50*time.Millisecond, stop, errs, firstOK)

		time.Sleep(2 * time.Second)
		attempts := p.Stat().ConstructErrorCount
		if attempts > 2*100 {
			t.Errorf("%d failed constructions in 2 s, want at most about 100 a second", attempts)
		}
		var backendErrs, other int
		for len(errs) > 0 {
			switch err := <-errs; {
			case errors.Is(err, errBackend):
				backendErrs++
			case !errors.Is(err, context.DeadlineExceeded):
				other++
				t.Errorf("unexpected error %v", err)
			}
		}
		if backendErrs == 0 {
			t.Error("no caller saw the backend's error")
		}
		t.Logf("backend down 2 s: %d failed constructions, %d callers got the backend error", attempts, backendErrs)

		up := time.Now()
		down.Store(false)
		select {
		case ok := <-firstOK:
			if d := ok.Sub(up); d > 500*time.Millisecond {
				t.Errorf("first success %v after the backend came back, want within 500ms", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no success within 5 s of the backend coming back")
		}
		close(stop)
		wg.Wait()
		if s := p.Stat(); s.Total == 0 || s.Waiting != 0 {
			t.Fatalf("after recovery: %+v", s)
		}
	})
}

var errFull = errors.New("backend full")

// limitedBackend is a fake backend that accepts at most limit resources at once and fails
// constructions beyond that with errFull.
func limitedBackend(f *fake, limit int64) {
	var live atomic.Int64
	f.setConstruct(func(context.Context, int) error {
		if live.Add(1) > limit {
			live.Add(-1)
			return errFull
		}
		return nil
	})
	f.destroy = func(int) { live.Add(-1) }
}

// TestCapacityErrorsAreAbsorbed: a backend that takes 5 resources, a pool of 20 and 40 callers
// with 10 s contexts: nobody fails, the pool caps itself at 5 (Stat.Cap), and it probes for
// more about once a second, not more.
func TestCapacityErrorsAreAbsorbed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		limitedBackend(f, 5)
		cfg := f.config(20)
		cfg.CapacityError = func(err error) bool { return errors.Is(err, errFull) }
		p := mustNew(t, cfg)
		stop := make(chan struct{})
		errs := make(chan error, 1<<16)
		wg := hammer(t, p, 40, 10*time.Second, stop, errs, nil)
		time.Sleep(5 * time.Second)
		s := p.Stat()
		close(stop)
		wg.Wait()
		if len(errs) != 0 {
			t.Fatalf("%d callers failed, first: %v", len(errs), <-errs)
		}
		if s.Cap < 5 || s.Cap > 6 || s.Total > 6 || s.Max != 20 {
			t.Errorf("under load: Cap %d Total %d Max %d; want Cap 5 (6 while probing), Max 20", s.Cap, s.Total, s.Max)
		}
		// 15 refusals at the start, then about one probe a second.
		if s.ConstructErrorCount > 15+5+1 {
			t.Errorf("%d refused constructions in 5 s", s.ConstructErrorCount)
		}
		if s.AcquireCount < 1000 {
			t.Errorf("only %d acquires served", s.AcquireCount)
		}
		t.Logf("5 s: %d acquires, %d refused constructions, cap %d", s.AcquireCount, s.ConstructErrorCount, s.Cap)
	})
}

// TestCapacityErrorWithNothingHeldFails: a capacity error when the pool holds nothing else
// fails the caller (there is nothing to wait for), with the backend's error.
func TestCapacityErrorWithNothingHeldFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		limitedBackend(f, 0)
		cfg := f.config(4)
		cfg.CapacityError = func(err error) bool { return errors.Is(err, errFull) }
		p := mustNew(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.Acquire(ctx); !errors.Is(err, errFull) {
			t.Fatalf("Acquire: %v, want errFull", err)
		}
		if s := p.Stat(); s.Cap != 4 {
			t.Fatalf("Cap %d after an unabsorbed failure, want Max", s.Cap)
		}
	})
}

// TestWaiterAfterFailureIsServedAfterTheDelay: a caller that arrives after a failed
// construction, once the maintainer has gone back to sleep, gets its construction when the
// retry delay ends (at most 20 ms after one failure), not at the next health check an hour
// later.
func TestWaiterAfterFailureIsServedAfterTheDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		var calls atomic.Int32
		f.setConstruct(func(context.Context, int) error {
			if calls.Add(1) == 1 {
				return errBackend
			}
			return nil
		})
		cfg := f.config(2)
		cfg.HealthCheckPeriod = time.Hour
		p := mustNew(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.Acquire(ctx); !errors.Is(err, errBackend) {
			t.Fatalf("first Acquire: %v, want errBackend", err)
		}
		synctest.Wait() // the maintainer has made its pass and sleeps
		start := time.Now()
		r, err := p.Acquire(ctx)
		if err != nil {
			t.Fatalf("second Acquire: %v", err)
		}
		if d := time.Since(start); d > 20*time.Millisecond {
			t.Fatalf("second Acquire served after %v, want within the 10-20 ms retry delay", d)
		}
		r.Release()
	})
}
