package pgpool_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// assertIdle fails unless every connection of p is back in the pool.
func assertIdle(t *testing.T, p *pgpool.Pool, what string) {
	t.Helper()
	if s := p.PoolStat(); s.Acquired != 0 {
		t.Fatalf("%s: %d connections still acquired", what, s.Acquired)
	}
}

func TestQueryReleasesWhenRowsEnd(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)

	rows, err := p.Query(ctx, "SELECT generate_series(1, $1::int)", 5)
	if err != nil {
		t.Fatal(err)
	}
	if s := p.PoolStat(); s.Acquired != 1 {
		t.Fatalf("acquired %d while rows open", s.Acquired)
	}
	sum := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	assertIdle(t, p, "after Next returned false")
	rows.Close()
	if err := rows.Err(); err != nil || sum != 15 || rows.CommandTag().RowsAffected() != 5 {
		t.Fatalf("sum %d, err %v, tag %v", sum, err, rows.CommandTag())
	}

	// Closed early, with rows unread: the connection is drained by pgx and kept.
	rows, err = p.Query(ctx, "SELECT generate_series(1, 1000)")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	rows.Close()
	assertIdle(t, p, "after early Close")

	// Collected through pgx's helpers.
	rows, err = p.Query(ctx, "SELECT generate_series(1, 3)")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(got) != 3 {
		t.Fatalf("CollectRows %v, %v", got, err)
	}
	assertIdle(t, p, "after CollectRows")

	// A failing query releases the connection and reports the error both ways.
	rows, err = p.Query(ctx, "SELEKT")
	if err == nil || rows.Err() == nil || rows.Next() {
		t.Fatalf("bad query: err %v rows.Err %v", err, rows.Err())
	}
	assertIdle(t, p, "after a failed Query")
	if s := p.PoolStat(); s.DestroyCount != 0 {
		t.Fatalf("a syntax error destroyed the connection: %+v", s)
	}
}

func TestQueryRowReleasesOnScan(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	var s string
	if err := p.QueryRow(ctx, "SELECT $1::text", "hi").Scan(&s); err != nil || s != "hi" {
		t.Fatalf("%q, %v", s, err)
	}
	assertIdle(t, p, "after Scan")
	if err := p.QueryRow(ctx, "SELECT 1 WHERE false").Scan(&s); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no rows: %v", err)
	}
	assertIdle(t, p, "after ErrNoRows")
}

func TestTxReleasesOnCommitAndRollback(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	if _, err := p.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS t (v int)"); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{true, false} {
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		assertIdle(t, p, "after the transaction")
		if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) { // deferred-Rollback idiom
			t.Fatalf("second Rollback: %v", err)
		}
	}
	var n int
	// The temp table lives on the one connection: it was kept, and only the commit counted.
	if err := p.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows %d, %v", n, err)
	}

	tx, err := p.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("division by zero succeeded")
	}
	// Committing a failed transaction reports that it was rolled back, and leaves the
	// connection clean (TxStatus 'I'), so it is kept.
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit of failed tx: %v", err)
	}
	assertIdle(t, p, "after committing a failed transaction")
	if s := p.PoolStat(); s.DestroyCount != 0 {
		t.Fatalf("stat %+v", s)
	}
}

func TestSendBatchReleasesOnClose(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	b := &pgx.Batch{}
	var got []int
	for i := range 3 {
		b.Queue("SELECT $1::int", i).QueryRow(func(r pgx.Row) error {
			var v int
			err := r.Scan(&v)
			got = append(got, v)
			return err
		})
	}
	br := p.SendBatch(ctx, b)
	if br.Tx() != nil {
		t.Fatal("plain batch reports a transaction")
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2] != 2 {
		t.Fatalf("results %v", got)
	}
	assertIdle(t, p, "after batch Close")

	// A batch that begins a transaction holds the connection until the transaction ends.
	b = &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("SELECT 1")
	br = p.SendBatch(ctx, b)
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if s := p.PoolStat(); s.Acquired != 1 {
		t.Fatalf("batch transaction released its connection early: %+v", s)
	}
	if err := br.Tx().Commit(ctx); err != nil {
		t.Fatal(err)
	}
	assertIdle(t, p, "after the batch transaction's Commit")
}

func TestCopyFromAndExec(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	if _, err := p.Exec(ctx, "CREATE TEMP TABLE c (a int, b text)"); err != nil {
		t.Fatal(err)
	}
	n, err := p.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"a", "b"},
		pgx.CopyFromRows([][]any{{1, "x"}, {2, "y"}, {3, "z"}}))
	if err != nil || n != 3 {
		t.Fatalf("copied %d, %v", n, err)
	}
	tag, err := p.Exec(ctx, "DELETE FROM c WHERE a > $1", 1)
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("delete %v, %v", tag, err)
	}
	assertIdle(t, p, "after CopyFrom and Exec")
}

func TestHijackRemovesConnection(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Hijack()
	if conn == nil || c.Hijack() != nil {
		t.Fatal("Hijack did not hand over exactly once")
	}
	c.Release() // no-op after Hijack
	defer conn.Close(ctx)
	if s := p.PoolStat(); s.Total != 0 || s.HijackCount != 1 {
		t.Fatalf("stat %+v", s)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// The freed slot serves a new connection.
	if err := p.AcquireFunc(ctx, func(c *pgpool.Conn) error { return c.Ping(ctx) }); err != nil {
		t.Fatal(err)
	}
}

func TestHelpersReportAcquireErrors(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	p.Close()
	ctx := testCtx(t)
	var v int
	if err := p.QueryRow(ctx, "SELECT 1").Scan(&v); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Errorf("QueryRow: %v", err)
	}
	if rows, err := p.Query(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrClosedPool) || !errors.Is(rows.Err(), pgpool.ErrClosedPool) {
		t.Errorf("Query: %v", err)
	}
	if _, err := p.Begin(ctx); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Errorf("Begin: %v", err)
	}
	if err := p.SendBatch(ctx, &pgx.Batch{}).Close(); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Errorf("SendBatch: %v", err)
	}
	if _, err := p.CopyFrom(ctx, pgx.Identifier{"x"}, nil, pgx.CopyFromRows(nil)); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Errorf("CopyFrom: %v", err)
	}
	if err := p.Ping(ctx); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Errorf("Ping: %v", err)
	}
}

// TestConnMethodsDoNotRelease: as in pgxpool, only the Pool helpers release; the Conn's own
// Query, QueryRow, SendBatch and Begin leave it held, so it can be used again.
func TestConnMethodsDoNotRelease(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=1")
	ctx := testCtx(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var v int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Query(ctx, "SELECT generate_series(1, 3)")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if err := c.SendBatch(ctx, &pgx.Batch{}).Close(); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.PoolStat(); s.Acquired != 1 {
		t.Fatalf("Conn methods released the connection: %+v", s)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
