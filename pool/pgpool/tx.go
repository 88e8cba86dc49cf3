package pgpool

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// poolTx is pgx.Tx that releases its connection when the transaction ends. Release then
// destroys the connection if the transaction did not end cleanly (TxStatus is not 'I').
type poolTx struct {
	tx pgx.Tx
	c  *Conn
}

func (t *poolTx) Begin(ctx context.Context) (pgx.Tx, error) { return t.tx.Begin(ctx) }

func (t *poolTx) Commit(ctx context.Context) error {
	err := t.tx.Commit(ctx)
	t.c.Release()
	return err
}

func (t *poolTx) Rollback(ctx context.Context) error {
	err := t.tx.Rollback(ctx)
	t.c.Release()
	return err
}

func (t *poolTx) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	return t.tx.CopyFrom(ctx, tableName, columnNames, rowSrc)
}

func (t *poolTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.tx.SendBatch(ctx, b)
}

func (t *poolTx) LargeObjects() pgx.LargeObjects { return t.tx.LargeObjects() }

func (t *poolTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.tx.Prepare(ctx, name, sql)
}

func (t *poolTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.tx.Exec(ctx, sql, args...)
}

func (t *poolTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.tx.Query(ctx, sql, args...)
}

func (t *poolTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.tx.QueryRow(ctx, sql, args...)
}

func (t *poolTx) Conn() *pgx.Conn { return t.tx.Conn() }
