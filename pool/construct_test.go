package pool_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool"
)

type ctxKey struct{}

// Behaviour 3: the Constructor gets the caller's values but not its cancellation; the
// resource finished after the caller gave up lands in the idle set.
func TestConstructDetachedFromCaller(t *testing.T) {
	f := newFake()
	release := make(chan struct{})
	type seen struct {
		value any
		err   error
	}
	saw := make(chan seen, 1)
	f.setConstruct(func(ctx context.Context, id int) error {
		<-release
		saw <- seen{ctx.Value(ctxKey{}), ctx.Err()}
		return nil
	})
	p := mustNew(t, f.config(1))

	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "v"), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire: %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Acquire returned after %v, not at its deadline", el)
	}
	close(release)
	s := <-saw
	if s.value != "v" || s.err != nil {
		t.Fatalf("constructor ctx: value %v err %v; want caller's value and no cancellation", s.value, s.err)
	}
	waitFor(t, "idle resource", func() bool { return p.Stat().Idle == 1 })
	if st := p.Stat(); st.Total != 1 || st.CanceledAcquireCount != 1 || st.ConstructCount != 1 {
		t.Fatalf("stat %+v", st)
	}
	r := mustAcquire(t, p) // no new construction
	r.Release()
	if f.constructs.Load() != 1 {
		t.Fatalf("%d constructions, want 1", f.constructs.Load())
	}
}

// Behaviour 3: a resource whose caller gave up goes to the next waiter.
func TestConstructOrphanGoesToNextWaiter(t *testing.T) {
	f := newFake()
	release := make(chan struct{})
	f.setConstruct(func(ctx context.Context, id int) error { <-release; return nil })
	p := mustNew(t, f.config(1))

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() { _, err := p.Acquire(ctxA); errA <- err }()
	waitWaiting(t, p, 1)
	gotB := make(chan *pool.Resource[int], 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		gotB <- r
	}()
	waitWaiting(t, p, 2)
	cancelA()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("A: %v", err)
	}
	close(release)
	r := <-gotB
	if r.Value() != 1 {
		t.Fatalf("B got %d, want the resource built for A", r.Value())
	}
	r.Release()
	if s := p.Stat(); s.ConstructCount != 1 || s.Total != 1 {
		t.Fatalf("stat %+v", s)
	}
}

// Behaviour 3: Close and ConstructTimeout are what cancel a construction.
func TestConstructCanceledByCloseAndTimeout(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		f := newFake()
		started := make(chan struct{})
		f.setConstruct(func(ctx context.Context, id int) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		p, err := pool.New(f.config(1))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { _, err := p.Acquire(context.Background()); errc <- err }()
		<-started
		p.Close()
		if err := <-errc; !errors.Is(err, pool.ErrClosedPool) {
			t.Fatalf("Acquire: %v, want ErrClosedPool", err)
		}
		if s := p.Stat(); s.Total != 0 || s.ConstructErrorCount != 1 {
			t.Fatalf("stat %+v", s)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newFake()
		f.setConstruct(func(ctx context.Context, id int) error {
			<-ctx.Done()
			return ctx.Err()
		})
		cfg := f.config(1)
		cfg.ConstructTimeout = 20 * time.Millisecond
		p := mustNew(t, cfg)
		_, err := p.Acquire(context.Background())
		if !errors.Is(err, pool.ErrConstructTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire: %v, want ErrConstructTimeout with the constructor's DeadlineExceeded", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%v is not a net.Error timeout", err)
		}
		if s := p.Stat(); s.Total != 0 {
			t.Fatalf("slot not freed: %+v", s)
		}
	})
}

// occupancy tracks constructions in flight + live values, as the backend would see them.
type occupancy struct{ cur, peak atomic.Int64 }

