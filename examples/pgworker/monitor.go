package main

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// connWatch samples, over its own connection outside the pool, how many server
// backends of the current database carry the pool's application_name, and keeps the
// peak: the server-side view of the pool's bound.
type connWatch struct {
	conn *pgx.Conn
	app  string
	mu   sync.Mutex
	now  int
	peak int
	err  error
}

// watchConns connects with connConfig (application_name replaced), samples once, and
// then samples every interval until the returned stop function is called; stop takes
// a last sample, closes the connection and returns.
func watchConns(ctx context.Context, connConfig *pgx.ConnConfig, app string, interval time.Duration) (*connWatch, func(), error) {
	cfg := connConfig.Copy()
	cfg.RuntimeParams["application_name"] = app + "-monitor"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	w := &connWatch{conn: conn, app: app}
	if err := w.sample(ctx); err != nil {
		conn.Close(context.Background())
		return nil, nil, err
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-quit:
				return
			}
			if w.sample(ctx) != nil {
				return
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(quit)
			<-done
			w.sample(ctx)
			conn.Close(context.Background())
		})
	}
	return w, stop, nil
}

// sample counts the backends once.
func (w *connWatch) sample(ctx context.Context) error {
	var n int
	err := w.conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, w.app).Scan(&n)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && w.err == nil {
			w.err = err
		}
		return err
	}
	w.now = n
	w.peak = max(w.peak, n)
	return nil
}

// get returns the latest count, the peak, and the first sampling error.
func (w *connWatch) get() (now, peak int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now, w.peak, w.err
}
