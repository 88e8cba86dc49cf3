package pgpool_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/tracelog"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// recordingTracer implements pgpool's AcquireTracer and ReleaseTracer and records each call.
type recordingTracer struct {
	mu     sync.Mutex
	events []string
	pool   *pgpool.Pool
	ends   []pgpool.TraceAcquireEndData
}

type traceKey struct{}

func (r *recordingTracer) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recordingTracer) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func (r *recordingTracer) TraceAcquireStart(ctx context.Context, p *pgpool.Pool, _ pgpool.TraceAcquireStartData) context.Context {
	r.add("start")
	r.mu.Lock()
	r.pool = p
	r.mu.Unlock()
	return context.WithValue(ctx, traceKey{}, "mark")
}

func (r *recordingTracer) TraceAcquireEnd(ctx context.Context, p *pgpool.Pool, d pgpool.TraceAcquireEndData) {
	if ctx.Value(traceKey{}) != "mark" {
		r.add("end without the start's ctx")
		return
	}
	r.mu.Lock()
	r.ends = append(r.ends, d)
	r.mu.Unlock()
	if d.Err != nil {
		r.add("end err")
	} else {
		r.add("end")
	}
}

func (r *recordingTracer) TraceRelease(p *pgpool.Pool, d pgpool.TraceReleaseData) {
	if d.Conn == nil {
		r.add("release nil conn")
		return
	}
	r.add("release")
}

func tracedPool(t *testing.T, tracer pgx.QueryTracer, extra string) *pgpool.Pool {
	t.Helper()
	cfg, err := pgpool.ParseConfig(newConnString(t) + " " + extra)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	p, err := pgpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	return p
}

// recordingTracer must also be a pgx.QueryTracer to sit in ConnConfig.Tracer.
func (r *recordingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (r *recordingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestTracerCalledWhereAndAsPgxpoolCallsIt: Acquire calls TraceAcquireStart then
// TraceAcquireEnd (with the start's ctx, the connection or the error), every helper acquires
// through it, and the first Release of each Conn calls TraceRelease; later Releases and Hijack
// do not.
func TestTracerCalledWhereAndAsPgxpoolCallsIt(t *testing.T) {
	tr := &recordingTracer{}
	p := tracedPool(t, tr, "pool_max_conns=2")
	ctx := testCtx(t)

	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.take(); !slices.Equal(got, []string{"start", "end"}) {
		t.Fatalf("Acquire traced %v", got)
	}
	if tr.pool != p || tr.ends[0].Conn != c.Conn() {
		t.Fatal("TraceAcquireEnd did not get the pool and the acquired connection")
	}
	c.Release()
	c.Release()
	if got := tr.take(); !slices.Equal(got, []string{"release"}) {
		t.Fatalf("two Releases traced %v, want one release", got)
	}

	var n int
	if err := p.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"start", "end", "release", "start", "end", "release", "start", "end", "release"}
	if got := tr.take(); !slices.Equal(got, want) {
		t.Fatalf("QueryRow, Exec, Begin/Commit traced %v, want %v", got, want)
	}

	c, err = p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Hijack()
	defer conn.Close(ctx)
	if got := tr.take(); !slices.Equal(got, []string{"start", "end"}) {
		t.Fatalf("Acquire+Hijack traced %v", got)
	}

	p.Close()
	if _, err := p.Acquire(ctx); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Fatalf("Acquire on closed pool: %v", err)
	}
	if got := tr.take(); !slices.Equal(got, []string{"start", "end err"}) {
		t.Fatalf("failed Acquire traced %v", got)
	}
	if last := tr.ends[len(tr.ends)-1]; last.Conn != nil || !errors.Is(last.Err, pgpool.ErrClosedPool) {
		t.Fatalf("failed Acquire's end data: %+v", last)
	}
}

// logRecorder is a tracelog.Logger that keeps the messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
	errs []any
}

func (l *logRecorder) Log(_ context.Context, _ tracelog.LogLevel, msg string, data map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if msg == "Acquire" || msg == "Release" {
		l.msgs = append(l.msgs, msg)
		if err, ok := data["err"]; ok {
			l.errs = append(l.errs, err)
		}
	}
}

// TestPgxpoolTracerWorks: pgx's tracelog.TraceLog, which implements pgxpool's AcquireTracer and
// ReleaseTracer (not pgpool's), logs Acquire and Release through pgpool as through pgxpool,
// failed acquires with their error.
func TestPgxpoolTracerWorks(t *testing.T) {
	logs := &logRecorder{}
	p := tracedPool(t, &tracelog.TraceLog{Logger: logs, LogLevel: tracelog.LogLevelDebug}, "pool_max_conns=1")
	ctx := testCtx(t)
	var n int
	if err := p.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Acquire(ctx); !errors.Is(err, pgpool.ErrClosedPool) {
		t.Fatal(err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if want := []string{"Acquire", "Release", "Acquire"}; !slices.Equal(logs.msgs, want) {
		t.Fatalf("tracelog logged %v, want %v", logs.msgs, want)
	}
	if len(logs.errs) != 1 || !errors.Is(logs.errs[0].(error), pgpool.ErrClosedPool) {
		t.Fatalf("tracelog's error fields %v, want the ErrClosedPool of the failed acquire", logs.errs)
	}
}

// poolReadingTracer is a pgxpool tracer that reads the pool it is given, as some OpenTelemetry
// wrappers do (pool.Config().ConnConfig for span attributes), which a nil pool makes panic.
type poolReadingTracer struct {
	recordingTracer
	ends, releases atomic.Int64
}

func (p *poolReadingTracer) TraceAcquireStart(ctx context.Context, pool *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	_ = pool.Config().ConnConfig.Host
	return ctx
}

func (p *poolReadingTracer) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {
	p.ends.Add(1)
}

func (p *poolReadingTracer) TraceRelease(pool *pgxpool.Pool, _ pgxpool.TraceReleaseData) {
	p.releases.Add(1)
	_ = pool.Config()
}

// TestPgxpoolTracerReadingThePoolDoesNotBreakAcquire: a pgxpool tracer that dereferences the
// pool argument (nil through pgpool) panics inside pgpool's bridge; Acquire and Release still
// work, and the TraceAcquireEnd of an Acquire whose TraceAcquireStart failed is not called.
func TestPgxpoolTracerReadingThePoolDoesNotBreakAcquire(t *testing.T) {
	tr := &poolReadingTracer{}
	p := tracedPool(t, tr, "pool_max_conns=1")
	ctx := testCtx(t)
	for range 2 {
		if err := p.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if tr.ends.Load() != 0 || tr.releases.Load() != 2 {
		t.Fatalf("TraceAcquireEnd called %d times (want 0), TraceRelease %d (want 2)", tr.ends.Load(), tr.releases.Load())
	}
	if s := p.PoolStat(); s.Acquired != 0 || s.Idle != 1 || s.DestroyCount != 0 {
		t.Fatalf("after traced acquires: %+v", s)
	}
}