func (o *occupancy) add(n int64) {
	v := o.cur.Add(n)
	for {
		p := o.peak.Load()
		if v <= p || o.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// Behaviour 3: constructing + live + being destroyed never exceed MaxSize, also while MinSize
// warm-up races with Acquire and with destroys.
func TestConstructNeverExceedsMaxSize(t *testing.T) {
	const max = 4
	var occ occupancy
	cfg := pool.Config[int]{
		MaxSize:           max,
		MinSize:           max,
		MinIdle:           2,
		HealthCheckPeriod: time.Millisecond,
		Constructor: func(ctx context.Context) (int, error) {
			occ.add(1)
			time.Sleep(time.Millisecond)
			return 1, nil
		},
		Destructor: func(int) {
			time.Sleep(time.Millisecond)
			occ.add(-1)
		},
	}
	p := mustNew(t, cfg)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%5)*time.Millisecond)
				r, err := p.Acquire(ctx)
				cancel()
				if err != nil {
					continue
				}
				if (g+i)%3 == 0 {
					r.Destroy()
				} else {
					r.Release()
				}
			}
		})
	}
	wg.Wait()
	p.Close()
	if peak := occ.peak.Load(); peak > max {
		t.Fatalf("peak occupancy %d > MaxSize %d", peak, max)
	}
	if cur := occ.cur.Load(); cur != 0 {
		t.Fatalf("%d values not destroyed after Close", cur)
	}
}

// Behaviour 4: a failed construction fails only its own waiter; the waiter queued behind it
// keeps waiting for its own construction.
func TestConstructFailureFailsOnlyItsWaiter(t *testing.T) {
	f := newFake()
	gate := make(chan struct{})
	f.setConstruct(func(ctx context.Context, id int) error {
		if ctx.Value(ctxKey{}) == "fail" {
			return errBackend
		}
		<-gate
		return nil
	})
	p := mustNew(t, f.config(2))
	gotB := make(chan error, 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err == nil {
			r.Release()
		}
		gotB <- err
	}()
	waitWaiting(t, p, 1)
	_, err := p.Acquire(context.WithValue(context.Background(), ctxKey{}, "fail"))
	if !errors.Is(err, errBackend) {
		t.Fatalf("A: %v, want its constructor's error", err)
	}
	select {
	case err := <-gotB:
		t.Fatalf("B returned (%v) on A's failure", err)
	default:
	}
	close(gate)
	if err := <-gotB; err != nil {
		t.Fatalf("B: %v", err)
	}
	if s := p.Stat(); s.Total != 1 || s.Idle != 1 || s.ConstructErrorCount != 1 {
		t.Fatalf("stat %+v", s)
	}
}

// Behaviour 4: while the backend is down no waiter hangs and at most MaxSize constructions
// run at once; when it comes back the pool recovers fully (MinSize included).
func TestConstructBackendDownAndRecovery(t *testing.T) {
	const max = 4
	f := newFake()
	var down atomic.Bool
	down.Store(true)
	f.setConstruct(func(ctx context.Context, id int) error {
		time.Sleep(time.Millisecond)
		if down.Load() {
			return errBackend
		}
		return nil
	})
	cfg := f.config(max)
	cfg.MinSize = 2
	cfg.HealthCheckPeriod = 20 * time.Millisecond
	p := mustNew(t, cfg)

	run := func() (ok, failed int64) {
		var nOK, nFail atomic.Int64
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				r, err := p.Acquire(ctx)
				switch {
				case err == nil:
					nOK.Add(1)
					time.Sleep(time.Millisecond)
					r.Release()
				case errors.Is(err, errBackend):
					nFail.Add(1)
				default:
					t.Errorf("Acquire: %v", err)
				}
			})
		}
		wg.Wait()
		return nOK.Load(), nFail.Load()
	}
	if ok, failed := run(); ok != 0 || failed != 40 {
		t.Fatalf("backend down: %d ok, %d failed; want 0 and 40", ok, failed)
	}
	if peak := f.maxInFlight.Load(); peak > max {
		t.Fatalf("%d constructions in flight at once, MaxSize %d", peak, max)
	}
	if s := p.Stat(); s.Total > 2 || s.Waiting != 0 { // only warm-up may be in flight
		t.Fatalf("after outage: %+v", s)
	}

	down.Store(false)
	if ok, failed := run(); ok != 40 || failed != 0 {
		t.Fatalf("backend up: %d ok, %d failed; want 40 and 0", ok, failed)
	}
	waitFor(t, "MinSize restored", func() bool { s := p.Stat(); return s.Idle >= 2 })
	checkTotals(t, p, f)
}
