package promstats_test

import (
	"context"
	"testing"
	"time"

	"github.com/muxpool/muxpool/internal/pgtest"
	"github.com/muxpool/muxpool/pool/pgpool"
	"github.com/muxpool/muxpool/promstats"
)

// A PgPool collector reports a real pgpool under the same metric names as Pool: two queries
// on one connection, made once and idle afterwards.
func TestPgPoolCollectorScrapesKnownActivity(t *testing.T) {
	cluster := pgtest.Shared(t) // skips without PostgreSQL, fails under CI=true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pgpool.New(ctx, cluster.ConnString()+" application_name=promstats_test pool_max_conns=3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	url := serve(t, promstats.NewPgPool(p, "db", nil))

	for i := range 2 {
		var n int
		if err := p.QueryRow(ctx, "SELECT $1::int + 1", i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}

	compare(t, url, `
# HELP muxpool_pool_acquire_total Successful acquires (Acquire and TryAcquire).
# TYPE muxpool_pool_acquire_total counter
muxpool_pool_acquire_total{pool="db"} 2
# HELP muxpool_pool_acquire_empty_total Successful acquires that found no idle resource and waited for a release or a construction.
# TYPE muxpool_pool_acquire_empty_total counter
muxpool_pool_acquire_empty_total{pool="db"} 1
# HELP muxpool_pool_construct_total Constructor calls that returned, by result: success or error.
# TYPE muxpool_pool_construct_total counter
muxpool_pool_construct_total{pool="db",result="error"} 0
muxpool_pool_construct_total{pool="db",result="success"} 1
# HELP muxpool_pool_resources Resources in the pool by state: idle, acquired, constructing (Constructor running) and destroying (Destructor scheduled or running; its slot still counts).
# TYPE muxpool_pool_resources gauge
muxpool_pool_resources{pool="db",state="acquired"} 0
muxpool_pool_resources{pool="db",state="constructing"} 0
muxpool_pool_resources{pool="db",state="destroying"} 0
muxpool_pool_resources{pool="db",state="idle"} 1
# HELP muxpool_pool_max_resources The bound on resources in the pool (pool.Config.MaxSize).
# TYPE muxpool_pool_max_resources gauge
muxpool_pool_max_resources{pool="db"} 3
`)
	fams := scrape(t, url)
	if v := series(t, fams, "muxpool_pool_acquire_seconds_total", "pool", "db").GetCounter().GetValue(); v <= 0 {
		t.Errorf("acquire_seconds_total %v after two acquires, one of them a connect", v)
	}
	if _, ok := fams["muxpool_pool_acquire_duration_seconds"]; ok {
		t.Error("PgPool sent an acquire histogram it cannot have")
	}
}
