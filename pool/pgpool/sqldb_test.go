package pgpool_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/muxpool/muxpool/pool/pgpool"
)

// TestOpenDBConvertsTypes: values come back as database/sql driver values (int64, float64,
// bool, []byte, time.Time, nil) or, for other types, their PostgreSQL text, and arguments of
// pgx's types go through.
func TestOpenDBConvertsTypes(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=2")
	db := pgpool.OpenDB(p)
	defer db.Close()
	ctx := testCtx(t)
	var (
		i8     int64
		i4     int
		f      float64
		b      bool
		by     []byte
		txt    string
		num    string
		id     string
		ts     time.Time
		null   sql.NullString
		arr    string
		jsonTx string
	)
	err := db.QueryRowContext(ctx, `SELECT $1::int8, 42::int4, 1.5::float8, true, '\x0102'::bytea, 'héllo'::text,
		12.340::numeric, '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid, '2024-05-06 07:08:09Z'::timestamptz, NULL::text,
		$2::int4[], '{"a": 1}'::jsonb`, int64(1)<<40, []int32{1, 2}).
		Scan(&i8, &i4, &f, &b, &by, &txt, &num, &id, &ts, &null, &arr, &jsonTx)
	if err != nil {
		t.Fatal(err)
	}
	if i8 != 1<<40 || i4 != 42 || f != 1.5 || !b || string(by) != "\x01\x02" || txt != "héllo" {
		t.Errorf("scalars: %d %d %v %v %q %q", i8, i4, f, b, by, txt)
	}
	if num != "12.340" || id != "6ba7b810-9dad-11d1-80b4-00c04fd430c8" || arr != "{1,2}" || jsonTx != `{"a": 1}` {
		t.Errorf("text forms: numeric %q uuid %q array %q jsonb %q", num, id, arr, jsonTx)
	}
	if !ts.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || null.Valid {
		t.Errorf("timestamptz %v, null %+v", ts, null)
	}
	if s := p.PoolStat(); s.Acquired != 0 {
		t.Fatalf("an idle *sql.DB holds %d pool connections", s.Acquired)
	}
}

// TestOpenDBHoldsOneConnPerTx: a sql.Tx holds one pool connection from Begin to Commit (every
// statement on the same backend), an idle *sql.DB holds none, and p.MaxConns bounds the
// *sql.DB's connections.
func TestOpenDBHoldsOneConnPerTx(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=2")
	db := pgpool.OpenDB(p)
	defer db.Close()
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS sqldb_t (v int); DELETE FROM sqldb_t"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.PoolStat(); s.Acquired != 1 {
		t.Fatalf("open sql.Tx holds %d pool connections, want 1", s.Acquired)
	}
	var pid1, pid2 int
	var iso string
	if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid(), current_setting('transaction_isolation')").Scan(&pid1, &iso); err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO sqldb_t VALUES ($1), ($2)", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("RowsAffected %d", n)
	}
	if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 || iso != "serializable" {
		t.Fatalf("tx ran on backends %d and %d, isolation %q", pid1, pid2, iso)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := p.PoolStat(); s.Acquired != 0 {
		t.Fatalf("after Commit %d pool connections held", s.Acquired)
	}

	// Two sql.Conns take both pool connections; a third waits in the pool until its deadline.
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.Conn(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third sql.Conn on a pool of 2: %v, want DeadlineExceeded", err)
	}
	c1.Close()
	c2.Close()

	// A prepared *sql.Stmt runs again and again (nothing is prepared by name on the server).
	stmt, err := db.PrepareContext(ctx, "SELECT count(*) FROM sqldb_t WHERE v >= $1")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var n int
		if err := stmt.QueryRowContext(ctx, 1).Scan(&n); err != nil || n != 2 {
			t.Fatalf("stmt: %d, %v", n, err)
		}
	}
	stmt.Close()
	if _, err := db.ExecContext(ctx, "SELECT $1::int", sql.Named("x", 1)); !errors.Is(err, pgpool.ErrNamedArgs) {
		t.Fatalf("named argument: %v, want ErrNamedArgs", err)
	}
	db.ExecContext(ctx, "DROP TABLE sqldb_t")
}

// TestOpenDBCloseLeavesPoolOpen: a sql.Conn closed inside a transaction gives its connection
// back to the pool's release check, which destroys it; closing the *sql.DB leaves the pool
// open.
func TestOpenDBCloseLeavesPoolOpen(t *testing.T) {
	p, _ := newPool(t, "pool_max_conns=2")
	db := pgpool.OpenDB(p)
	ctx := testCtx(t)
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the in-transaction connection to be destroyed", func() bool { return p.PoolStat().DestroyCount == 1 })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("pool after the *sql.DB closed: %v", err)
	}
	if s := p.PoolStat(); s.Acquired != 0 || s.Idle < 1 {
		t.Fatalf("pool after the *sql.DB closed: %+v", s)
	}
}
