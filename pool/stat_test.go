package pool_test

import (
	"context"
	"testing"
	"time"
)

func TestStatCounts(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(2))
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	if s := p.Stat(); s.Total != 2 || s.Acquired != 2 || s.Idle != 0 || s.Max != 2 || s.ConstructCount != 2 {
		t.Fatalf("two held: %+v", s)
	}
	got := make(chan error, 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err == nil {
			r.Release()
		}
		got <- err
	}()
	waitWaiting(t, p, 1)
	time.Sleep(20 * time.Millisecond)
	a.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	b.Release()
	s := p.Stat()
	if s.Total != 2 || s.Idle != 2 || s.Acquired != 0 || s.Waiting != 0 {
		t.Fatalf("gauges %+v", s)
	}
	// Every acquire here waited: two for a construction, one for a hand-off.
	if s.AcquireCount != 3 || s.EmptyAcquireCount != 3 || s.CanceledAcquireCount != 0 {
		t.Fatalf("counters %+v", s)
	}
	if s.EmptyAcquireWaitTime < 20*time.Millisecond || s.AcquireDuration != s.EmptyAcquireWaitTime {
		t.Fatalf("wait time %v / %v, want >= 20ms", s.AcquireDuration, s.EmptyAcquireWaitTime)
	}
	// Served from the idle set: counted, no wait added.
	mustAcquire(t, p).Release()
	if s2 := p.Stat(); s2.AcquireCount != 4 || s2.EmptyAcquireCount != 3 || s2.AcquireDuration != s.AcquireDuration {
		t.Fatalf("idle acquire: %+v", s2)
	}
}
