package pgpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrNamedArgs is returned by statements run through OpenDB's *sql.DB with sql.Named
// arguments: PostgreSQL's placeholders are positional ($1, $2, ...).
var ErrNamedArgs = errors.New("pgpool: database/sql named arguments are not supported; use $1, $2, ...")

// ErrOpenByName is returned by the database/sql driver's Open: the driver exists only behind
// OpenDB, which lends it the pool's connections; it has no name to sql.Open by.
var ErrOpenByName = errors.New("pgpool: the database/sql driver is reached only through pgpool.OpenDB")

// OpenDB returns a *sql.DB whose connections are p's, for libraries and migration tools that
// want database/sql (pgx's stdlib.OpenDBFromPool does the same for pgxpool).
//
// Each database/sql connection is one p.Acquire, and closing it is that Conn's Release, with
// its checks (a connection left in a transaction is destroyed, and so on). The *sql.DB keeps no
// idle connections of its own (SetMaxIdleConns(0); do not raise it): an idle *sql.DB holds
// none of p's connections, a sql.Conn or sql.Tx holds one for its life, and p.MaxConns bounds
// them all, in p's arrival order. Closing the *sql.DB does not close p; close p after it.
//
// Statements run with pgx's exec mode and type conversions (ConnConfig.DefaultQueryExecMode),
// so the connection string's default_query_exec_mode applies here too. Arguments go to pgx as
// they are (any type pgx encodes); sql.Named arguments fail with ErrNamedArgs. Result columns
// come back as database/sql's driver values: integers as int64, float4/float8 as float64,
// bool, bytea as []byte, date and timestamps as time.Time, NULL as nil, and every other type
// as its PostgreSQL text form (string): numeric, uuid, json, arrays... Prepare does not
// prepare on the server (so it works through PgBouncer): a *sql.Stmt runs its SQL as given
// each time. LastInsertId is not supported (use RETURNING).
func OpenDB(p *Pool) *sql.DB {
	db := sql.OpenDB(&sqlConnector{p: p})
	db.SetMaxIdleConns(0)
	return db
}

// sqlConnector is the driver.Connector OpenDB uses: each Connect is one Acquire.
type sqlConnector struct{ p *Pool }

func (c *sqlConnector) Connect(ctx context.Context) (driver.Conn, error) {
	pc, err := c.p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &sqlConn{pc: pc, conn: pc.Conn()}, nil
}

func (c *sqlConnector) Driver() driver.Driver { return sqlDriver{} }

// sqlDriver is the driver.Driver a connector must name; it cannot open by name.
type sqlDriver struct{}

func (sqlDriver) Open(string) (driver.Conn, error) { return nil, ErrOpenByName }

// sqlConn is one acquired pool connection seen as a database/sql driver connection. database/sql
// uses a driver connection from one goroutine at a time.
type sqlConn struct {
	pc   *Conn
	conn *pgx.Conn
}

var (
	_ driver.Conn               = (*sqlConn)(nil)
	_ driver.ConnBeginTx        = (*sqlConn)(nil)
	_ driver.ConnPrepareContext = (*sqlConn)(nil)
	_ driver.ExecerContext      = (*sqlConn)(nil)
	_ driver.QueryerContext     = (*sqlConn)(nil)
	_ driver.Pinger             = (*sqlConn)(nil)
	_ driver.NamedValueChecker  = (*sqlConn)(nil)
	_ driver.SessionResetter    = (*sqlConn)(nil)
	_ driver.Validator          = (*sqlConn)(nil)
)

// Close gives the connection back to the pool (Conn.Release, with its checks).
func (c *sqlConn) Close() error {
	c.pc.Release()
	return nil
}

func (c *sqlConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *sqlConn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &sqlStmt{c: c, query: query}, nil
}

func (c *sqlConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// isoLevels maps database/sql isolation levels to PostgreSQL's; the ones PostgreSQL lacks are
// missing.
var isoLevels = map[sql.IsolationLevel]pgx.TxIsoLevel{
	sql.LevelDefault:         "",
	sql.LevelReadUncommitted: pgx.ReadUncommitted,
	sql.LevelReadCommitted:   pgx.ReadCommitted,
	sql.LevelRepeatableRead:  pgx.RepeatableRead,
	sql.LevelSnapshot:        pgx.RepeatableRead,
	sql.LevelSerializable:    pgx.Serializable,
}

func (c *sqlConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	iso, ok := isoLevels[sql.IsolationLevel(opts.Isolation)]
	if !ok {
		return nil, fmt.Errorf("pgpool: isolation level %v is not supported by PostgreSQL", sql.IsolationLevel(opts.Isolation))
	}
	txOpts := pgx.TxOptions{IsoLevel: iso}
	if opts.ReadOnly {
		txOpts.AccessMode = pgx.ReadOnly
	}
	tx, err := c.conn.BeginTx(ctx, txOpts)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx}, nil
}

func (c *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	a, err := pgxArgs(args)
	if err != nil {
		return nil, err
	}
	tag, err := c.conn.Exec(ctx, query, a...)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (c *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	a, err := pgxArgs(args)
	if err != nil {
		return nil, err
	}
	// Formats by OID: binary for the types decoded to driver values below, text for the rest,
	// whose text form is the value handed to database/sql.
	rows, err := c.conn.Query(ctx, query, append([]any{binaryResults}, a...)...)
	if err != nil {
		return nil, err
	}
	return newSQLRows(rows), nil
}

func (c *sqlConn) Ping(ctx context.Context) error {
	if c.conn.IsClosed() {
		return driver.ErrBadConn
	}
	return c.conn.Ping(ctx)
}

// CheckNamedValue lets every argument through to pgx, which encodes far more types than
// database/sql's default conversion, except named ones.
func (c *sqlConn) CheckNamedValue(nv *driver.NamedValue) error {
	if nv.Name != "" {
		return ErrNamedArgs
	}
	return nil
}

// ResetSession refuses a connection that broke while database/sql held it.
func (c *sqlConn) ResetSession(context.Context) error {
	if !c.IsValid() {
		return driver.ErrBadConn
	}
	return nil
}

// IsValid reports whether the connection is open, idle and outside a transaction.
func (c *sqlConn) IsValid() bool {
	pg := c.conn.PgConn()
	return !c.conn.IsClosed() && !pg.IsBusy() && pg.TxStatus() == 'I'
}

// pgxArgs turns database/sql arguments into pgx's.
func pgxArgs(args []driver.NamedValue) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, ErrNamedArgs
		}
		out[i] = a.Value
	}
	return out, nil
}

// sqlTx is a pgx transaction as a driver.Tx. database/sql gives no context to Commit or
// Rollback.
type sqlTx struct{ tx pgx.Tx }

func (t sqlTx) Commit() error   { return t.tx.Commit(context.Background()) }
func (t sqlTx) Rollback() error { return t.tx.Rollback(context.Background()) }

// sqlStmt is a "prepared" statement that is only its SQL: it runs through the connection's
// ExecContext and QueryContext each time, so nothing is prepared on the server by name.
type sqlStmt struct {
	c     *sqlConn
	query string
}

var (
	_ driver.StmtExecContext  = (*sqlStmt)(nil)
	_ driver.StmtQueryContext = (*sqlStmt)(nil)
)

func (s *sqlStmt) Close() error  { return nil }
func (s *sqlStmt) NumInput() int { return -1 }

func (s *sqlStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), namedValues(args))
}

func (s *sqlStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), namedValues(args))
}

func (s *sqlStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.query, args)
}

func (s *sqlStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, args)
}

func namedValues(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}
