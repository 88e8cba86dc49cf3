package pgtest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestBouncerTransactionPoolingSharesServerConns: four clients through a transaction-pooling
// bouncer with default_pool_size 2 are served by at most two server backends.
func TestBouncerTransactionPoolingSharesServerConns(t *testing.T) {
	b := NewBouncer(t, Shared(t), BouncerConfig{DefaultPoolSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pids := map[uint32]bool{}
	var conns []*pgx.Conn
	for range 4 {
		conn, err := pgx.Connect(ctx, b.ConnString()+" default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatalf("connect through pgbouncer: %v\n%s", err, b.Log())
		}
		defer conn.Close(context.Background())
		conns = append(conns, conn)
	}
	for range 3 {
		for _, conn := range conns {
			var pid uint32
			if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids[pid] = true
		}
	}
	if len(pids) == 0 || len(pids) > 2 {
		t.Fatalf("server backends seen %v, want 1 or 2 (default_pool_size 2)", pids)
	}
}

// TestBouncerStopEndsProcess: Stop ends PgBouncer and removes its directory; a second Stop is a
// no-op.
func TestBouncerStopEndsProcess(t *testing.T) {
	b, err := StartBouncer(Shared(t), BouncerConfig{})
	RequireOrSkip(t, err)
	pid := b.cmd.Process.Pid
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("pgbouncer pid %d alive after Stop", pid)
	}
	if m, _ := filepath.Glob(b.root); len(m) != 0 {
		t.Errorf("bouncer dir %s left after Stop", b.root)
	}
	if err := b.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestNoPgBouncer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := debianPgBouncer
	debianPgBouncer = filepath.Join(t.TempDir(), "pgbouncer")
	t.Cleanup(func() { debianPgBouncer = old })
	_, err := StartBouncer(&Cluster{connString: "host=127.0.0.1 port=1 user=u dbname=d"}, BouncerConfig{})
	if !errors.Is(err, ErrNoPgBouncer) {
		t.Fatalf("StartBouncer without the binary: %v, want ErrNoPgBouncer", err)
	}
	t.Setenv("CI", "")
	if got := outcome(err); got != "skip" {
		t.Errorf("outside CI: %s, want skip", got)
	}
	t.Setenv("CI", "true")
	if got := outcome(err); got != "fatal" {
		t.Errorf("CI=true: %s, want fatal", got)
	}
}

func TestQuoteConnValue(t *testing.T) {
	for in, want := range map[string]string{
		"postgres":  `'postgres'`,
		"p w":       `'p w'`,
		`it's`:      `'it\'s'`,
		`back\lash`: `'back\\lash'`,
	} {
		if got := quoteConnValue(in); got != want {
			t.Errorf("quoteConnValue(%q) = %s, want %s", in, got, want)
		}
	}
}
