package pgpool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/muxpool/muxpool/pool"
)

// ErrClosedPool is returned by Acquire (and the helpers) on a closed pool, and by Acquire calls
// blocked when the pool is closed. It is pool.ErrClosedPool.
var ErrClosedPool = pool.ErrClosedPool

// closeTimeout bounds closing one connection in the pool's destructor.
const closeTimeout = 15 * time.Second

// cleanupGrace is how long the destructor waits for pgconn's background cleanup of a broken
// connection before freeing the slot anyway (see closeConn).
const cleanupGrace = 100 * time.Millisecond

// pingIdleAfter is the default ShouldPing threshold: idle longer than this, ping first.
const pingIdleAfter = time.Second

// Pool is a pool of PostgreSQL connections. It is safe for concurrent use.
type Pool struct {
	p           *pool.Pool[*connResource]
	config      *Config
	pingTimeout time.Duration
	shouldPing  func(context.Context, ShouldPingParams) bool
	prepareConn func(context.Context, *pgx.Conn) (bool, error) // PrepareConn, or BeforeAcquire adapted
	maxTries    int

	acquireTracer AcquireTracer // from ConnConfig.Tracer, or nil
	releaseTracer ReleaseTracer // from ConnConfig.Tracer, or nil
	cleanups      cleanups      // background closes that Close must wait for
}

// connResource is the pooled value: one connection plus the handles given out for it.
type connResource struct {
	conn *pgx.Conn
	// Handles are carved out of per-connection chunks, so an acquire allocates only once per
	// chunk. Only the current holder touches these; the pool's hand-off orders holders.
	conns []Conn
	rows  []poolRows
	row   []poolRow
}

const handleChunk = 64

// New creates a pool from a connection string (see ParseConfig). Connections are made lazily
// and, for MinConns and MinIdleConns, in the background: New does not dial, so it does not
// report an unreachable server (use Ping for that). ctx is not used after New returns.
func New(ctx context.Context, connString string) (*Pool, error) {
	cfg, err := ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return NewWithConfig(ctx, cfg)
}

// NewWithConfig creates a pool from cfg, which it copies. An invalid cfg returns an error
// wrapping ErrInvalidConfig.
func NewWithConfig(_ context.Context, cfg *Config) (*Pool, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil Config", ErrInvalidConfig)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Copy()
	p := &Pool{
		config:      cfg,
		pingTimeout: cfg.PingTimeout,
		shouldPing:  cfg.ShouldPing,
		maxTries:    int(cfg.MaxConns) + 1,
	}
	if p.pingTimeout == 0 {
		p.pingTimeout = DefaultPingTimeout
	}
	if p.shouldPing == nil {
		p.shouldPing = func(_ context.Context, sp ShouldPingParams) bool { return sp.IdleDuration > pingIdleAfter }
	}
	p.prepareConn = cfg.PrepareConn
	if before := cfg.BeforeAcquire; p.prepareConn == nil && before != nil {
		// As pgxpool: false destroys the connection and Acquire tries another.
		p.prepareConn = func(ctx context.Context, conn *pgx.Conn) (bool, error) { return before(ctx, conn), nil }
	}
	tracer := cfg.ConnConfig.Tracer
	if t, ok := tracer.(AcquireTracer); ok {
		p.acquireTracer = t
	} else if t := pgxpoolAcquireTracer(tracer); t != nil {
		p.acquireTracer = t
	}
	if t, ok := tracer.(ReleaseTracer); ok {
		p.releaseTracer = t
	} else if t := pgxpoolReleaseTracer(tracer); t != nil {
		p.releaseTracer = t
	}
	pc := pool.Config[*connResource]{
		Constructor:       p.connect,
		Destructor:        p.disconnect,
		MaxSize:           cfg.MaxConns,
		MinSize:           cfg.MinConns,
		MinIdle:           cfg.MinIdleConns,
		MaxLifetime:       max(cfg.MaxConnLifetime, 0),
		MaxLifetimeJitter: cfg.MaxConnLifetimeJitter,
		MaxIdleTime:       max(cfg.MaxConnIdleTime, 0),
		HealthCheckPeriod: cfg.HealthCheckPeriod,
		CapacityError:     isServerFull,
		AcquireObserver:   cfg.AcquireObserver,
	}
	inner, err := pool.New(pc)
	if err != nil {
		return nil, err
	}
	p.p = inner
	return p, nil
}

