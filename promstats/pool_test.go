package promstats_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/muxpool/muxpool/pool"
	"github.com/muxpool/muxpool/promstats"
	"github.com/prometheus/client_golang/prometheus"
)

// A Pool collector reports what the pool did: two acquires that waited for a construction,
// one served from the idle set, one canceled, one hijack; and the acquire histogram holds the
// three successful Acquire calls, summing to the acquire time.
func TestPoolCollectorScrapesKnownActivity(t *testing.T) {
	var built atomic.Int64
	acquire := promstats.NewHistogram(nil)
	p, err := pool.New(pool.Config[int64]{
		Constructor:     func(context.Context) (int64, error) { return built.Add(1), nil },
		MaxSize:         2,
		AcquireObserver: acquire,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	url := serve(t, promstats.NewPool(p, "test", acquire))

	ctx := context.Background()
	a, err := p.Acquire(ctx) // constructed
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	b, err := p.Acquire(ctx) // idle
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Acquire(ctx) // constructed
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Acquire(canceled); err == nil {
		t.Fatal("Acquire with a canceled context succeeded")
	}
	b.Hijack()

	compare(t, url, `
# HELP muxpool_pool_acquire_total Successful acquires (Acquire and TryAcquire).
# TYPE muxpool_pool_acquire_total counter
muxpool_pool_acquire_total{pool="test"} 3
# HELP muxpool_pool_acquire_empty_total Successful acquires that found no idle resource and waited for a release or a construction.
# TYPE muxpool_pool_acquire_empty_total counter
muxpool_pool_acquire_empty_total{pool="test"} 2
# HELP muxpool_pool_acquire_canceled_total Acquire calls that returned their context's error.
# TYPE muxpool_pool_acquire_canceled_total counter
muxpool_pool_acquire_canceled_total{pool="test"} 1
# HELP muxpool_pool_construct_total Constructor calls that returned, by result: success or error.
# TYPE muxpool_pool_construct_total counter
muxpool_pool_construct_total{pool="test",result="error"} 0
muxpool_pool_construct_total{pool="test",result="success"} 2
# HELP muxpool_pool_destroy_total Destructor calls that returned (and destroys with no Destructor).
# TYPE muxpool_pool_destroy_total counter
muxpool_pool_destroy_total{pool="test"} 0
# HELP muxpool_pool_expire_total Destroys decided because a resource outlived its lifetime (reason max_lifetime) or sat idle too long (reason max_idle_time).
# TYPE muxpool_pool_expire_total counter
muxpool_pool_expire_total{pool="test",reason="max_idle_time"} 0
muxpool_pool_expire_total{pool="test",reason="max_lifetime"} 0
# HELP muxpool_pool_hijack_total Resources taken out of the pool by Hijack.
# TYPE muxpool_pool_hijack_total counter
muxpool_pool_hijack_total{pool="test"} 1
# HELP muxpool_pool_resources Resources in the pool by state: idle, acquired, constructing (Constructor running) and destroying (Destructor scheduled or running; its slot still counts).
# TYPE muxpool_pool_resources gauge
muxpool_pool_resources{pool="test",state="acquired"} 1
muxpool_pool_resources{pool="test",state="constructing"} 0
muxpool_pool_resources{pool="test",state="destroying"} 0
muxpool_pool_resources{pool="test",state="idle"} 0
# HELP muxpool_pool_max_resources The bound on resources in the pool (pool.Config.MaxSize).
# TYPE muxpool_pool_max_resources gauge
muxpool_pool_max_resources{pool="test"} 2
# HELP muxpool_pool_effective_max_resources The bound applied now: max_resources, or less while the backend refuses more (pool.Config.CapacityError).
# TYPE muxpool_pool_effective_max_resources gauge
muxpool_pool_effective_max_resources{pool="test"} 2
# HELP muxpool_pool_waiters Acquire calls waiting in line for a resource.
# TYPE muxpool_pool_waiters gauge
muxpool_pool_waiters{pool="test"} 0
`)

	fams := scrape(t, url)
	total := series(t, fams, "muxpool_pool_acquire_seconds_total", "pool", "test").GetCounter().GetValue()
	waited := series(t, fams, "muxpool_pool_acquire_wait_seconds_total", "pool", "test").GetCounter().GetValue()
	if total <= 0 || waited <= 0 || waited > total {
		t.Errorf("acquire_seconds_total %v, acquire_wait_seconds_total %v: want 0 < wait <= total", total, waited)
	}
	h := series(t, fams, "muxpool_pool_acquire_duration_seconds", "pool", "test").GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() != total {
		t.Errorf("acquire histogram: %d samples summing to %vs, want 3 summing to acquire_seconds_total %vs",
			h.GetSampleCount(), h.GetSampleSum(), total)
	}
	if n := len(h.GetBucket()); n != len(promstats.DefaultBuckets)+1 { // and +Inf
		t.Errorf("%d buckets, want %d and +Inf", n, len(promstats.DefaultBuckets))
	}
}

// Without a histogram the collector describes and sends none.
func TestPoolCollectorWithoutHistogram(t *testing.T) {
	p, err := pool.New(pool.Config[int]{Constructor: func(context.Context) (int, error) { return 1, nil }, MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	fams := scrape(t, serve(t, promstats.NewPool(p, "bare", nil)))
	if _, ok := fams["muxpool_pool_acquire_duration_seconds"]; ok {
		t.Error("a histogram without an observer")
	}
	if _, ok := fams["muxpool_pool_acquire_total"]; !ok {
		t.Error("no muxpool_pool_acquire_total")
	}
}

// A Histogram as the AcquireObserver keeps Acquire+Release free of allocations.
func TestPoolHistogramAllocatesNothing(t *testing.T) {
	p, err := pool.New(pool.Config[int]{
		Constructor:     func(context.Context) (int, error) { return 1, nil },
		MaxSize:         1,
		AcquireObserver: promstats.NewHistogram(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
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

// Pools of different names share a registry; a second collector of the same name is refused.
func TestPoolCollectorNamesMustDiffer(t *testing.T) {
	p, err := pool.New(pool.Config[int]{Constructor: func(context.Context) (int, error) { return 1, nil }, MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(promstats.NewPool(p, "a", nil)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(promstats.NewPool(p, "b", nil)); err != nil {
		t.Fatalf("a second name: %v", err)
	}
	if err := reg.Register(promstats.NewPool(p, "a", nil)); err == nil {
		t.Fatal("a second collector named a was registered")
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
