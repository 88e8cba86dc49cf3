package pgpool

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/muxpool/muxpool/pool"
)

// Conn is one acquired connection. Give it back with Release (or take it out of the pool with
// Hijack); after that, drop it. Each Acquire returns a new Conn, so a stray second Release is a
// no-op and never gives back another caller's connection.
type Conn struct {
	res atomic.Pointer[pool.Resource[*connResource]]
	cr  *connResource
	p   *Pool
}

// handle returns a fresh Conn for res, carved from cr's chunk.
func (cr *connResource) handle(p *Pool, res *pool.Resource[*connResource]) *Conn {
	if len(cr.conns) == 0 {
		cr.conns = make([]Conn, handleChunk)
	}
	c := &cr.conns[0]
	cr.conns = cr.conns[1:]
	c.cr, c.p = cr, p
	c.res.Store(res)
	return c
}

// Conn returns the underlying pgx connection. It must not be used after Release.
func (c *Conn) Conn() *pgx.Conn { return c.cr.conn }

// Release gives the connection back to the pool. A connection that is closed, still busy (a
// query's results unread), inside a transaction or in a failed one (TxStatus other than 'I'),
// or past its lifetime is destroyed instead, and the pool makes a new one for the next caller.
// Config.AfterRelease, if set, runs first, in a goroutine. A ReleaseTracer in
// ConnConfig.Tracer is called before any of this, as in pgxpool. Calls after the first are
// no-ops.
func (c *Conn) Release() {
	res := c.res.Swap(nil)
	if res == nil {
		return
	}
	conn := c.cr.conn
	if t := c.p.releaseTracer; t != nil {
		t.TraceRelease(c.p, TraceReleaseData{Conn: conn})
	}
	if conn.IsClosed() || conn.PgConn().IsBusy() || conn.PgConn().TxStatus() != 'I' {
		res.Destroy()
		return
	}
	if after := c.p.config.AfterRelease; after != nil {
		// Like pgxpool, off the caller's path: the hook may do I/O (DISCARD ALL, say).
		go func() {
			if after(conn) {
				res.Release()
			} else {
				res.Destroy()
			}
		}()
		return
	}
	// The pool destroys it here if it has outlived MaxConnLifetime.
	res.Release()
}

// Hijack takes the connection out of the pool: the caller owns it and must close it. It
// returns nil if the Conn was already released or hijacked.
func (c *Conn) Hijack() *pgx.Conn {
	res := c.res.Swap(nil)
	if res == nil {
		return nil
	}
	res.Hijack()
	return c.cr.conn
}

// Exec runs sql with args on the connection (pgx.Conn.Exec).
func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return c.cr.conn.Exec(ctx, sql, args...)
}

// Query runs sql with args on the connection (pgx.Conn.Query). Closing the Rows does not
// release c (as in pgxpool); only Pool.Query's Rows do that.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return c.cr.conn.Query(ctx, sql, args...)
}

// QueryRow runs sql with args on the connection (pgx.Conn.QueryRow).
func (c *Conn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return c.cr.conn.QueryRow(ctx, sql, args...)
}

// SendBatch sends b on the connection (pgx.Conn.SendBatch).
func (c *Conn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return c.cr.conn.SendBatch(ctx, b)
}

// Begin starts a transaction on the connection (pgx.Conn.Begin). Ending it does not release c.
func (c *Conn) Begin(ctx context.Context) (pgx.Tx, error) { return c.cr.conn.Begin(ctx) }

// BeginTx is Begin with options (pgx.Conn.BeginTx).
func (c *Conn) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return c.cr.conn.BeginTx(ctx, opts)
}

// CopyFrom runs COPY FROM on the connection (pgx.Conn.CopyFrom).
func (c *Conn) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	return c.cr.conn.CopyFrom(ctx, tableName, columnNames, rowSrc)
}

// Ping checks the connection with an empty statement (pgx.Conn.Ping).
func (c *Conn) Ping(ctx context.Context) error { return c.cr.conn.Ping(ctx) }
