// Command pgworker shows pgpool bounding database connections under load: many worker
// goroutines (64 by default) take jobs from a PostgreSQL table with
// SELECT ... FOR UPDATE SKIP LOCKED, process them and mark them done, all through a
// pool of at most 4 connections. The other workers wait in the pool's FIFO queue;
// the program prints the pool's Stat (max, acquired, waiting, acquire wait) and the
// server's own count of the pool's connections (pg_stat_activity) while it runs.
//
//	go run ./examples/pgworker -database-url 'postgres://user:pass@127.0.0.1:5432/db'
//	DATABASE_URL=... go run ./examples/pgworker -jobs 5000 -workers 128 -max-conns 8
//
// Inside the muxpool repository, without -database-url or DATABASE_URL it starts a
// throwaway PostgreSQL cluster (the initdb and pg_ctl binaries must be installed) and
// removes it afterwards. That convenience lives in throwaway.go, which imports
// muxpool's internal/pgtest and so builds only inside this module: to copy the example
// into your own module, copy main.go, queue.go, monitor.go and metrics.go and leave throwaway.go
// out; the program then needs -database-url or DATABASE_URL. Jobs go to the table
// pgworker_jobs (created if missing) under a batch id of their own; the batch's rows
// are deleted at the end unless -keep is given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/muxpool/muxpool/pool"
	"github.com/muxpool/muxpool/pool/pgpool"
	"github.com/muxpool/muxpool/promstats"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "pgworker:", err)
		os.Exit(1)
	}
}

// throwaway starts a PostgreSQL server for a run given no database URL, and returns
// its connection string and a function that stops it and removes its files. It is
// nil unless throwaway.go (repository scaffolding, see the package doc) is built in.
var throwaway func() (url string, stop func() error, err error)

// options are run's settings, one per flag.
type options struct {
	url       string
	jobs      int
	workers   int
	maxConns  int
	work      time.Duration
	statEvery time.Duration
	keep      bool
	metrics   string // serve /metrics here while the batch runs ("" for none)
}

// Report is what a run did.
type Report struct {
	Batch       string
	Processed   int           // jobs the workers completed
	PerWorker   []int         // jobs per worker
	Elapsed     time.Duration // from the first worker's start to the last one's end
	Stat        pool.Stat     // the pool's Stat when the workers finished
	PeakServer  int           // most server backends of the pool seen at once
	Done        int           // rows of the batch marked done
	NotOnce     int           // rows of the batch not processed exactly once
	Total       int           // rows of the batch
	MaxAcquired int32         // most connections held at once, per the sampled Stat
}

// run parses args, works through one batch of jobs, and prints what happened.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL connection string (default $DATABASE_URL; empty: a throwaway cluster)")
	fs.IntVar(&o.jobs, "jobs", 1000, "jobs to queue and process")
	fs.IntVar(&o.workers, "workers", 64, "worker goroutines")
	fs.IntVar(&o.maxConns, "max-conns", 4, "pool bound: most database connections at once")
	fs.DurationVar(&o.work, "work", time.Millisecond, "time each job holds its row and connection")
	fs.DurationVar(&o.statEvery, "stat-every", 250*time.Millisecond, "how often to print the pool's Stat")
	fs.BoolVar(&o.keep, "keep", false, "keep the batch's rows in the table afterwards")
	fs.StringVar(&o.metrics, "metrics", "", "serve the pool's Prometheus metrics at http://ADDR/metrics while the batch runs, e.g. 127.0.0.1:9090")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.jobs < 0 || o.workers < 1 || o.maxConns < 1 || o.work < 0 || o.statEvery <= 0 {
		return errors.New("want -jobs >= 0, -workers >= 1, -max-conns >= 1, -work >= 0, -stat-every > 0")
	}
	if o.url == "" {
		if throwaway == nil {
			return errors.New("no -database-url or DATABASE_URL")
		}
		url, stop, err := throwaway()
		if err != nil {
			return fmt.Errorf("no -database-url or DATABASE_URL, and no throwaway cluster: %w", err)
		}
		defer stop()
		o.url = url
		fmt.Fprintf(stdout, "started a throwaway PostgreSQL cluster: %s\n", o.url)
	}
	r, err := process(ctx, o, stdout)
	if err != nil {
		return err
	}
	if r.Done != r.Total || r.NotOnce != 0 || r.Processed != r.Total {
		return fmt.Errorf("batch %s: %d of %d rows done, %d not exactly once, workers counted %d", r.Batch, r.Done, r.Total, r.NotOnce, r.Processed)
	}
	return nil
}

