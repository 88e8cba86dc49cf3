package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/muxpool/muxpool/pool/pgpool"
)

// schema creates the job table (pgworker_jobs) and an index over the pending jobs. Each run
// works on its own batch, so runs never touch each other's rows.
const schema = `
CREATE TABLE IF NOT EXISTS pgworker_jobs (
	id       bigserial PRIMARY KEY,
	batch    text NOT NULL,
	payload  bigint NOT NULL,
	status   text NOT NULL DEFAULT 'pending',
	result   bigint,
	worker   int,
	attempts int NOT NULL DEFAULT 0,
	done_at  timestamptz
);
CREATE INDEX IF NOT EXISTS pgworker_jobs_pending ON pgworker_jobs (batch, id) WHERE status = 'pending'`

// claimSQL takes the oldest pending job of a batch that no other transaction holds: SKIP
// LOCKED makes concurrent workers pass over each other's rows instead of queueing on them.
const claimSQL = `
SELECT id, payload FROM pgworker_jobs
WHERE batch = $1 AND status = 'pending'
ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED`

// completeSQL records a job's result in the transaction that claimed it.
const completeSQL = `
UPDATE pgworker_jobs
SET status = 'done', result = $2, worker = $3, attempts = attempts + 1, done_at = now()
WHERE id = $1`

// setup creates the table if needed and queues n jobs for batch.
func setup(ctx context.Context, p *pgpool.Pool, batch string, n int) error {
	if _, err := p.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	_, err := p.Exec(ctx, `INSERT INTO pgworker_jobs (batch, payload) SELECT $1, g FROM generate_series(1, $2::int) g`, batch, n)
	return err
}

// runWorkers starts workers goroutines that each claim, process and complete jobs of
// batch until none is left, and returns how many jobs each did. Every job costs one
// transaction, and so one pooled connection held for its duration (work included).
func runWorkers(ctx context.Context, p *pgpool.Pool, batch string, workers int, work time.Duration, done *atomic.Int64) ([]int, error) {
	counts := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				ok, err := doOne(ctx, p, batch, w, work)
				if err != nil {
					errs[w] = fmt.Errorf("worker %d: %w", w, err)
					return
				}
				if !ok {
					return
				}
				counts[w]++
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil { // interrupted: one error, not one per worker
		return counts, ctx.Err()
	}
	return counts, errors.Join(errs...)
}

// doOne processes one job in one transaction; it reports false when no unclaimed
// pending job is left.
func doOne(ctx context.Context, p *pgpool.Pool, batch string, worker int, work time.Duration) (bool, error) {
	tx, err := p.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background()) // a no-op after Commit
	var id, payload int64
	if err := tx.QueryRow(ctx, claimSQL, batch).Scan(&id, &payload); errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	result := collatzSteps(payload)
	if work > 0 {
		select { // the "work": the row stays locked and the connection held meanwhile
		case <-time.After(work):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if _, err := tx.Exec(ctx, completeSQL, id, result, worker); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// collatzSteps is the job's computation: the number of Collatz steps from n to 1.
func collatzSteps(n int64) int64 {
	var steps int64
	for ; n > 1; steps++ {
		if n%2 == 0 {
			n /= 2
		} else {
			n = 3*n + 1
		}
	}
	return steps
}

// batchCounts reports a batch's jobs: done, and done with attempts other than 1.
func batchCounts(ctx context.Context, p *pgpool.Pool, batch string) (done, notOnce, total int, err error) {
	err = p.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE attempts <> 1), count(*)
		FROM pgworker_jobs WHERE batch = $1`, batch).Scan(&done, &notOnce, &total)
	return done, notOnce, total, err
}
