package pgpool_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// pgxpoolProgram is written as a pgxpool program would be, with pgpool in place of pgxpool,
// and touches every exported name of pgxpool (pgx v5.13.0): if pgpool loses one, or changes
// its type, this file stops compiling. It is never run.
func pgxpoolProgram(ctx context.Context, connString string) error {
	cfg, err := pgpool.ParseConfig(connString)
	if err != nil {
		return err
	}
	cfg = cfg.Copy()
	_ = cfg.ConnString()
	var cc *pgx.ConnConfig = cfg.ConnConfig
	cfg.ConnConfig = cc
	cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error { return nil }
	cfg.AfterConnect = func(context.Context, *pgx.Conn) error { return nil }
	cfg.BeforeAcquire = func(context.Context, *pgx.Conn) bool { return true }
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) { return true, nil }
	cfg.AfterRelease = func(*pgx.Conn) bool { return true }
	cfg.BeforeClose = func(*pgx.Conn) {}
	cfg.ShouldPing = func(_ context.Context, sp pgpool.ShouldPingParams) bool {
		var c *pgx.Conn = sp.Conn
		var d time.Duration = sp.IdleDuration
		return c != nil && d > time.Second
	}
	cfg.MaxConnLifetime, cfg.MaxConnLifetimeJitter, cfg.MaxConnIdleTime = time.Hour, time.Minute, time.Minute
	cfg.PingTimeout, cfg.HealthCheckPeriod = time.Second, time.Minute
	cfg.MaxConns, cfg.MinConns, cfg.MinIdleConns = int32(8), int32(1), int32(1)

	p, err := pgpool.New(ctx, connString)
	if err != nil {
		return err
	}
	p.Close()
	p, err = pgpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	var _ *pgpool.Config = p.Config()
	p.Reset()
	if err := p.Ping(ctx); err != nil {
		return err
	}
	var conns []*pgpool.Conn = p.AcquireAllIdle(ctx)
	for _, c := range conns {
		c.Release()
	}
	if err := p.AcquireFunc(ctx, func(c *pgpool.Conn) error { return nil }); err != nil {
		return err
	}
	var tag pgconn.CommandTag
	tag, err = p.Exec(ctx, "SELECT 1")
	var rows pgx.Rows
	rows, err = p.Query(ctx, "SELECT 1")
	rows.Close()
	var row pgx.Row = p.QueryRow(ctx, "SELECT 1")
	_ = row.Scan()
	var br pgx.BatchResults = p.SendBatch(ctx, &pgx.Batch{})
	br.Close()
	var tx pgx.Tx
	tx, err = p.Begin(ctx)
	tx, err = p.BeginTx(ctx, pgx.TxOptions{})
	var ptx *pgpool.Tx = tx.(*pgpool.Tx)
	_, _ = ptx.Begin(ctx)
	_, _ = ptx.CopyFrom(ctx, pgx.Identifier{"t"}, nil, pgx.CopyFromRows(nil))
	_ = ptx.SendBatch(ctx, &pgx.Batch{})
	_ = ptx.LargeObjects()
	_, _ = ptx.Prepare(ctx, "", "SELECT 1")
	_, _ = ptx.Exec(ctx, "SELECT 1")
	_, _ = ptx.Query(ctx, "SELECT 1")
	_ = ptx.QueryRow(ctx, "SELECT 1")
	var _ *pgx.Conn = ptx.Conn()
	_ = ptx.Commit(ctx)
	_ = ptx.Rollback(ctx)
	var n int64
	n, err = p.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"a"}, pgx.CopyFromRows(nil))

	var c *pgpool.Conn
	c, err = p.Acquire(ctx)
	if err != nil {
		return err
	}
	var _ *pgx.Conn = c.Conn()
	tag, err = c.Exec(ctx, "SELECT 1")
	rows, err = c.Query(ctx, "SELECT 1")
	row = c.QueryRow(ctx, "SELECT 1")
	br = c.SendBatch(ctx, &pgx.Batch{})
	n, err = c.CopyFrom(ctx, pgx.Identifier{"t"}, nil, pgx.CopyFromRows(nil))
	tx, err = c.Begin(ctx)
	tx, err = c.BeginTx(ctx, pgx.TxOptions{})
	err = c.Ping(ctx)
	var _ *pgx.Conn = c.Hijack()
	c.Release()

	var s *pgpool.Stat = p.Stat()
	var i32 int32 = s.TotalConns() + s.IdleConns() + s.AcquiredConns() + s.ConstructingConns() + s.MaxConns()
	var i64 int64 = s.AcquireCount() + s.EmptyAcquireCount() + s.CanceledAcquireCount() + s.NewConnsCount() +
		s.MaxLifetimeDestroyCount() + s.MaxIdleDestroyCount()
	var d time.Duration = s.AcquireDuration() + s.EmptyAcquireWaitTime()

	var at pgpool.AcquireTracer
	var rt pgpool.ReleaseTracer
	if at != nil {
		ctx = at.TraceAcquireStart(ctx, p, pgpool.TraceAcquireStartData{})
		at.TraceAcquireEnd(ctx, p, pgpool.TraceAcquireEndData{Conn: c.Conn(), Err: err})
	}
	if rt != nil {
		rt.TraceRelease(p, pgpool.TraceReleaseData{Conn: c.Conn()})
	}
	_, _, _, _, _ = tag, n, i32, i64, d
	return err
}

