package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/internal/pgtest"
	"github.com/muxpool/muxpool/pool/pgpool"
	"github.com/muxpool/muxpool/promstats"
	"go.uber.org/goleak"
)

// TestMain runs the tests against one throwaway cluster (or DATABASE_URL), stops it,
// then checks for leaked goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Main(m)) }

// testCtx returns a context that ends with the test, bounded well inside its budget.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestJobsDoneOnceWithinPoolBound: 64 workers share a pool of 4 connections to process
// 400 jobs. Every job is done exactly once, the workers had to wait for connections,
// and the server never saw more than 4 connections of the pool.
func TestJobsDoneOnceWithinPoolBound(t *testing.T) {
	url := pgtest.Shared(t).ConnString()
	ctx := testCtx(t)
	var out bytes.Buffer
	const jobs, maxConns = 400, 4
	r, err := process(ctx, options{url: url, jobs: jobs, workers: 64, maxConns: maxConns,
		work: time.Millisecond, statEvery: 100 * time.Millisecond, keep: true}, &out)
	if err != nil {
		t.Fatalf("process: %v\n%s", err, out.String())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	defer conn.Exec(context.Background(), `DELETE FROM pgworker_jobs WHERE batch = $1`, r.Batch)

	var total, done, once, workers int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'done' AND result IS NOT NULL),
		count(*) FILTER (WHERE attempts = 1), count(DISTINCT worker) FROM pgworker_jobs WHERE batch = $1`, r.Batch).
		Scan(&total, &done, &once, &workers); err != nil {
		t.Fatal(err)
	}
	if total != jobs || done != jobs || once != jobs {
		t.Errorf("table: %d rows, %d done, %d done exactly once; want %d each", total, done, once, jobs)
	}
	if r.Processed != jobs || r.Done != jobs || r.NotOnce != 0 {
		t.Errorf("report: processed %d, done %d, not once %d", r.Processed, r.Done, r.NotOnce)
	}
	if workers < 2 {
		t.Errorf("only %d worker(s) did jobs", workers)
	}
	if r.PeakServer < 1 || r.PeakServer > maxConns {
		t.Errorf("server saw at most %d of the pool's connections; want 1..%d", r.PeakServer, maxConns)
	}
	if r.Stat.Max != maxConns || r.MaxAcquired > maxConns || r.Stat.Total > maxConns {
		t.Errorf("pool stat %+v, max acquired %d; want bounded by %d", r.Stat, r.MaxAcquired, maxConns)
	}
	if r.Stat.EmptyAcquireCount == 0 || r.Stat.EmptyAcquireWaitTime <= 0 {
		t.Errorf("no acquire ever waited (%+v): the pool bound was not under load", r.Stat)
	}
	if !strings.Contains(out.String(), "pool: max=4 total=") {
		t.Errorf("no Stat lines printed:\n%s", out.String())
	}
}

// TestRun runs the command with flags and checks its summary; the batch is deleted
// afterwards.
func TestRun(t *testing.T) {
	url := pgtest.Shared(t).ConnString()
	ctx := testCtx(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"-database-url", url, "-jobs", "200", "-workers", "16", "-max-conns", "2", "-work", "0"}, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "table: 200/200 done, 0 not exactly once") {
		t.Errorf("summary missing:\n%s", out.String())
	}
	m := regexp.MustCompile(`server saw at most (\d+) connections`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no server connection line:\n%s", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n > 2 {
		t.Errorf("server saw %d connections, want 1..2\n%s", n, out.String())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	batch := regexp.MustCompile(`batch (\S+):`).FindStringSubmatch(out.String())
	var left int
	if batch == nil || conn.QueryRow(ctx, `SELECT count(*) FROM pgworker_jobs WHERE batch = $1`, batch[1]).Scan(&left) != nil || left != 0 {
		t.Errorf("batch %v: %d rows left after the run", batch, left)
	}
}

// -metrics serves the pool's metrics: the acquires so far, and their acquire-time
// histogram fed through the pool's AcquireObserver.
func TestMetricsServed(t *testing.T) {
	ctx := testCtx(t)
	cfg, err := pgpool.ParseConfig(pgtest.Shared(t).ConnString())
	if err != nil {
		t.Fatal(err)
	}
	acquire := promstats.NewHistogram(nil)
	cfg.AcquireObserver = acquire
	p, err := pgpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr, stop, err := serveMetrics("127.0.0.1:0", p, acquire)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for range 2 {
		if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`muxpool_pool_acquire_total{pool="pgworker"} 2`,
		`muxpool_pool_acquire_duration_seconds_count{pool="pgworker"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
