package bench

import (
	"context"
	"database/sql/driver"
	"errors"
)

// nopConnector is a database/sql connector for a driver that does nothing: opening a
// connection costs one small allocation and no I/O, so the pool benchmarks measure
// database/sql's pooling and nothing else.
type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) { return &nopConn{}, nil }
func (nopConnector) Driver() driver.Driver                        { return nopDriver{} }

type nopDriver struct{}

func (nopDriver) Open(string) (driver.Conn, error) { return &nopConn{}, nil }

var errNopUnsupported = errors.New("bench: the nop driver runs no statements")

// nopConn is a connection that is always valid and supports no statements.
type nopConn struct{}

func (*nopConn) Prepare(string) (driver.Stmt, error) { return nil, errNopUnsupported }
func (*nopConn) Close() error                        { return nil }
func (*nopConn) Begin() (driver.Tx, error)           { return nil, errNopUnsupported }
func (*nopConn) IsValid() bool                       { return true }
func (*nopConn) ResetSession(context.Context) error  { return nil }
