package pgpool

import (
	"database/sql/driver"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// binaryResults asks pgx for binary results for the types sqlRows decodes into driver values,
// and (being a QueryResultFormatsByOID) text for all others.
var binaryResults = pgx.QueryResultFormatsByOID{
	pgtype.Int2OID: pgx.BinaryFormatCode, pgtype.Int4OID: pgx.BinaryFormatCode, pgtype.Int8OID: pgx.BinaryFormatCode,
	pgtype.Float4OID: pgx.BinaryFormatCode, pgtype.Float8OID: pgx.BinaryFormatCode,
	pgtype.BoolOID: pgx.BinaryFormatCode, pgtype.ByteaOID: pgx.BinaryFormatCode,
	pgtype.DateOID: pgx.BinaryFormatCode, pgtype.TimestampOID: pgx.BinaryFormatCode, pgtype.TimestamptzOID: pgx.BinaryFormatCode,
}

// sqlRows is pgx.Rows as driver.Rows.
type sqlRows struct {
	rows pgx.Rows
	cols []string
}

func newSQLRows(rows pgx.Rows) *sqlRows {
	fds := rows.FieldDescriptions()
	cols := make([]string, len(fds))
	for i, fd := range fds {
		cols[i] = fd.Name
	}
	return &sqlRows{rows: rows, cols: cols}
}

func (r *sqlRows) Columns() []string { return r.cols }

func (r *sqlRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

// Next decodes the next row into dest: the types named in binaryResults through pgx's codecs
// into int64, float64, bool, []byte or time.Time, the rest as their text form.
func (r *sqlRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	m := r.rows.TypeMap()
	fds := r.rows.FieldDescriptions()
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		fd := fds[i]
		var err error
		switch fd.DataTypeOID {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			var v int64
			err = m.Scan(fd.DataTypeOID, fd.Format, raw, &v)
			dest[i] = v
		case pgtype.Float4OID, pgtype.Float8OID:
			var v float64
			err = m.Scan(fd.DataTypeOID, fd.Format, raw, &v)
			dest[i] = v
		case pgtype.BoolOID:
			var v bool
			err = m.Scan(fd.DataTypeOID, fd.Format, raw, &v)
			dest[i] = v
		case pgtype.ByteaOID:
			var v []byte
			err = m.Scan(fd.DataTypeOID, fd.Format, raw, &v)
			dest[i] = v
		case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
			var v time.Time
			err = m.Scan(fd.DataTypeOID, fd.Format, raw, &v)
			dest[i] = v
		default:
			if fd.Format == pgx.TextFormatCode {
				dest[i] = string(raw)
				continue
			}
			// Not asked for in binary, but a prepared statement may have fixed the format.
			var v string
			err = m.Scan(fd.DataTypeOID, fd.Format, raw, &v)
			dest[i] = v
		}
		if err != nil {
			return fmt.Errorf("pgpool: column %q: %w", fd.Name, err)
		}
	}
	return nil
}
