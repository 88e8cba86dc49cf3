package pgpool_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// A pool of at most 8 connections; callers beyond 8 wait in arrival order.
func Example() {
	ctx := context.Background()
	p, err := pgpool.New(ctx, "postgres://app@localhost/app?pool_max_conns=8&pool_max_conn_lifetime=30m")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		log.Fatal(err)
	}

	rows, _ := p.Query(ctx, "SELECT name FROM users ORDER BY name LIMIT 10")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string]) // releases the connection
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, names, p.Stat().AcquiredConns())
}

// Through PgBouncer in transaction pooling mode: pgx's default exec mode prepares named
// statements per connection, which PgBouncer may run on another server connection; the
// cache_describe exec mode, set in the connection string, prepares nothing by name.
func Example_pgBouncer() {
	ctx := context.Background()
	p, err := pgpool.New(ctx, "postgres://app@pgbouncer:6432/app?default_query_exec_mode=cache_describe&pool_max_conns=8")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	var n int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM users WHERE active = $1", true).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
}

// database/sql on the pool's connections, for a library or a migration tool that wants a
// *sql.DB: each sql.Conn or sql.Tx holds one pool connection, an idle *sql.DB none.
func ExampleOpenDB() {
	ctx := context.Background()
	p, err := pgpool.New(ctx, "postgres://app@localhost/app?pool_max_conns=8")
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // after db.Close, which leaves p open
	db := pgpool.OpenDB(p)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS migrations (version int PRIMARY KEY)"); err != nil {
		log.Fatal(err)
	}
}