// connect is the pool's Constructor.
func (p *Pool) connect(ctx context.Context) (*connResource, error) {
	cc := p.config.ConnConfig.Copy()
	if cc.ConnectTimeout <= 0 {
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	if p.config.BeforeConnect != nil {
		if err := p.config.BeforeConnect(ctx, cc); err != nil {
			return nil, err
		}
	}
	conn, err := connectConfig(ctx, cc)
	if err != nil {
		return nil, err
	}
	if p.config.AfterConnect != nil {
		if err := p.config.AfterConnect(ctx, conn); err != nil {
			p.closeConn(conn)
			return nil, err
		}
	}
	return &connResource{conn: conn}, nil
}

// isServerFull reports whether a connect error is the server refusing more connections:
// SQLSTATE 53300 (too_many_connections: max_connections, a role's or a database's CONNECTION
// LIMIT) or 53400 (configuration_limit_exceeded). The pool then caps itself at the connections
// it has instead of failing the caller (see pool.Config.CapacityError).
func isServerFull(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "53300" || pgErr.Code == "53400")
}

// connectConfig is pgx.ConnectConfig, turning its panic on a ConnConfig that did not come from
// pgx.ParseConfig into an error: bad input must not crash the pool's goroutine.
func connectConfig(ctx context.Context, cc *pgx.ConnConfig) (conn *pgx.Conn, err error) {
	defer func() {
		if r := recover(); r != nil {
			conn, err = nil, fmt.Errorf("%w: %v", ErrInvalidConfig, r)
		}
	}()
	return pgx.ConnectConfig(ctx, cc)
}

// disconnect is the pool's Destructor.
func (p *Pool) disconnect(cr *connResource) {
	if p.config.BeforeClose != nil {
		p.config.BeforeClose(cr.conn)
	}
	p.closeConn(cr.conn)
}

// closeConn closes conn. A healthy connection closes at once (Terminate, then the socket). One
// that pgconn already closed after an error or a canceled call is drained in the background
// until its server lets go, which takes up to 15s when the server does not answer; closeConn
// waits for that only cleanupGrace, so a dead peer does not hold a pool slot for 15s, and
// leaves the rest to Close, which waits for it.
func (p *Pool) closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	_ = conn.Close(ctx)
	cancel()
	done := conn.PgConn().CleanupDone()
	t := time.NewTimer(cleanupGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		p.cleanups.add(done)
	}
}

// Acquire returns a connection, waiting in strict arrival order if all MaxConns are in use.
// A connection idle for more than a second (see Config.ShouldPing) is pinged first, bounded
// by PingTimeout; one that fails the ping, or is found closed, is destroyed and another is
// tried, up to MaxConns+1 times in all. Config.PrepareConn runs last. The caller must Release
// the Conn.
//
// An AcquireTracer in ConnConfig.Tracer is called at the start and at the end, as in pgxpool.
//
// When the server cannot be reached, connection attempts back off (10 ms doubling to 250 ms,
// jittered, one at a time; at most about 100 a second for the whole pool): Acquire waits for
// the next attempt, never past ctx, and gets its error. When the server refuses a connection
// because it is full (SQLSTATE 53300 too_many_connections, 53400) while the pool has other
// connections, Acquire does not fail: the pool stops growing at what the server accepts
// (Stat.EffectiveMaxConns), the caller waits in line for a connection the pool has, and once a
// second the pool tries one more.
//
// Errors: ctx.Err() as-is when ctx ends first; ErrClosedPool; the connect error when a
// connection made for this call fails, or another fails while the pool has and makes no other
// connection; PrepareConn's error; after MaxConns+1 rejected connections, an error wrapping the
// last rejection's cause.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	t := p.acquireTracer
	if t == nil {
		return p.acquire(ctx)
	}
	ctx = t.TraceAcquireStart(ctx, p, TraceAcquireStartData{})
	c, err := p.acquire(ctx)
	var conn *pgx.Conn
	if c != nil {
		conn = c.Conn()
	}
	t.TraceAcquireEnd(ctx, p, TraceAcquireEndData{Conn: conn, Err: err})
	return c, err
}

// acquire is Acquire without the tracer.
func (p *Pool) acquire(ctx context.Context) (*Conn, error) {
	var lastErr error
	for range p.maxTries {
		res, err := p.p.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		cr := res.Value()
		if cr.conn.IsClosed() {
			res.Destroy()
			lastErr = errClosedWhileIdle
			continue
		}
		if idle := res.IdleDuration(); idle > 0 && p.shouldPing(ctx, ShouldPingParams{Conn: cr.conn, IdleDuration: idle}) {
			if err := p.ping(ctx, cr.conn); err != nil {
				// A failed or interrupted ping leaves the connection in an unknown state.
				res.Destroy()
				if ctxErr := ctx.Err(); ctxErr != nil {
					return nil, ctxErr
				}
				lastErr = err
				continue
			}
		}
		if prepare := p.prepareConn; prepare != nil {
			ok, err := prepare(ctx, cr.conn)
			switch {
			case ok && err != nil:
				res.ReleaseUnused()
				return nil, err
			case !ok:
				res.Destroy()
				if err != nil {
					return nil, err
				}
				lastErr = errPrepareRejected
				continue
			}
		}
		return cr.handle(p, res), nil
	}
	return nil, fmt.Errorf("pgpool: %d acquired connections in a row failed their check: %w", p.maxTries, lastErr)
}

