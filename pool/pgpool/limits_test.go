package pgpool_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// TestServerConnectionLimitAbsorbed: the server lets the pool's role have 5 connections
// (CONNECTION LIMIT 5: 53300 too_many_connections beyond that), the pool allows 20, and 40
// workers with 10 s contexts run short queries for 2.5 s: no call fails, the pool stops at what
// the server accepts (EffectiveMaxConns), and it retries for more about once a second.
func TestServerConnectionLimitAbsorbed(t *testing.T) {
	const limit, workers, runFor = 5, 40, 2500 * time.Millisecond
	admin := adminConn(t)
	role := fmt.Sprintf("pgpool_limited_%d", appSeq.Add(1))
	if _, err := admin.Exec(testCtx(t), "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT "+fmt.Sprint(limit)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP ROLE "+role) }) // runs after the pool's Close
	p, _ := newPool(t, "user="+role+" pool_max_conns=20")

	var failed, calls atomic.Int64
	var first sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for time.Since(start) < runFor {
				calls.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var n int
				err := p.QueryRow(ctx, "SELECT 1").Scan(&n)
				cancel()
				if err != nil {
					failed.Add(1)
					first.Do(func() { t.Errorf("first failure: %v", err) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s, ps := p.Stat(), p.PoolStat()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed", n, calls.Load())
	}
	if ps.ConstructErrorCount == 0 {
		t.Fatal("the server never refused a connection: the limit was not exercised")
	}
	if c := s.EffectiveMaxConns(); c > limit+1 || s.MaxConns() != 20 || s.TotalConns() > limit {
		t.Fatalf("EffectiveMaxConns %d (MaxConns %d, TotalConns %d), want at most %d (+1 while probing)", c, s.MaxConns(), s.TotalConns(), limit)
	}
	// The first wave of refusals, then about one probe a second.
	if max := int64(20-limit) + int64(elapsed/time.Second) + 2; ps.ConstructErrorCount > max {
		t.Fatalf("%d refused connections in %v, want at most %d", ps.ConstructErrorCount, elapsed, max)
	}
	t.Logf("%d calls in %v; %d refused connections; effective max %d", calls.Load(), elapsed.Round(time.Millisecond), ps.ConstructErrorCount, s.EffectiveMaxConns())
}

// closedPort returns a loopback port nothing listens on (connection refused).
func closedPort(t *testing.T) uint16 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return uint16(port)
}

// TestServerDownRedialIsBounded: while the server cannot be reached, 32 callers retrying in a
// tight loop with 50 ms contexts cause at most about 100 connection attempts a second, each
// call returns by its deadline with the connect error or the deadline's, and when the server
// is back the pool serves within a second.
func TestServerDownRedialIsBounded(t *testing.T) {
	cfg, err := pgpool.ParseConfig(newConnString(t) + " pool_max_conns=8")
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var attempts atomic.Int64
	down.Store(true)
	deadPort := closedPort(t)
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		attempts.Add(1)
		if down.Load() {
			cc.Port = deadPort
			cc.Fallbacks = nil
		}
		return nil
	}
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)

	const timeout, slack = 50 * time.Millisecond, 250 * time.Millisecond // slack: scheduling under -race
	var stop atomic.Bool
	var refused, late atomic.Int64
	okAt := make(chan time.Time, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for !stop.Load() {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := p.Ping(ctx)
				cancel()
				if time.Since(start) > timeout+slack {
					late.Add(1)
				}
				switch {
				case err == nil:
					select {
					case okAt <- time.Now():
					default:
					}
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
		})
	}
	time.Sleep(time.Second)
	n := attempts.Load()
	back := time.Now()
	down.Store(false)
	var recovered time.Duration
	select {
	case at := <-okAt:
		recovered = at.Sub(back)
	case <-time.After(5 * time.Second):
		recovered = -1
	}
	stop.Store(true)
	wg.Wait()
	if n > 100+8 {
		t.Errorf("%d connection attempts in 1 s while the server was down, want at most about 100", n)
	}
	if refused.Load() == 0 {
		t.Error("no caller got the connect error")
	}
	if late.Load() != 0 {
		t.Errorf("%d calls returned more than %v after their %v deadline", late.Load(), slack, timeout)
	}
	if recovered < 0 || recovered > time.Second {
		t.Errorf("served %v after the server came back, want within 1 s", recovered)
	}
	t.Logf("server down 1 s: %d attempts, %d callers got ECONNREFUSED; served %v after it came back", n, refused.Load(), recovered.Round(time.Millisecond))
}
