package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/muxpool/muxpool/internal/pgtest"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// Shape of the PostgreSQL benchmarks (issue 3): 64 goroutines on 8 connections.
const (
	pgBenchConns      = 8
	pgBenchGoroutines = 64
	pgBenchRows       = 100 // rows in the small-row table
)

// pgQuery is one query the PostgreSQL benchmarks run; run executes it once on whatever
// connection type the implementation acquired.
type pgQuery struct {
	name string
	sql  string
	args func(i int) []any
}

var pgQueries = []pgQuery{
	{"select1", "SELECT 1", func(int) []any { return nil }},
	{"smallrow", "SELECT id, name, price, created FROM pgbench_items WHERE id = $1",
		func(i int) []any { return []any{i%pgBenchRows + 1} }},
}

// pgRow receives either query's columns (select1 fills only id).
type pgRow struct {
	id      int32
	name    string
	price   float64
	created time.Time
}

func (r *pgRow) dest(q *pgQuery) []any {
	if q.name == "select1" {
		return []any{&r.id}
	}
	return []any{&r.id, &r.name, &r.price, &r.created}
}

// pgImpl is one pool under test. open returns a function that acquires a connection
// (reporting how long the acquire waited), runs q once on it and releases it.
type pgImpl struct {
	name string
	open func(b *testing.B, connString string) (run func(ctx context.Context, q *pgQuery, i int) (wait time.Duration, err error), close func())
}

var pgImpls = []pgImpl{
	{"pgpool", openPGPool},
	{"pgxpool", openPgxpool},
	{"databasesql", openPgxStdlib},
	{"pgpoolsql", openPGPoolSQL},
}

func openPGPool(b *testing.B, connString string) (func(context.Context, *pgQuery, int) (time.Duration, error), func()) {
	p, err := pgpool.New(context.Background(), fmt.Sprintf("%s pool_max_conns=%d", connString, pgBenchConns))
	if err != nil {
		b.Fatal(err)
	}
	return acquireAndQuery(p.Acquire), p.Close
}

func openPgxpool(b *testing.B, connString string) (func(context.Context, *pgQuery, int) (time.Duration, error), func()) {
	p, err := pgxpool.New(context.Background(), fmt.Sprintf("%s pool_max_conns=%d", connString, pgBenchConns))
	if err != nil {
		b.Fatal(err)
	}
	return acquireAndQuery(p.Acquire), p.Close
}

// pooledConn is what pgpool and pgxpool hand out: a pgx connection to release.
type pooledConn interface {
	Conn() *pgx.Conn
	Release()
}

// acquireAndQuery is one benchmark op for a pool with pgxpool's shape: acquire (timed: the
// acquire wait), run q on the connection, release.
func acquireAndQuery[C pooledConn](acquire func(context.Context) (C, error)) func(context.Context, *pgQuery, int) (time.Duration, error) {
	return func(ctx context.Context, q *pgQuery, i int) (time.Duration, error) {
		var row pgRow
		start := time.Now()
		c, err := acquire(ctx)
		wait := time.Since(start)
		if err != nil {
			return wait, err
		}
		defer c.Release()
		return wait, c.Conn().QueryRow(ctx, q.sql, q.args(i)...).Scan(row.dest(q)...)
	}
}

func openPgxStdlib(b *testing.B, connString string) (func(context.Context, *pgQuery, int) (time.Duration, error), func()) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(stdlib.GetConnector(*cfg))
	db.SetMaxOpenConns(pgBenchConns)
	db.SetMaxIdleConns(pgBenchConns)
	return sqlConnAndQuery(db), func() { db.Close() }
}

// openPGPoolSQL is database/sql on pgpool's connections (pgpool.OpenDB): each sql.Conn is one
// pool Acquire.
func openPGPoolSQL(b *testing.B, connString string) (func(context.Context, *pgQuery, int) (time.Duration, error), func()) {
	p, err := pgpool.New(context.Background(), fmt.Sprintf("%s pool_max_conns=%d", connString, pgBenchConns))
	if err != nil {
		b.Fatal(err)
	}
	db := pgpool.OpenDB(p)
	return sqlConnAndQuery(db), func() {
		db.Close()
		p.Close()
	}
}

// sqlConnAndQuery is one benchmark op on a *sql.DB: take a sql.Conn (timed: the acquire
// wait), run q on it, close it.
func sqlConnAndQuery(db *sql.DB) func(context.Context, *pgQuery, int) (time.Duration, error) {
	return func(ctx context.Context, q *pgQuery, i int) (time.Duration, error) {
		var row pgRow
		start := time.Now()
		c, err := db.Conn(ctx)
		wait := time.Since(start)
		if err != nil {
			return wait, err
		}
		defer c.Close()
		return wait, c.QueryRowContext(ctx, q.sql, q.args(i)...).Scan(row.dest(q)...)
	}
}

// BenchmarkPostgres runs SELECT 1 and a one-row primary-key lookup from 64 goroutines on 8
// connections, through pgpool, pgxpool, database/sql with pgx's stdlib driver and database/sql
// on pgpool (pgpool.OpenDB), against one
// throwaway PostgreSQL cluster (internal/pgtest; DATABASE_URL when set; skipped when no server
// can be started). Each operation is acquire + query + release; besides ns/op it reports
// queries/s and the 99th percentile of the time spent waiting in Acquire.
//
//	go test ./bench -run '^$' -bench 'Postgres' -benchtime=3s -count=3
func BenchmarkPostgres(b *testing.B) {
	cluster := pgtest.New(b)
	setupPGBench(b, cluster.ConnString())
	for _, q := range pgQueries {
		for _, impl := range pgImpls {
			b.Run(fmt.Sprintf("query=%s/impl=%s", q.name, impl.name), func(b *testing.B) {
				benchPostgres(b, impl, &q, cluster.ConnString())
			})
		}
	}
}

// setupPGBench creates and fills the small-row table.
func setupPGBench(b *testing.B, connString string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		DROP TABLE IF EXISTS pgbench_items;
		CREATE TABLE pgbench_items (id int PRIMARY KEY, name text NOT NULL, price float8 NOT NULL, created timestamptz NOT NULL);
		INSERT INTO pgbench_items SELECT i, 'item ' || i, i * 1.25, now() - i * interval '1 hour'
			FROM generate_series(1, `+fmt.Sprint(pgBenchRows)+`) AS i;
		ANALYZE pgbench_items`)
	if err != nil {
		b.Fatal(err)
	}
}

func benchPostgres(b *testing.B, impl pgImpl, q *pgQuery, connString string) {
	run, closePool := impl.open(b, connString)
	defer closePool()
	ctx := context.Background()
	// Open all connections (and prepare the statement on each) before timing.
	var warm sync.WaitGroup
	for i := range pgBenchGoroutines {
		warm.Go(func() {
			if _, err := run(ctx, q, i); err != nil {
				b.Error(err)
			}
		})
	}
	warm.Wait()
	if b.Failed() {
		return
	}

	waits := make([]time.Duration, b.N) // written by index: no allocation while timing
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range pgBenchGoroutines {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				wait, err := run(ctx, q, i)
				if err != nil {
					b.Error(err)
					return
				}
				waits[i] = wait
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(waits)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
	b.ReportMetric(float64(waits[(len(waits)*99)/100]), "p99-wait-ns")
}