// process sets up a batch, runs the workers through a bounded pgpool while printing its
// Stat, checks the table, and returns the report.
func process(ctx context.Context, o options, out io.Writer) (Report, error) {
	r := Report{Batch: strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(os.Getpid())}
	cfg, err := pgpool.ParseConfig(o.url)
	if err != nil {
		return r, err
	}
	cfg.MaxConns = int32(o.maxConns)
	app := "pgworker-" + r.Batch
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	acquire := promstats.NewHistogram(nil)
	cfg.AcquireObserver = acquire
	p, err := pgpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return r, err
	}
	defer p.Close()
	if o.metrics != "" {
		addr, stop, err := serveMetrics(o.metrics, p, acquire)
		if err != nil {
			return r, err
		}
		defer stop()
		fmt.Fprintf(out, "metrics at http://%s/metrics\n", addr)
	}
	if err := setup(ctx, p, r.Batch, o.jobs); err != nil {
		return r, err
	}
	if !o.keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Exec(dctx, `DELETE FROM pgworker_jobs WHERE batch = $1`, r.Batch)
		}()
	}
	watch, stopWatch, err := watchConns(ctx, cfg.ConnConfig, app, 5*time.Millisecond)
	if err != nil {
		return r, err
	}
	defer stopWatch()
	fmt.Fprintf(out, "batch %s: %d jobs, %d workers, pool of at most %d connections\n", r.Batch, o.jobs, o.workers, o.maxConns)

	var done atomic.Int64
	start := time.Now()
	finished := make(chan struct{})
	var werr error
	go func() {
		defer close(finished)
		r.PerWorker, werr = runWorkers(ctx, p, r.Batch, o.workers, o.work, &done)
	}()
	tick := time.NewTicker(o.statEvery)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-finished:
			running = false
		case <-tick.C:
		}
		st := p.PoolStat()
		r.MaxAcquired = max(r.MaxAcquired, st.Acquired)
		now, peak, _ := watch.get()
		fmt.Fprintf(out, "%6s done=%d/%d  pool: max=%d total=%d acquired=%d idle=%d waiting=%d acquire_wait_total=%s (%d of %d acquires waited)  server conns=%d peak=%d\n",
			time.Since(start).Round(time.Millisecond), done.Load(), o.jobs, st.Max, st.Total, st.Acquired, st.Idle, st.Waiting,
			st.AcquireDuration.Round(time.Millisecond), st.EmptyAcquireCount, st.AcquireCount, now, peak)
	}
	r.Elapsed = time.Since(start)
	r.Stat = p.PoolStat()
	stopWatch()
	_, r.PeakServer, err = watch.get()
	if err = errors.Join(werr, err); err != nil {
		return r, err
	}
	for _, n := range r.PerWorker {
		r.Processed += n
	}
	if r.Done, r.NotOnce, r.Total, err = batchCounts(ctx, p, r.Batch); err != nil {
		return r, err
	}
	busy := 0
	for _, n := range r.PerWorker {
		if n > 0 {
			busy++
		}
	}
	avg := time.Duration(0)
	if r.Stat.EmptyAcquireCount > 0 {
		avg = r.Stat.EmptyAcquireWaitTime / time.Duration(r.Stat.EmptyAcquireCount)
	}
	fmt.Fprintf(out, "done: %d jobs in %s by %d of %d workers (%.0f jobs/s); table: %d/%d done, %d not exactly once\n",
		r.Processed, r.Elapsed.Round(time.Millisecond), busy, o.workers, float64(r.Processed)/r.Elapsed.Seconds(), r.Done, r.Total, r.NotOnce)
	fmt.Fprintf(out, "pool: max=%d, %d acquires, %d waited (avg %s), %d connections made; server saw at most %d connections of this pool\n",
		r.Stat.Max, r.Stat.AcquireCount, r.Stat.EmptyAcquireCount, avg.Round(time.Microsecond), r.Stat.ConstructCount, r.PeakServer)
	return r, nil
}