var _ = pgxpoolProgram

// pairs are pgxpool's exported types and pgpool's counterparts.
var apiPairs = []struct{ pgx, ours reflect.Type }{
	{reflect.TypeFor[*pgxpool.Pool](), reflect.TypeFor[*pgpool.Pool]()},
	{reflect.TypeFor[*pgxpool.Conn](), reflect.TypeFor[*pgpool.Conn]()},
	{reflect.TypeFor[*pgxpool.Config](), reflect.TypeFor[*pgpool.Config]()},
	{reflect.TypeFor[*pgxpool.Stat](), reflect.TypeFor[*pgpool.Stat]()},
	{reflect.TypeFor[*pgxpool.Tx](), reflect.TypeFor[*pgpool.Tx]()},
	{reflect.TypeFor[*pgxpool.ShouldPingParams](), reflect.TypeFor[*pgpool.ShouldPingParams]()},
	{reflect.TypeFor[*pgxpool.TraceAcquireStartData](), reflect.TypeFor[*pgpool.TraceAcquireStartData]()},
	{reflect.TypeFor[*pgxpool.TraceAcquireEndData](), reflect.TypeFor[*pgpool.TraceAcquireEndData]()},
	{reflect.TypeFor[*pgxpool.TraceReleaseData](), reflect.TypeFor[*pgpool.TraceReleaseData]()},
	{reflect.TypeFor[pgxpool.AcquireTracer](), reflect.TypeFor[pgpool.AcquireTracer]()},
	{reflect.TypeFor[pgxpool.ReleaseTracer](), reflect.TypeFor[pgpool.ReleaseTracer]()},
}

// ours spells a pgxpool type's string as pgpool's.
func ours(s string) string { return strings.ReplaceAll(s, "pgxpool.", "pgpool.") }

// TestPgxpoolAPIIsCovered compares, through reflection, every method and exported field of
// pgxpool's types with pgpool's: same names, same types (pgxpool's types read as pgpool's).
// Upgrading pgx to a pgxpool with more API makes it fail until pgpool has it too.
func TestPgxpoolAPIIsCovered(t *testing.T) {
	for _, pair := range apiPairs {
		for i := range pair.pgx.NumMethod() {
			m := pair.pgx.Method(i)
			got, ok := pair.ours.MethodByName(m.Name)
			if !ok {
				t.Errorf("%v has method %s, %v does not", pair.pgx, m.Name, pair.ours)
				continue
			}
			if want := ours(m.Type.String()); got.Type.String() != want {
				t.Errorf("%v.%s is %s, want %s", pair.ours, m.Name, got.Type, want)
			}
		}
		pt, ot := pair.pgx, pair.ours
		if pt.Kind() == reflect.Pointer {
			pt, ot = pt.Elem(), ot.Elem()
		}
		if pt.Kind() != reflect.Struct {
			continue
		}
		for i := range pt.NumField() {
			f := pt.Field(i)
			if !f.IsExported() {
				continue
			}
			got, ok := ot.FieldByName(f.Name)
			if !ok {
				t.Errorf("%v has field %s, %v does not", pt, f.Name, ot)
				continue
			}
			if want := ours(f.Type.String()); got.Type.String() != want {
				t.Errorf("%v.%s is %s, want %s", ot, f.Name, got.Type, want)
			}
		}
	}
}
