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
	fmt.Println(n, names, p.PoolStat().Acquired)
}
