package pgpool_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// TestMaxConnsBoundsServerConnections: 64 goroutines hammering a pool of 8 never open more
// than 8 server connections, counted by the server itself.
func TestMaxConnsBoundsServerConnections(t *testing.T) {
	const maxConns, workers, perWorker = 8, 64, 15
	p, app := newPool(t, "pool_max_conns=8")
	admin := adminConn(t)
	ctx := testCtx(t)

	stop := make(chan struct{})
	var maxSeen, maxTotal atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int64
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
				t.Error(err)
				return
			}
			if n > maxSeen.Load() {
				maxSeen.Store(n)
			}
			if s := p.PoolStat(); int64(s.Total) > maxTotal.Load() {
				maxTotal.Store(int64(s.Total))
			}
		}
	}()

	var wg sync.WaitGroup
	var okCalls atomic.Int64
	for range workers {
		wg.Go(func() {
			for range perWorker {
				var v int
				if err := p.QueryRow(ctx, "SELECT 1 FROM pg_sleep(0.001)").Scan(&v); err != nil {
					t.Error(err)
					return
				}
				okCalls.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled

	if got := okCalls.Load(); got != workers*perWorker {
		t.Fatalf("%d calls succeeded, want %d", got, workers*perWorker)
	}
	if maxSeen.Load() > maxConns || maxTotal.Load() > maxConns {
		t.Fatalf("server saw %d connections, pool Total reached %d; MaxConns %d", maxSeen.Load(), maxTotal.Load(), maxConns)
	}
	if got := serverConns(t, admin, app); got > maxConns || got < 2 {
		t.Fatalf("%d server connections at rest, want 2..%d", got, maxConns)
	}
	if s := p.PoolStat(); s.Acquired != 0 || s.Waiting != 0 || s.Total > maxConns || s.AcquireCount < workers*perWorker {
		t.Fatalf("stat %+v", s)
	}
}

// TestAcquireServesWaitersInArrivalOrder: with the one connection held, ten callers queue one
// after another; they get the connection in the order they arrived.
func TestAcquireServesWaitersInArrivalOrder(t *testing.T) {
	const n = 10
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	holder, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := p.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			c.Release()
		})
		waitFor(t, "waiter to queue", func() bool { return p.PoolStat().Waiting == int32(i+1) })
	}
	holder.Release()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("served order %v, want 0..%d", order, n-1)
		}
	}
	if len(order) != n {
		t.Fatalf("served %d of %d", len(order), n)
	}
}

// TestAcquireHonoursDeadline: on a full pool, Acquire returns the ctx's error as-is and the
// pool stays usable.
func TestAcquireHonoursDeadline(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	holder, err := p.Acquire(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a full pool: %v, want DeadlineExceeded", err)
	}
	holder.Release()
	if err := p.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if s := p.PoolStat(); s.CanceledAcquireCount != 1 {
		t.Fatalf("CanceledAcquireCount = %d", s.CanceledAcquireCount)
	}
}

// TestCloseWakesWaitersAndClosesConnections: Close fails blocked Acquire calls at once, waits
// for the holder, and leaves no server connection behind.
func TestCloseWakesWaitersAndClosesConnections(t *testing.T) {
	p, app := newPool(t, "pool_max_conns=2")
	admin := adminConn(t)
	ctx := testCtx(t)
	held, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle.Release()
	held2, err := p.Acquire(ctx) // takes the idle one back: the pool is full
	if err != nil {
		t.Fatal(err)
	}

	waiterErr := make(chan error, 1)
	go func() {
		_, err := p.Acquire(ctx)
		waiterErr <- err
	}()
	waitFor(t, "waiter to queue", func() bool { return p.PoolStat().Waiting == 1 })

	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case err := <-waiterErr:
		if !errors.Is(err, pgpool.ErrClosedPool) {
			t.Fatalf("blocked Acquire: %v, want ErrClosedPool", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Acquire not woken by Close")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while connections were held")
	case <-time.After(50 * time.Millisecond):
	}
	held.Release()
	held2.Release()
	<-closed

	if got := serverConns(t, admin, app); got != 0 {
		// Closing is asynchronous on the server side; give the backends a moment to go.
		waitFor(t, "server connections to close", func() bool { return serverConns(t, admin, app) == 0 })
	}
	if _, err := p.Acquire(ctx); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	if _, err := p.Exec(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Fatalf("Exec after Close: %v", err)
	}
	if s := p.PoolStat(); s.Total != 0 || s.DestroyCount != s.ConstructCount {
		t.Fatalf("stat after Close %+v", s)
	}
}