// errClosedWhileIdle and errPrepareRejected stand in for the error of a connection found
// closed at acquire and of one PrepareConn rejected without an error.
var (
	errClosedWhileIdle = errors.New("pgpool: connection closed while idle")
	errPrepareRejected = errors.New("pgpool: PrepareConn rejected the connection")
)

// ping checks conn with an empty statement, bounded by ctx and the ping timeout.
func (p *Pool) ping(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, p.pingTimeout)
	defer cancel()
	return conn.Ping(ctx)
}

// AcquireFunc acquires a connection, calls f with it and releases it. It returns the acquire
// error or f's error.
func (p *Pool) AcquireFunc(ctx context.Context, f func(*Conn) error) error {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return f(c)
}

// Exec acquires a connection, executes sql with args on it and releases it.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	return c.Conn().Exec(ctx, sql, args...)
}

// Query acquires a connection and runs sql with args on it. The connection is released when
// the returned Rows are closed (or Next returns false), so the caller must Close them. On error
// the connection is already released, and the returned Rows report the error too.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return errRows{err}, err
	}
	rows, err := c.cr.conn.Query(ctx, sql, args...)
	if err != nil {
		if rows != nil {
			rows.Close()
		}
		c.Release()
		return errRows{err}, err
	}
	return c.cr.wrapRows(c, rows), nil
}

// QueryRow acquires a connection and runs sql with args on it. The connection is released by
// the returned Row's Scan, which must be called. An acquire error is returned by Scan.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := p.Acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return c.cr.wrapRow(c, c.cr.conn.QueryRow(ctx, sql, args...))
}

// SendBatch acquires a connection and sends b on it. The connection is released when the
// returned BatchResults are closed, which the caller must do, or, if b began a transaction
// (pgx.Batch.BeginTx), when the transaction from BatchResults.Tx is committed or rolled back.
// An acquire error is reported by every method of the BatchResults.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	c, err := p.Acquire(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return newBatchResults(c, c.cr.conn.SendBatch(ctx, b))
}

// Begin acquires a connection and starts a transaction on it with default options. The
// connection is released by the Tx's Commit or Rollback; ctx affects only the acquire and
// BEGIN.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is Begin with options.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.cr.conn.BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &Tx{tx: tx, c: c}, nil
}

// CopyFrom acquires a connection, runs COPY FROM on it (see pgx.Conn.CopyFrom) and releases
// it. It returns the number of rows copied.
func (p *Pool) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	return c.Conn().CopyFrom(ctx, tableName, columnNames, rowSrc)
}

// Ping acquires a connection, pings the server on it and releases it.
func (p *Pool) Ping(ctx context.Context) error {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return c.Ping(ctx)
}

// Stat returns a snapshot of the pool's statistics with pgxpool's Stat methods and meanings;
// PoolStat returns the generic pool.Stat.
func (p *Pool) Stat() *Stat { return &Stat{s: p.p.Stat()} }

// AcquireAllIdle acquires every idle connection at once and returns them (an empty slice when
// there is none); release each as usual. As in pgxpool it is meant for health checks and
// keep-alive work, does not count in Stat's acquire counters, and runs PrepareConn (or
// BeforeAcquire) on each connection, destroying those it rejects or fails. It neither pings
// nor waits: idle connections exist only while no Acquire waits, so it never takes one from a
// waiter. Connections past MaxConnLifetime are closed instead of returned.
func (p *Pool) AcquireAllIdle(ctx context.Context) []*Conn {
	idle := p.p.AcquireAllIdle()
	conns := make([]*Conn, 0, len(idle))
	for _, res := range idle {
		cr := res.Value()
		if prepare := p.prepareConn; prepare != nil {
			if ok, err := prepare(ctx, cr.conn); !ok || err != nil {
				res.Destroy()
				continue
			}
		}
		conns = append(conns, cr.handle(p, res))
	}
	return conns
}

// Config returns a copy of the pool's configuration.
func (p *Pool) Config() *Config { return p.config.Copy() }

// Reset closes every idle connection and marks the held ones to be closed when released, while
// the pool stays open. Use it after an event that breaks every connection (a failover).
func (p *Pool) Reset() { p.p.Reset() }

// Close closes the pool: blocked Acquire calls return ErrClosedPool at once, idle connections
// are closed, and held ones are closed when released. It returns when every connection is
// closed (including background closes of broken connections, at most 15s each), so it waits
// for holders; Shutdown bounds that wait.
func (p *Pool) Close() { _ = p.Shutdown(context.Background()) }

// Shutdown is Close bounded by ctx: it returns ctx.Err() if connections are still held, or
// still closing, when ctx ends (they are closed when released).
func (p *Pool) Shutdown(ctx context.Context) error {
	if err := p.p.Shutdown(ctx); err != nil {
		return err
	}
	return p.cleanups.wait(ctx)
}
