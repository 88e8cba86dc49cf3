package pgpool_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool/pgpool"
)

// TestStatHasPgxpoolMeanings: Stat's methods count what pgxpool's count: TotalConns is
// constructing + acquired + idle, NewConnsCount counts connection attempts, AcquireDuration is
// the whole acquire time (not just the wait), and the destroy counters count lifetime and
// idle-time closes.
func TestStatHasPgxpoolMeanings(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=3")
	ctx := testCtx(t)
	s := p.Stat()
	if s.MaxConns() != 3 || s.TotalConns() != 0 || s.NewConnsCount() != 0 || s.AcquireCount() != 0 {
		t.Fatalf("fresh pool: max %d total %d new %d acquires %d", s.MaxConns(), s.TotalConns(), s.NewConnsCount(), s.AcquireCount())
	}
	a, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	s = p.Stat()
	ps := p.PoolStat()
	if s.TotalConns() != 2 || s.AcquiredConns() != 1 || s.IdleConns() != 1 || s.ConstructingConns() != 0 {
		t.Fatalf("gauges: total %d acquired %d idle %d constructing %d", s.TotalConns(), s.AcquiredConns(), s.IdleConns(), s.ConstructingConns())
	}
	if s.NewConnsCount() != 2 || s.AcquireCount() != 2 || s.EmptyAcquireCount() != 2 || s.CanceledAcquireCount() != 0 {
		t.Fatalf("counters: new %d acquires %d empty %d canceled %d", s.NewConnsCount(), s.AcquireCount(), s.EmptyAcquireCount(), s.CanceledAcquireCount())
	}
	// Both acquires waited for a connect: the wait is most of the acquire time, and both are
	// positive. AcquireDuration is pool.Stat.AcquireTime, not the wait-only AcquireDuration.
	if s.AcquireDuration() <= 0 || s.AcquireDuration() != ps.AcquireTime || s.EmptyAcquireWaitTime() != ps.EmptyAcquireWaitTime {
		t.Fatalf("durations: acquire %v (pool %v) empty wait %v (pool %v)", s.AcquireDuration(), ps.AcquireTime, s.EmptyAcquireWaitTime(), ps.EmptyAcquireWaitTime)
	}
	c, err := p.Acquire(ctx) // from the idle set: counted, but not as empty
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	a.Release()
	s2 := p.Stat()
	if s2.AcquireCount() != 3 || s2.EmptyAcquireCount() != 2 || s2.AcquireDuration() < s.AcquireDuration() {
		t.Fatalf("idle acquire: acquires %d empty %d duration %v (was %v)", s2.AcquireCount(), s2.EmptyAcquireCount(), s2.AcquireDuration(), s.AcquireDuration())
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Acquire(canceled); err == nil {
		t.Fatal("Acquire with a canceled ctx succeeded")
	}
	if n := p.Stat().CanceledAcquireCount(); n != 1 {
		t.Fatalf("CanceledAcquireCount %d, want 1", n)
	}
}

// TestStatCountsLifetimeAndIdleDestroys: MaxLifetimeDestroyCount and MaxIdleDestroyCount count
// the closes each limit caused.
func TestStatCountsLifetimeAndIdleDestroys(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=2 pool_max_conn_lifetime=50ms")
	ctx := testCtx(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // past the lifetime while held: closed on release
	c.Release()
	waitFor(t, "the expired connection to close", func() bool { return p.Stat().MaxLifetimeDestroyCount() == 1 })

	q, _ := newPool(t, "pool_max_conns=2 pool_max_conn_idle_time=20ms pool_health_check_period=10ms")
	c, err = q.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	waitFor(t, "the idle connection to close", func() bool { return q.Stat().MaxIdleDestroyCount() == 1 })
	if s := q.Stat(); s.TotalConns() != 0 || s.MaxLifetimeDestroyCount() != 0 {
		t.Fatalf("after the idle close: total %d lifetime destroys %d", s.TotalConns(), s.MaxLifetimeDestroyCount())
	}
}

// acquireCounter is a pool.AcquireObserver that counts and sums.
type acquireCounter struct{ n, sum atomic.Int64 }

func (a *acquireCounter) ObserveAcquire(d time.Duration) {
	a.n.Add(1)
	a.sum.Add(int64(d))
}

// TestAcquireObserverPassedThrough: Config.AcquireObserver sees every successful acquire, the
// times AcquireDuration sums.
func TestAcquireObserverPassedThrough(t *testing.T) {
	obs := &acquireCounter{}
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=2")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AcquireObserver = obs
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	ctx := testCtx(t)
	for range 3 {
		if err := p.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s := p.Stat()
	if obs.n.Load() != 3 || s.AcquireCount() != 3 || time.Duration(obs.sum.Load()) != s.AcquireDuration() {
		t.Fatalf("observed %d acquires, %v; Stat: %d, %v", obs.n.Load(), time.Duration(obs.sum.Load()), s.AcquireCount(), s.AcquireDuration())
	}
}
