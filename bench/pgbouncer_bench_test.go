package bench

import (
	"fmt"
	"testing"

	"github.com/muxpool/muxpool/internal/pgtest"
)

// pgBouncerExecMode is the pgx exec mode both pools use through PgBouncer: pgx's default
// (named prepared statements cached per connection) fails in transaction pooling mode, and
// cache_describe is the mode pool/pgpool recommends there.
const pgBouncerExecMode = "cache_describe"

// BenchmarkPostgresPgBouncer is BenchmarkPostgres through a throwaway PgBouncer in
// transaction pooling mode (default_pool_size 8, as many server connections as each pool has
// client connections), for pgpool and pgxpool, both with default_query_exec_mode=cache_describe.
// It skips when PgBouncer or PostgreSQL is missing, unless CI=true.
//
//	go test ./bench -run '^$' -bench 'PostgresPgBouncer' -benchtime=3s -count=3
func BenchmarkPostgresPgBouncer(b *testing.B) {
	cluster := pgtest.New(b)
	bouncer := pgtest.NewBouncer(b, cluster, pgtest.BouncerConfig{DefaultPoolSize: pgBenchConns})
	setupPGBench(b, cluster.ConnString())
	connString := bouncer.ConnString() + " default_query_exec_mode=" + pgBouncerExecMode
	for _, q := range pgQueries {
		for _, impl := range pgImpls[:2] { // pgpool, pgxpool
			b.Run(fmt.Sprintf("query=%s/impl=%s", q.name, impl.name), func(b *testing.B) {
				benchPostgres(b, impl, &q, connString)
			})
		}
	}
}
