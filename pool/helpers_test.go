package pool_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// fake is a resource factory with hooks and exact counts.
type fake struct {
	mu        sync.Mutex
	next      int
	live      map[int]bool // built and not yet destroyed
	destroyed map[int]int  // destroy calls per value

	constructs, destroys  atomic.Int64
	inFlight, maxInFlight atomic.Int64

	// hooks (may be nil)
	construct func(ctx context.Context, id int) error
	destroy   func(id int)
}

var errBackend = errors.New("backend down")

func newFake() *fake {
	return &fake{live: map[int]bool{}, destroyed: map[int]int{}}
}

func (f *fake) Constructor(ctx context.Context) (int, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.next++
	id := f.next
	hook := f.construct
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, id); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	f.live[id] = true
	f.mu.Unlock()
	f.constructs.Add(1)
	return id, nil
}

func (f *fake) Destructor(id int) {
	if f.destroy != nil {
		f.destroy(id)
	}
	f.mu.Lock()
	delete(f.live, id)
	f.destroyed[id]++
	f.mu.Unlock()
	f.destroys.Add(1)
}

func (f *fake) setConstruct(h func(ctx context.Context, id int) error) {
	f.mu.Lock()
	f.construct = h
	f.mu.Unlock()
}

// checkDestroyedOnce fails t if some value was destroyed more than once.
func (f *fake) checkDestroyedOnce(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.destroyed {
		if n != 1 {
			t.Errorf("value %d destroyed %d times", id, n)
		}
	}
}

func (f *fake) liveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

func (f *fake) config(max int32) pool.Config[int] {
	return pool.Config[int]{Constructor: f.Constructor, Destructor: f.Destructor, MaxSize: max}
}

func mustNew[T any](t testing.TB, cfg pool.Config[T]) *pool.Pool[T] {
	t.Helper()
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func mustAcquire[T any](t testing.TB, p *pool.Pool[T]) *pool.Resource[T] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return r
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitWaiting waits until n acquires are queued.
func waitWaiting[T any](t testing.TB, p *pool.Pool[T], n int32) {
	t.Helper()
	waitFor(t, "waiters", func() bool { return p.Stat().Waiting == n })
}

// checkTotals asserts the at-rest identity constructions - destroys - hijacks = Total and that
// the pool's counts agree with the fake's.
func checkTotals(t *testing.T, p *pool.Pool[int], f *fake) {
	t.Helper()
	s := p.Stat()
	if got := s.ConstructCount - s.DestroyCount - s.HijackCount; got != int64(s.Total) {
		t.Errorf("constructs %d - destroys %d - hijacks %d = %d, Total %d", s.ConstructCount, s.DestroyCount, s.HijackCount, got, s.Total)
	}
	if s.ConstructCount != f.constructs.Load() || s.DestroyCount != f.destroys.Load() {
		t.Errorf("pool counts constructs %d destroys %d; fake saw %d and %d", s.ConstructCount, s.DestroyCount, f.constructs.Load(), f.destroys.Load())
	}
}
