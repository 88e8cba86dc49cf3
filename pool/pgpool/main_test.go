package pgpool_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/internal/pgtest"
	"github.com/muxpool/muxpool/pool/pgpool"
	"go.uber.org/goleak"
)

// TestMain runs the tests against one throwaway cluster, stops it, then checks for leaked
// goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

var appSeq atomic.Int64

// testCtx is a context bounded well inside the package's time budget.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newPool returns a pool on the shared cluster whose connections carry a unique
// application_name (returned), closed at the end of the test. extra is appended to the
// connection string (pool keys).
func newPool(t *testing.T, extra string) (*pgpool.Pool, string) {
	t.Helper()
	cluster := pgtest.Shared(t)
	app := fmt.Sprintf("pgpool_test_%d", appSeq.Add(1))
	cfg, err := pgpool.ParseConfig(cluster.ConnString() + " application_name=" + app + " " + extra)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	return p, app
}

// adminConn is a connection outside any pool, for looking at the server.
func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), pgtest.Shared(t).ConnString()+" application_name=pgpool_admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// serverConns counts the server's backends serving application app.
func serverConns(t *testing.T, admin *pgx.Conn, app string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(testCtx(t), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond every 5ms until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backendPID returns the server PID behind c.
func backendPID(c *pgpool.Conn) uint32 { return c.Conn().PgConn().PID() }

// newConnString returns the shared cluster's connection string with a unique
// application_name.
func newConnString(t *testing.T) string {
	return fmt.Sprintf("%s application_name=pgpool_test_%d", pgtest.Shared(t).ConnString(), appSeq.Add(1))
}

// shutdown closes p, but gives up after 10s (a failed test may have left a connection held)
// rather than hang the package.
func shutdown(t *testing.T, p *pgpool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("pool Shutdown: %v (a connection was never released)", err)
	}
}
