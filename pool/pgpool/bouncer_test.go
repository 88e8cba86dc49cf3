package pgpool_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/internal/pgtest"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// Through PgBouncer in transaction pooling mode a client's consecutive transactions may run on
// different server connections, so pgx's default exec mode (named prepared statements, cached
// per client connection) fails there. These tests run real traffic through a throwaway
// PgBouncer with fewer server connections (default_pool_size) than pool_max_conns.

const (
	bouncerServerConns = 3 // default_pool_size
	bouncerPoolConns   = 8 // pool_max_conns, more than PgBouncer will give
)

// bouncerPool returns a pool through a new transaction-pooling PgBouncer, with extra appended
// to the connection string, and a table name unique to the test, created directly on the
// server.
func bouncerPool(t *testing.T, extra string) (*pgpool.Pool, string) {
	t.Helper()
	b := pgtest.NewBouncer(t, pgtest.Shared(t), pgtest.BouncerConfig{DefaultPoolSize: bouncerServerConns})
	table := fmt.Sprintf("bouncer_items_%d", appSeq.Add(1))
	admin := adminConn(t)
	if _, err := admin.Exec(testCtx(t), "CREATE TABLE "+table+" (id int, v text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP TABLE "+table) })
	cfg, err := pgpool.ParseConfig(fmt.Sprintf("%s pool_max_conns=%d %s", b.ConnString(), bouncerPoolConns, extra))
	if err != nil {
		t.Fatal(err)
	}
	// Ping on every acquire: the pool's own checks must work through PgBouncer too.
	cfg.ShouldPing = func(context.Context, pgpool.ShouldPingParams) bool { return true }
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	return p, table
}

// mixedOp runs the i-th operation of the mixed workload: QueryRow, Query, Exec, Begin/Commit,
// SendBatch or CopyFrom, each checking its result.
func mixedOp(ctx context.Context, p *pgpool.Pool, table string, i int) error {
	switch i % 6 {
	case 0:
		var n int
		if err := p.QueryRow(ctx, "SELECT $1::int + 1", i).Scan(&n); err != nil {
			return fmt.Errorf("QueryRow: %w", err)
		}
		if n != i+1 {
			return fmt.Errorf("QueryRow: %d, want %d", n, i+1)
		}
	case 1:
		rows, err := p.Query(ctx, "SELECT g, $2::text FROM generate_series(1, $1::int) g", 3, "x")
		if err != nil {
			return fmt.Errorf("Query: %w", err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (int, error) {
			var n int
			var s string
			err := r.Scan(&n, &s)
			return n, err
		})
		if err != nil || len(got) != 3 {
			return fmt.Errorf("Query: %v rows, %v", got, err)
		}
	case 2:
		tag, err := p.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", i, "exec")
		if err != nil || tag.RowsAffected() != 1 {
			return fmt.Errorf("Exec: %v, %v", tag, err)
		}
	case 3:
		tx, err := p.Begin(ctx)
		if err != nil {
			return fmt.Errorf("Begin: %w", err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", i, "tx"); err != nil {
			return fmt.Errorf("tx Exec: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE id = $1 AND v = $2", i, "tx").Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("tx QueryRow: %d, %v", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("Commit: %w", err)
		}
	case 4:
		b := &pgx.Batch{}
		b.Queue("INSERT INTO "+table+" VALUES ($1, $2)", i, "batch")
		b.Queue("SELECT $1::text", "b")
		b.Queue("SELECT count(*) FROM " + table)
		br := p.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("batch Exec: %w", err)
		}
		var s string
		if err := br.QueryRow().Scan(&s); err != nil || s != "b" {
			br.Close()
			return fmt.Errorf("batch QueryRow: %q, %v", s, err)
		}
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil || n < 1 {
			br.Close()
			return fmt.Errorf("batch count: %d, %v", n, err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("batch Close: %w", err)
		}
	case 5:
		rows := [][]any{{i, "copy"}, {i, "copy"}, {i, "copy"}}
		n, err := p.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "v"}, pgx.CopyFromRows(rows))
		if err != nil || n != 3 {
			return fmt.Errorf("CopyFrom: %d, %v", n, err)
		}
	}
	return nil
}

// TestPgBouncerMixedWorkload: 32 goroutines run 640 mixed calls through PgBouncer
// (transaction pooling, 3 server connections for a pool of 8) with no error, in each exec mode
// that works there; cache_describe is the one the package recommends.
func TestPgBouncerMixedWorkload(t *testing.T) {
	const goroutines, perGoroutine = 32, 20
	for _, mode := range []string{"cache_describe", "exec", "simple_protocol"} {
		t.Run("mode="+mode, func(t *testing.T) {
			p, table := bouncerPool(t, "default_query_exec_mode="+mode)
			ctx := testCtx(t)
			var failed atomic.Int64
			var first sync.Once
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for k := range perGoroutine {
						if err := mixedOp(ctx, p, table, g*perGoroutine+k); err != nil {
							failed.Add(1)
							first.Do(func() { t.Errorf("first failure: %v", err) })
						}
					}
				})
			}
			wg.Wait()
			if n := failed.Load(); n != 0 {
				t.Fatalf("%d of %d calls failed", n, goroutines*perGoroutine)
			}
			// Every insert is there: 1 (Exec) + 1 (tx) + 1 (batch) + 3 (copy) rows per 6 calls.
			var rows int
			if err := p.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if want := goroutines * perGoroutine / 6 * 6; rows < want-6 || rows > want+6 {
				t.Fatalf("%d rows in %s, want about %d", rows, table, want)
			}
			if s := p.PoolStat(); s.Acquired != 0 {
				t.Fatalf("connections still held: %+v", s)
			}
		})
	}
}

