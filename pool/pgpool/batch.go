package pgpool

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// poolBatchResults is pgx.BatchResults that releases its connection when closed, or, when the
// batch began a transaction (pgx.Batch.BeginTx), when that transaction ends.
type poolBatchResults struct {
	br pgx.BatchResults
	c  *Conn // released by Close; nil when tx owns the connection
	tx *Tx   // the batch's transaction, or nil
}

func newBatchResults(c *Conn, br pgx.BatchResults) *poolBatchResults {
	if tx := br.Tx(); tx != nil {
		return &poolBatchResults{br: br, tx: &Tx{tx: tx, c: c}}
	}
	return &poolBatchResults{br: br, c: c}
}

func (b *poolBatchResults) Exec() (pgconn.CommandTag, error) { return b.br.Exec() }
func (b *poolBatchResults) Query() (pgx.Rows, error)         { return b.br.Query() }
func (b *poolBatchResults) QueryRow() pgx.Row                { return b.br.QueryRow() }

func (b *poolBatchResults) Close() error {
	err := b.br.Close()
	if b.c != nil {
		b.c.Release()
	}
	return err
}

func (b *poolBatchResults) Tx() pgx.Tx {
	if b.tx == nil {
		return nil // a typed nil would not compare equal to nil
	}
	return b.tx
}
