package pool_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool"
)

// Behaviour 5: MaxLifetime holds at acquire and release on a pool that is never idle long
// enough for the health check (its period here is an hour).
func TestMaintainLifetimeOnBusyPool(t *testing.T) {
	const lifetime = 30 * time.Millisecond
	f := newFake()
	cfg := f.config(2)
	cfg.MaxLifetime = lifetime
	cfg.HealthCheckPeriod = time.Hour
	p := mustNew(t, cfg)

	var wg sync.WaitGroup
	stop := time.Now().Add(200 * time.Millisecond)
	for range 2 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				before := time.Now()
				r := mustAcquire(t, p)
				// It was checked unexpired at some instant after before.
				if !r.CreatedAt().Add(lifetime).After(before) {
					t.Errorf("acquired a resource created at %v, expired at %v", r.CreatedAt(), before)
				}
				time.Sleep(time.Millisecond)
				r.Release()
			}
		})
	}
	wg.Wait()
	s := p.Stat()
	if s.ConstructCount < 4 || s.LifetimeDestroyCount < 2 {
		t.Fatalf("lifetime not enforced on a busy pool: %+v", s)
	}

	// A resource held past its lifetime is destroyed on release, not pooled.
	r := mustAcquire(t, p)
	time.Sleep(lifetime)
	before := p.Stat().LifetimeDestroyCount
	r.Release()
	if got := p.Stat().LifetimeDestroyCount; got != before+1 {
		t.Fatalf("release of an expired resource: LifetimeDestroyCount %d -> %d", before, got)
	}
}

// Behaviour 5: jitter is drawn once per resource, so expiries spread over the jitter window
// and do not move as the resource is reused.
func TestMaintainLifetimeJitter(t *testing.T) {
	const n = 40
	lifetime, jitter := time.Hour, time.Hour
	f := newFake()
	cfg := f.config(n)
	cfg.MaxLifetime, cfg.MaxLifetimeJitter = lifetime, jitter
	p := mustNew(t, cfg)

	rs := make([]*pool.Resource[int], n)
	offsets := make([]time.Duration, n)
	for i := range rs {
		rs[i] = mustAcquire(t, p)
		offsets[i] = pool.ExpiresAt(rs[i]).Sub(rs[i].CreatedAt())
		if offsets[i] < lifetime || offsets[i] >= lifetime+jitter {
			t.Fatalf("expiry offset %v outside [%v, %v)", offsets[i], lifetime, lifetime+jitter)
		}
	}
	lo, hi := offsets[0], offsets[0]
	for _, o := range offsets {
		lo, hi = min(lo, o), max(hi, o)
	}
	// 40 uniform draws cover well over half the window except with negligible probability.
	if hi-lo < jitter/2 {
		t.Fatalf("expiries spread over %v only, jitter %v", hi-lo, jitter)
	}
	for i, r := range rs {
		r.Release()
		r2 := mustAcquire(t, p) // LIFO: the same resource comes back
		if r2 != r || pool.ExpiresAt(r2).Sub(r2.CreatedAt()) != offsets[i] {
			t.Fatalf("resource %d: expiry changed on reuse", i)
		}
		r2.Release()
	}
}

// Behaviour 5: idle closes never take the pool below MinSize.
func TestMaintainIdleTimeKeepsMinSize(t *testing.T) {
	f := newFake()
	cfg := f.config(5)
	cfg.MinSize = 2
	cfg.MaxIdleTime = 20 * time.Millisecond
	cfg.HealthCheckPeriod = 5 * time.Millisecond
	p := mustNew(t, cfg)
	rs := make([]*pool.Resource[int], 5)
	for i := range rs {
		rs[i] = mustAcquire(t, p)
	}
	for _, r := range rs {
		r.Release()
	}
	waitFor(t, "idle closes", func() bool { s := p.Stat(); return s.Total == 2 && s.Destroying == 0 })
	// Stays at MinSize over several more periods (the idle ones are now old too).
	for range 20 {
		if s := p.Stat(); s.Idle+s.Acquired < 2 {
			t.Fatalf("below MinSize: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := p.Stat()
	if s.IdleDestroyCount != 3 || s.ConstructCount != 5 || s.Total != 2 {
		t.Fatalf("stat %+v; want 3 idle destroys and 2 kept", s)
	}
}

// Behaviour 5: MinSize is built at start and restored promptly after destroys, without
// waiting for the health-check period (an hour here).
func TestMaintainMinSizeRestoredPromptly(t *testing.T) {
	f := newFake()
	cfg := f.config(5)
	cfg.MinSize = 3
	cfg.HealthCheckPeriod = time.Hour
	p := mustNew(t, cfg)
	waitFor(t, "warm-up", func() bool { return p.Stat().Idle == 3 })

	start := time.Now()
	for range 3 {
		mustAcquire(t, p).Destroy()
	}
	waitFor(t, "MinSize restored", func() bool { s := p.Stat(); return s.Idle == 3 && s.Total == 3 })
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("MinSize restored after %v", el)
	}
	if s := p.Stat(); s.ConstructCount != 6 || s.DestroyCount != 3 {
		t.Fatalf("stat %+v", s)
	}
}

// MinIdle keeps idle resources ready as acquires take them.
func TestMaintainMinIdle(t *testing.T) {
	f := newFake()
	cfg := f.config(4)
	cfg.MinIdle = 2
	cfg.HealthCheckPeriod = time.Hour
	p := mustNew(t, cfg)
	waitFor(t, "warm-up", func() bool { return p.Stat().Idle == 2 })
	a := mustAcquire(t, p)
	b := mustAcquire(t, p)
	waitFor(t, "MinIdle restored", func() bool { return p.Stat().Idle == 2 })
	c := mustAcquire(t, p)
	// Only one slot left: MinIdle stops at MaxSize.
	waitFor(t, "MaxSize reached", func() bool { s := p.Stat(); return s.Total == 4 && s.Constructing == 0 })
	if s := p.Stat(); s.Idle != 1 {
		t.Fatalf("stat %+v", s)
	}
	a.Release()
	b.Release()
	c.Release()
}

// A down backend does not make the warm-up redial in a tight loop.
func TestMaintainWarmUpBacksOff(t *testing.T) {
	f := newFake()
	f.setConstruct(func(ctx context.Context, id int) error { return errBackend })
	cfg := f.config(4)
	cfg.MinSize = 4
	cfg.HealthCheckPeriod = time.Hour
	p := mustNew(t, cfg)
	time.Sleep(300 * time.Millisecond)
	// 50 ms, 100 ms, 200 ms backoff: a handful of rounds of 4, not thousands.
	if n := p.Stat().ConstructErrorCount; n > 24 {
		t.Fatalf("%d failed warm-up constructions in 300 ms", n)
	}
	f.setConstruct(nil)
	waitFor(t, "recovery", func() bool { return p.Stat().Idle == 4 })
}