// TestPgBouncerReleaseChecks: the release checks see PgBouncer's transaction status: a
// connection given back inside a transaction, or in a failed one, is destroyed, and one given
// back clean is kept.
func TestPgBouncerReleaseChecks(t *testing.T) {
	p, table := bouncerPool(t, "default_query_exec_mode=cache_describe")
	ctx := testCtx(t)

	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+table+" VALUES (1, 'left open')"); err != nil {
		t.Fatal(err)
	}
	c.Release() // in a transaction: destroyed, so PgBouncer rolls it back
	waitFor(t, "the open-transaction connection to be destroyed", func() bool { return p.PoolStat().DestroyCount == 1 })

	c, err = p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("division by zero succeeded")
	}
	if tx := c.Conn().PgConn().TxStatus(); tx != 'E' {
		t.Fatalf("TxStatus %q through PgBouncer, want 'E'", tx)
	}
	c.Release()
	waitFor(t, "the failed-transaction connection to be destroyed", func() bool { return p.PoolStat().DestroyCount == 2 })

	if err := p.AcquireFunc(ctx, func(c *pgpool.Conn) error { return c.Ping(ctx) }); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows of the abandoned transaction: %d, %v", n, err)
	}
	if s := p.PoolStat(); s.DestroyCount != 2 || s.Idle < 1 {
		t.Fatalf("clean connections were not kept: %+v", s)
	}
}

// TestPgBouncerOpenDB: database/sql on the pool (OpenDB) works through PgBouncer too: 16
// goroutines of parameterized queries, transactions and prepared statements, no error.
func TestPgBouncerOpenDB(t *testing.T) {
	p, table := bouncerPool(t, "default_query_exec_mode=cache_describe")
	db := pgpool.OpenDB(p)
	defer db.Close()
	ctx := testCtx(t)
	stmt, err := db.PrepareContext(ctx, "SELECT count(*) FROM "+table+" WHERE id = $1")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for k := range 10 {
				id := g*10 + k
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", id, "sql"); err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
				var n int
				if err := stmt.QueryRowContext(ctx, id).Scan(&n); err != nil || n != 1 {
					errs <- fmt.Errorf("row %d: count %d, %v", id, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
