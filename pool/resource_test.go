package pool_test

import (
	"testing"
	"time"
)

// A second Release or Destroy is a no-op, whatever came first.
func TestResourceSecondReleaseIsNoOp(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(2))

	r := mustAcquire(t, p)
	r.Release()
	r.Release()
	r.ReleaseUnused()
	r.Destroy()
	r.Hijack()
	if s := p.Stat(); s.Idle != 1 || s.Acquired != 0 || s.Total != 1 || s.DestroyCount != 0 {
		t.Fatalf("after double release: %+v", s)
	}

	r = mustAcquire(t, p)
	r.Destroy()
	r.Destroy()
	r.Release()
	waitFor(t, "destroy", func() bool { return p.Stat().Total == 0 })
	if s := p.Stat(); s.DestroyCount != 1 || s.Idle != 0 {
		t.Fatalf("after double destroy: %+v", s)
	}
	f.checkDestroyedOnce(t)
}

func TestResourceHijack(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	r := mustAcquire(t, p)
	r.Hijack()
	r.Hijack()
	r.Release()
	if s := p.Stat(); s.Total != 0 || s.HijackCount != 1 {
		t.Fatalf("stat %+v", s)
	}
	if r.Value() != 1 {
		t.Fatalf("hijacked value %d", r.Value())
	}
	// The slot is free: a new resource can be built, and Close does not destroy the hijacked one.
	r2 := mustAcquire(t, p)
	if r2.Value() != 2 {
		t.Fatalf("value %d, want a new one", r2.Value())
	}
	r2.Release()
	p.Close()
	if f.destroys.Load() != 1 {
		t.Fatalf("destroys %d, want 1 (the hijacked one is the caller's)", f.destroys.Load())
	}
	checkTotals(t, p, f)
}

func TestResourceTimes(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(1))
	before := time.Now()
	r := mustAcquire(t, p)
	if c := r.CreatedAt(); c.Before(before) || c.After(time.Now()) {
		t.Fatalf("CreatedAt %v outside the acquire", c)
	}
	r.Release()
	time.Sleep(20 * time.Millisecond)
	r = mustAcquire(t, p)
	if d := r.IdleDuration(); d < 20*time.Millisecond || d > 10*time.Second {
		t.Fatalf("IdleDuration %v after a 20 ms idle", d)
	}
	used := r.LastUsed()
	r.ReleaseUnused() // keeps the old last use
	r = mustAcquire(t, p)
	if !r.LastUsed().Equal(used) {
		t.Fatalf("ReleaseUnused moved LastUsed from %v to %v", used, r.LastUsed())
	}
	r.Release()
	r = mustAcquire(t, p)
	if !r.LastUsed().After(used) {
		t.Fatalf("Release did not move LastUsed")
	}
	r.Release()
}
