package pgpool_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// poolWithHooks returns a pool of up to 3 connections with hooks set by set.
func poolWithHooks(t *testing.T, set func(*pgpool.Config)) *pgpool.Pool {
	t.Helper()
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	set(cfg)
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	return p
}

// fill makes the pool build n connections and leaves them idle.
func fill(t *testing.T, p *pgpool.Pool, n int) {
	t.Helper()
	var held []*pgpool.Conn
	for range n {
		c, err := p.Acquire(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		c.Release()
	}
}

// TestAcquireAllIdleRunsPrepareConn: AcquireAllIdle returns every idle connection, drops (and
// closes) those PrepareConn rejects, and counts no acquire.
func TestAcquireAllIdleRunsPrepareConn(t *testing.T) {
	var reject atomic.Bool
	var calls atomic.Int64
	p := poolWithHooks(t, func(cfg *pgpool.Config) {
		cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
			calls.Add(1)
			return !reject.Load(), nil
		}
	})
	ctx := testCtx(t)
	if got := p.AcquireAllIdle(ctx); got == nil || len(got) != 0 {
		t.Fatalf("empty pool: %v, want an empty slice", got)
	}
	fill(t, p, 3)
	acquires := p.PoolStat().AcquireCount
	calls.Store(0)
	conns := p.AcquireAllIdle(ctx)
	if len(conns) != 3 || calls.Load() != 3 {
		t.Fatalf("AcquireAllIdle: %d conns, PrepareConn ran %d times; want 3 and 3", len(conns), calls.Load())
	}
	for _, c := range conns {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	if s := p.PoolStat(); s.AcquireCount != acquires || s.Idle != 3 {
		t.Fatalf("after AcquireAllIdle: %+v (acquires before %d)", s, acquires)
	}
	reject.Store(true)
	if conns := p.AcquireAllIdle(ctx); len(conns) != 0 {
		t.Fatalf("PrepareConn rejected all, yet %d returned", len(conns))
	}
	waitFor(t, "the rejected connections to close", func() bool { return p.PoolStat().Total == 0 })
}

// TestBeforeAcquireAsPgxpool: the deprecated BeforeAcquire works as in pgxpool (false destroys
// the connection and Acquire tries another), and PrepareConn takes precedence when both are
// set.
func TestBeforeAcquireAsPgxpool(t *testing.T) {
	var before atomic.Int64
	p := poolWithHooks(t, func(cfg *pgpool.Config) {
		cfg.BeforeAcquire = func(context.Context, *pgx.Conn) bool { return before.Add(1) != 2 } // reject the 2nd call
	})
	ctx := testCtx(t)
	fill(t, p, 1)
	c, err := p.Acquire(ctx) // 2nd call: the idle connection is rejected, a new one is made
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	if s := p.PoolStat(); before.Load() != 3 || s.ConstructCount != 2 {
		t.Fatalf("BeforeAcquire calls %d, constructs %d; want 3 and 2", before.Load(), s.ConstructCount)
	}

	var prepared, ignored atomic.Int64
	q := poolWithHooks(t, func(cfg *pgpool.Config) {
		cfg.BeforeAcquire = func(context.Context, *pgx.Conn) bool { ignored.Add(1); return false }
		cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) { prepared.Add(1); return true, nil }
	})
	if err := q.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if prepared.Load() != 1 || ignored.Load() != 0 {
		t.Fatalf("PrepareConn ran %d, BeforeAcquire %d times; want 1 and 0", prepared.Load(), ignored.Load())
	}
}
