package pool_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestAcquireAllIdleTakesEveryIdleResource: AcquireAllIdle hands over every idle resource
// (and nothing else), counts no acquire, and the resources go back with Release as usual.
func TestAcquireAllIdleTakesEveryIdleResource(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(4))
	a, b, c := mustAcquire(t, p), mustAcquire(t, p), mustAcquire(t, p)
	a.Release()
	b.Release()
	before := p.Stat()
	all := p.AcquireAllIdle()
	if len(all) != 2 {
		t.Fatalf("AcquireAllIdle returned %d resources, want the 2 idle ones", len(all))
	}
	got := map[int]bool{all[0].Value(): true, all[1].Value(): true}
	if !got[a.Value()] || !got[b.Value()] {
		t.Fatalf("AcquireAllIdle returned %v, want the idle values %d and %d", got, a.Value(), b.Value())
	}
	s := p.Stat()
	if s.Idle != 0 || s.Acquired != 3 || s.AcquireCount != before.AcquireCount || s.EmptyAcquireCount != before.EmptyAcquireCount {
		t.Fatalf("after AcquireAllIdle: %+v (before %+v)", s, before)
	}
	if more := p.AcquireAllIdle(); len(more) != 0 {
		t.Fatalf("second AcquireAllIdle returned %d resources", len(more))
	}
	for _, r := range all {
		r.Release()
	}
	c.Release()
	if s := p.Stat(); s.Idle != 3 || s.Acquired != 0 {
		t.Fatalf("after the releases: %+v", s)
	}
	p.Close()
	if all := p.AcquireAllIdle(); all != nil {
		t.Fatalf("AcquireAllIdle on a closed pool returned %d resources", len(all))
	}
}

// TestAcquireAllIdleDestroysExpired: an idle resource past MaxLifetime is destroyed, not
// handed out.
func TestAcquireAllIdleDestroysExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		cfg := f.config(2)
		cfg.MaxLifetime = time.Minute
		p := mustNew(t, cfg)
		r := mustAcquire(t, p)
		r.Release()
		time.Sleep(2 * time.Minute)
		if all := p.AcquireAllIdle(); len(all) != 0 {
			t.Fatalf("AcquireAllIdle returned %d expired resources", len(all))
		}
		synctest.Wait()
		if s := p.Stat(); s.LifetimeDestroyCount != 1 || s.DestroyCount != 1 || s.Total != 0 {
			t.Fatalf("expired idle resource: %+v", s)
		}
	})
}

// TestStatAcquireTimeCountsWholeAcquire: AcquireTime adds each successful Acquire's time from
// call to return, waits included (pgxpool's AcquireDuration), while AcquireDuration keeps the
// waits alone.
func TestStatAcquireTimeCountsWholeAcquire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		f.construct = func(context.Context, int) error { time.Sleep(30 * time.Millisecond); return nil }
		p := mustNew(t, f.config(1))
		r := mustAcquire(t, p) // waits 30ms for its construction
		s := p.Stat()
		if s.AcquireTime != 30*time.Millisecond {
			t.Fatalf("AcquireTime after a 30ms construction: %v", s.AcquireTime)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			mustAcquire(t, p).Release()
		}()
		synctest.Wait() // queued
		time.Sleep(50 * time.Millisecond)
		r.Release()
		<-done
		s = p.Stat()
		if s.AcquireTime != 80*time.Millisecond || s.AcquireCount != 2 {
			t.Fatalf("AcquireTime after a 50ms hand-off wait: %v (%+v)", s.AcquireTime, s)
		}
		mustAcquire(t, p).Release() // from the idle set: no time passes in the bubble
		if s2 := p.Stat(); s2.AcquireTime != s.AcquireTime || s2.AcquireCount != 3 {
			t.Fatalf("idle acquire: %+v", s2)
		}
		p.Close()
	})
}
