package pgpool_test

import (
	"context"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool/pgpool"
)

// TestReleaseKeepsCleanConnection: a connection given back idle and healthy is reused.
func TestReleaseKeepsCleanConnection(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := backendPID(c)
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	c.Release()
	c.Release() // a second Release is a no-op
	c2, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Release()
	if backendPID(c2) != pid {
		t.Errorf("clean connection was replaced: pid %d -> %d", pid, backendPID(c2))
	}
	if s := p.PoolStat(); s.DestroyCount != 0 || s.ConstructCount != 1 {
		t.Errorf("stat %+v", s)
	}
}

// TestReleaseDestroysBadConnection: closed, busy, in-transaction and failed-transaction
// connections are destroyed on Release, and the next Acquire gets a clean one at once.
func TestReleaseDestroysBadConnection(t *testing.T) {
	cases := map[string]func(context.Context, *testing.T, *pgpool.Conn){
		"closed": func(ctx context.Context, t *testing.T, c *pgpool.Conn) {
			if err := c.Conn().Close(ctx); err != nil {
				t.Fatal(err)
			}
		},
		"busy": func(ctx context.Context, t *testing.T, c *pgpool.Conn) {
			// Rows left unread keep the connection busy. Reading them through pgx's own
			// Conn (not the pool helper) so nothing releases behind our back.
			rows, err := c.Conn().Query(ctx, "SELECT generate_series(1, 100000)")
			if err != nil {
				t.Fatal(err)
			}
			_ = rows // deliberately neither read nor closed
			if !c.Conn().PgConn().IsBusy() {
				t.Fatal("connection not busy")
			}
		},
		"in transaction": func(ctx context.Context, t *testing.T, c *pgpool.Conn) {
			if _, err := c.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
		},
		"failed transaction": func(ctx context.Context, t *testing.T, c *pgpool.Conn) {
			if _, err := c.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "SELECT 1/0"); err == nil {
				t.Fatal("division by zero succeeded")
			}
			if s := c.Conn().PgConn().TxStatus(); s != 'E' {
				t.Fatalf("TxStatus %q, want 'E'", s)
			}
		},
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			p, _ := newPool(t, "pool_max_conns=1")
			ctx := testCtx(t)
			c, err := p.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pid := backendPID(c)
			spoil(ctx, t, c)
			c.Release()

			c2, err := p.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Release()
			if backendPID(c2) == pid {
				t.Fatal("spoiled connection handed out again")
			}
			if s := c2.Conn().PgConn().TxStatus(); s != 'I' {
				t.Fatalf("new connection TxStatus %q", s)
			}
			var one int
			if err := c2.Conn().QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("new connection: %d, %v", one, err)
			}
			if s := p.PoolStat(); s.DestroyCount != 1 || s.ConstructCount != 2 || s.Total != 1 {
				t.Fatalf("stat %+v", s)
			}
		})
	}
}

// TestExpiredConnectionDestroyedOnRelease: MaxConnLifetime is enforced when a connection is
// given back, even if the pool is never idle.
func TestExpiredConnectionDestroyedOnRelease(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1 pool_max_conn_lifetime=100ms")
	ctx := testCtx(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := backendPID(c)
	time.Sleep(150 * time.Millisecond)
	c.Release()
	c2, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Release()
	if backendPID(c2) == pid {
		t.Fatal("expired connection handed out again")
	}
	if s := p.PoolStat(); s.LifetimeDestroyCount != 1 {
		t.Fatalf("LifetimeDestroyCount = %d, want 1", s.LifetimeDestroyCount)
	}
}
