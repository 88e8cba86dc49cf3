package pool_test

import (
	"context"
	"testing"
)

func TestPoolAcquireReleaseReuses(t *testing.T) {
	f := newFake()
	p := mustNew(t, f.config(2))
	r := mustAcquire(t, p)
	if r.Value() != 1 {
		t.Fatalf("value %d, want 1", r.Value())
	}
	r.Release()
	r.Release() // no-op
	r2 := mustAcquire(t, p)
	if r2.Value() != 1 {
		t.Fatalf("value %d after release, want 1 (reused)", r2.Value())
	}
	r2.Release()
	p.Close()
	if f.constructs.Load() != 1 || f.destroys.Load() != 1 {
		t.Fatalf("constructs %d destroys %d", f.constructs.Load(), f.destroys.Load())
	}
	_ = context.Background()
}
