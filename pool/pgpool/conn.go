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
// Config.AfterRelease, if set, runs first, in a goroutine. Calls after the first are no-ops.
func (c *Conn) Release() {
	res := c.res.Swap(nil)
	if res == nil {
		return
	}
	conn := c.cr.conn
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

// Query runs sql with args on the connection. Unlike pgx.Conn.Query, the returned Rows
// release c when they are closed (or Next returns false), and an error releases c at once.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
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

// QueryRow runs sql with args on the connection; the returned Row's Scan releases c.
func (c *Conn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return c.cr.wrapRow(c, c.cr.conn.QueryRow(ctx, sql, args...))
}

// SendBatch sends b on the connection; closing the returned BatchResults releases c, unless
// b began a transaction (pgx.Batch.BeginTx): then the Commit or Rollback of BatchResults.Tx
// does.
func (c *Conn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return newBatchResults(c, c.cr.conn.SendBatch(ctx, b))
}

// Begin starts a transaction; its Commit or Rollback releases c, and so does a failed BEGIN.
func (c *Conn) Begin(ctx context.Context) (pgx.Tx, error) { return c.BeginTx(ctx, pgx.TxOptions{}) }

// BeginTx is Begin with options.
func (c *Conn) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := c.cr.conn.BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &poolTx{tx: tx, c: c}, nil
}

// CopyFrom runs COPY FROM on the connection (pgx.Conn.CopyFrom).
func (c *Conn) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	return c.cr.conn.CopyFrom(ctx, tableName, columnNames, rowSrc)
}

// Ping checks the connection with an empty statement (pgx.Conn.Ping).
func (c *Conn) Ping(ctx context.Context) error { return c.cr.conn.Ping(ctx) }
