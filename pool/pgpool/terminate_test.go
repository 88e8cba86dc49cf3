package pgpool_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/internal/pgtest"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// killBackend terminates pid from admin and waits until the server has let it go.
func killBackend(t *testing.T, admin *pgx.Conn, pid uint32) {
	t.Helper()
	ctx := testCtx(t)
	var ok bool
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	waitFor(t, "backend to exit", func() bool {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// idlePIDs fills the pool with n connections and returns their backend PIDs, all idle.
func idlePIDs(t *testing.T, p *pgpool.Pool, n int) []uint32 {
	t.Helper()
	ctx := testCtx(t)
	var conns []*pgpool.Conn
	var pids []uint32
	for range n {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		pids = append(pids, backendPID(c))
	}
	for _, c := range conns {
		c.Release()
	}
	return pids
}

// TestTerminatedBackendCostsAtMostOneCall: a backend killed while its connection sat idle for
// less than the ping threshold fails at most the one call that uses it; the pool then replaces
// it and every later call succeeds.
func TestTerminatedBackendCostsAtMostOneCall(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=2")
	admin := adminConn(t)
	ctx := testCtx(t)
	pids := idlePIDs(t, p, 2)
	for _, pid := range pids {
		killBackend(t, admin, pid)
	}
	failures := 0
	for i := range 20 {
		var one int
		err := p.QueryRow(ctx, "SELECT 1").Scan(&one)
		switch {
		case err != nil:
			failures++
			if i >= 2 {
				t.Fatalf("call %d failed after the dead connections were used up: %v", i, err)
			}
		case one != 1:
			t.Fatalf("SELECT 1 = %d", one)
		}
	}
	// Two dead connections, each may fail one call; LIFO reuse makes it usually one.
	if failures > 2 {
		t.Fatalf("%d failed calls for 2 killed backends", failures)
	}
	if s := p.PoolStat(); s.DestroyCount < int64(failures) || s.Acquired != 0 {
		t.Fatalf("stat %+v after %d failures", s, failures)
	}
}

// TestTerminatedIdleBackendCaughtByPing: a connection idle for more than a second is pinged
// before reuse, so a backend killed while idle costs no failed call at all.
func TestTerminatedIdleBackendCaughtByPing(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1 pool_ping_timeout=2s")
	admin := adminConn(t)
	ctx := testCtx(t)
	pid := idlePIDs(t, p, 1)[0]
	killBackend(t, admin, pid)
	time.Sleep(1100 * time.Millisecond) // past the 1s idle threshold of the default ShouldPing

	var one int
	if err := p.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("first call after the kill: %d, %v", one, err)
	}
	if s := p.PoolStat(); s.DestroyCount != 1 || s.ConstructCount != 2 {
		t.Fatalf("stat %+v", s)
	}
}

// TestShouldPingHook: a custom ShouldPing replaces the idle-time rule; here it pings every
// time, so a freshly killed backend is caught without waiting.
func TestShouldPingHook(t *testing.T) {
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	pings := 0
	cfg.ShouldPing = func(context.Context, pgpool.ShouldPingParams) bool { pings++; return true }
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	admin := adminConn(t)
	pid := idlePIDs(t, p, 1)[0]
	killBackend(t, admin, pid)
	if err := p.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after kill: %v", err)
	}
	if pings == 0 {
		t.Fatal("ShouldPing not consulted")
	}
}

// TestPingIsBounded: a backend that stops answering (SIGSTOP) holds up Acquire for at most
// the ping timeout; the silent connection is destroyed and a fresh one is handed out.
func TestPingIsBounded(t *testing.T) {
	cluster := pgtest.Shared(t)
	if cluster.External() {
		t.Skip("DATABASE_URL server: cannot signal its backends")
	}
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=1 pool_ping_timeout=300ms")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShouldPing = func(context.Context, pgpool.ShouldPingParams) bool { return true }
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	pid := int(idlePIDs(t, p, 1)[0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Skip("cannot stop the backend:", err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)

	start := time.Now()
	c, err := p.Acquire(testCtx(t))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Acquire with a silent backend: %v", err)
	}
	defer c.Release()
	if backendPID(c) == uint32(pid) {
		t.Fatal("silent connection handed out")
	}
	// The ping timeout plus one connect; generous for a loaded machine, far below "never".
	if took < 300*time.Millisecond || took > 10*time.Second {
		t.Fatalf("Acquire took %v with a 300ms ping timeout", took)
	}
}

// TestTerminatedBackendWhileHeld: the holder's own call fails, and the connection, now closed,
// is replaced on release.
func TestTerminatedBackendWhileHeld(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	admin := adminConn(t)
	ctx := testCtx(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killBackend(t, admin, backendPID(c))
	if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("call on a terminated backend succeeded")
	}
	c.Release()
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("first call after the failed one: %v", err)
	}
}

// TestTerminateAllUnderLoad: killing every backend while 32 goroutines query through a pool of
// 8 costs at most one failed call per killed backend, and every goroutine then runs clean.
func TestTerminateAllUnderLoad(t *testing.T) {
	const workers = 32
	p, app := newPool(t, "pool_max_conns=8")
	admin := adminConn(t)
	ctx := testCtx(t)

	var failures, afterKill atomic.Int64
	var killed atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var v int
				err := p.QueryRow(ctx, "SELECT 1").Scan(&v)
				if err != nil {
					failures.Add(1)
				} else if killed.Load() {
					afterKill.Add(1)
				}
			}
		})
	}
	waitFor(t, "pool to fill", func() bool { s := p.PoolStat(); return s.Total == 8 && s.Constructing == 0 })
	waitFor(t, "server to list the backends", func() bool { return serverConns(t, admin, app) == 8 })
	var n int64
	if err := admin.QueryRow(ctx,
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	waitFor(t, "calls after the kill", func() bool { return afterKill.Load() >= 500 })
	close(stop)
	wg.Wait()
	if n == 0 {
		t.Fatal("no backend was terminated")
	}
	if f := failures.Load(); f > n {
		t.Fatalf("%d failed calls for %d terminated backends", f, n)
	}
	t.Logf("%d backends terminated, %d calls failed, %d succeeded after", n, failures.Load(), afterKill.Load())
}