// TestShutdownBoundedByContext: Shutdown returns the ctx error while a connection is held.
func TestShutdownBoundedByContext(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	c, err := p.Acquire(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a held connection: %v", err)
	}
	c.Release()
	if err := p.Shutdown(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestResetReplacesConnections: after Reset, idle connections are gone and held ones are
// destroyed when released.
func TestResetReplacesConnections(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=2")
	ctx := testCtx(t)
	pids := idlePIDs(t, p, 2)
	held, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Reset()
	held.Release()
	for range 2 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		for _, old := range pids {
			if backendPID(c) == old {
				t.Fatalf("connection %d survived Reset", old)
			}
		}
	}
}

// TestMinConnsWarmUp: pool_min_conns connections are opened in the background.
func TestMinConnsWarmUp(t *testing.T) {
	p, app := newPool(t, "pool_max_conns=4 pool_min_conns=3")
	admin := adminConn(t)
	waitFor(t, "MinConns warm-up", func() bool { return p.PoolStat().Idle == 3 })
	if got := serverConns(t, admin, app); got != 3 {
		t.Fatalf("%d server connections, want 3", got)
	}
	if s := p.PoolStat(); s.Total != 3 || s.Constructing != 0 {
		t.Fatalf("stat %+v", s)
	}
}

// TestHooks: BeforeConnect, AfterConnect and BeforeClose run once per connection.
func TestHooks(t *testing.T) {
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	var before, after, closing atomic.Int32
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		before.Add(1)
		cc.RuntimeParams["search_path"] = "hooked"
		return nil
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { after.Add(1); return nil }
	cfg.BeforeClose = func(*pgx.Conn) { closing.Add(1) }
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sp string
	if err := p.QueryRow(testCtx(t), "SHOW search_path").Scan(&sp); err != nil || sp != "hooked" {
		t.Fatalf("search_path %q, %v", sp, err)
	}
	p.Close()
	if before.Load() != 1 || after.Load() != 1 || closing.Load() != 1 {
		t.Fatalf("hooks ran before=%d after=%d close=%d", before.Load(), after.Load(), closing.Load())
	}
	if cfg.ConnConfig.RuntimeParams["search_path"] == "hooked" {
		t.Fatal("BeforeConnect changed the pool's own config")
	}
}

// TestAfterConnectErrorFailsAcquire: a failing AfterConnect fails only that Acquire and
// frees the slot.
func TestAfterConnectErrorFailsAcquire(t *testing.T) {
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var calls atomic.Int32
	cfg.AfterConnect = func(context.Context, *pgx.Conn) error {
		if calls.Add(1) == 1 {
			return boom
		}
		return nil
	}
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	if _, err := p.Acquire(testCtx(t)); !errors.Is(err, boom) {
		t.Fatalf("first Acquire: %v, want boom", err)
	}
	if err := p.Ping(testCtx(t)); err != nil {
		t.Fatalf("second Acquire: %v", err)
	}
}

// TestPrepareConnOutcomes: each of PrepareConn's four results does what Config documents.
func TestPrepareConnOutcomes(t *testing.T) {
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	type outcome struct {
		ok  bool
		err error
	}
	var script []outcome // consumed one per call; then (true, nil)
	var mu sync.Mutex
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(script) == 0 {
			return true, nil
		}
		o := script[0]
		script = script[1:]
		return o.ok, o.err
	}
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	ctx := testCtx(t)
	acquirePID := func() (uint32, error) {
		c, err := p.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		defer c.Release()
		return backendPID(c), nil
	}
	pid, err := acquirePID()
	if err != nil {
		t.Fatal(err)
	}

	script = []outcome{{true, boom}} // keep the connection, fail the call
	if _, err := acquirePID(); !errors.Is(err, boom) {
		t.Fatalf("(true, err): %v", err)
	}
	if got, _ := acquirePID(); got != pid {
		t.Fatal("(true, err) did not keep the connection")
	}

	script = []outcome{{false, nil}} // destroy and retry: the call succeeds on a new one
	got, err := acquirePID()
	if err != nil || got == pid {
		t.Fatalf("(false, nil): pid %d (old %d), %v", got, pid, err)
	}
	pid = got

	script = []outcome{{false, boom}} // destroy and fail
	if _, err := acquirePID(); !errors.Is(err, boom) {
		t.Fatalf("(false, err): %v", err)
	}
	if got, _ := acquirePID(); got == pid {
		t.Fatal("(false, err) did not destroy the connection")
	}
	if s := p.PoolStat(); s.DestroyCount != 2 || s.Acquired != 0 {
		t.Fatalf("stat %+v", s)
	}
}

// TestAfterReleaseDecides: AfterRelease returning false destroys the connection.
func TestAfterReleaseDecides(t *testing.T) {
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	var keep atomic.Bool
	cfg.AfterRelease = func(*pgx.Conn) bool { return keep.Load() }
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	ctx := testCtx(t)
	pidOf := func() uint32 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		return backendPID(c)
	}
	keep.Store(true)
	first := pidOf()
	if pidOf() != first {
		t.Fatal("AfterRelease true did not keep the connection")
	}
	keep.Store(false)
	pidOf()
	if pidOf() == first {
		t.Fatal("AfterRelease false did not destroy the connection")
	}
}
