package pgpool

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// poolRows is pgx.Rows that releases its connection when closed.
type poolRows struct {
	rows pgx.Rows
	c    *Conn
}

func (cr *connResource) wrapRows(c *Conn, rows pgx.Rows) *poolRows {
	if len(cr.rows) == 0 {
		cr.rows = make([]poolRows, handleChunk)
	}
	r := &cr.rows[0]
	cr.rows = cr.rows[1:]
	r.rows, r.c = rows, c
	return r
}

func (r *poolRows) Close() {
	r.rows.Close()
	r.c.Release()
}

func (r *poolRows) Err() error                                   { return r.rows.Err() }
func (r *poolRows) CommandTag() pgconn.CommandTag                { return r.rows.CommandTag() }
func (r *poolRows) FieldDescriptions() []pgconn.FieldDescription { return r.rows.FieldDescriptions() }
func (r *poolRows) Scan(dest ...any) error                       { return r.rows.Scan(dest...) }
func (r *poolRows) Values() ([]any, error)                       { return r.rows.Values() }
func (r *poolRows) RawValues() [][]byte                          { return r.rows.RawValues() }
func (r *poolRows) Conn() *pgx.Conn                              { return r.rows.Conn() }
func (r *poolRows) TypeMap() *pgtype.Map                         { return r.rows.TypeMap() }

// Next advances to the next row; at the end (or on error) pgx closes the rows, and the
// connection goes back to the pool right away.
func (r *poolRows) Next() bool {
	if r.rows.Next() {
		return true
	}
	r.Close()
	return false
}

// poolRow is pgx.Row that releases its connection in Scan.
type poolRow struct {
	row pgx.Row
	c   *Conn
}

func (cr *connResource) wrapRow(c *Conn, row pgx.Row) *poolRow {
	if len(cr.row) == 0 {
		cr.row = make([]poolRow, handleChunk)
	}
	r := &cr.row[0]
	cr.row = cr.row[1:]
	r.row, r.c = row, c
	return r
}

func (r *poolRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	r.c.Release()
	return err
}

// errRows is the Rows of a query that failed before it ran (no connection, or the query's own
// error): it has no rows and reports err.
type errRows struct{ err error }

func (errRows) Close()                                       {}
func (e errRows) Err() error                                 { return e.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (e errRows) Scan(...any) error                          { return e.err }
func (e errRows) Values() ([]any, error)                     { return nil, e.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

// errRow is the Row of a query that could not get a connection.
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }
