package pgpool

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tx is the pgx.Tx that Pool.Begin, Pool.BeginTx and a transaction-beginning Pool.SendBatch
// return (pgxpool's Tx): it releases its connection when the transaction ends with Commit or
// Rollback. Release then destroys the connection if the transaction did not end cleanly
// (TxStatus is not 'I').
type Tx struct {
	tx pgx.Tx
	c  *Conn
}

// Begin starts a pseudo nested transaction (a savepoint) on the connection (pgx.Tx.Begin).
func (t *Tx) Begin(ctx context.Context) (pgx.Tx, error) { return t.tx.Begin(ctx) }

// Commit commits the transaction and releases the connection, whatever the outcome.
func (t *Tx) Commit(ctx context.Context) error {
	err := t.tx.Commit(ctx)
	t.c.Release()
	return err
}

// Rollback rolls the transaction back and releases the connection, whatever the outcome. On
// a transaction already ended it returns pgx.ErrTxClosed and does nothing else.
func (t *Tx) Rollback(ctx context.Context) error {
	err := t.tx.Rollback(ctx)
	t.c.Release()
	return err
}

// CopyFrom runs COPY FROM inside the transaction (pgx.Tx.CopyFrom).
func (t *Tx) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	return t.tx.CopyFrom(ctx, tableName, columnNames, rowSrc)
}

// SendBatch sends b inside the transaction (pgx.Tx.SendBatch).
func (t *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.tx.SendBatch(ctx, b)
}

// LargeObjects returns the transaction's large-object API (pgx.Tx.LargeObjects).
func (t *Tx) LargeObjects() pgx.LargeObjects { return t.tx.LargeObjects() }

// Prepare prepares a statement on the connection (pgx.Tx.Prepare).
func (t *Tx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.tx.Prepare(ctx, name, sql)
}

// Exec runs sql inside the transaction (pgx.Tx.Exec).
func (t *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.tx.Exec(ctx, sql, args...)
}

// Query runs sql inside the transaction (pgx.Tx.Query).
func (t *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.tx.Query(ctx, sql, args...)
}

// QueryRow runs sql inside the transaction (pgx.Tx.QueryRow).
func (t *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.tx.QueryRow(ctx, sql, args...)
}

// Conn returns the transaction's pgx connection (pgx.Tx.Conn).
func (t *Tx) Conn() *pgx.Conn { return t.tx.Conn() }
