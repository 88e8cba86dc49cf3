package pgpool

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// AcquireTracer traces Pool.Acquire (and so every Pool helper, which acquires through it). A
// ConnConfig.Tracer that implements it is called as pgxpool calls its own AcquireTracer. A
// tracer written for pgxpool (pgx's tracelog.TraceLog, OpenTelemetry wrappers) works too:
// see Config.ConnConfig.
type AcquireTracer interface {
	// TraceAcquireStart is called at the beginning of Acquire. The returned context is used
	// for the rest of the call and passed to TraceAcquireEnd.
	TraceAcquireStart(ctx context.Context, pool *Pool, data TraceAcquireStartData) context.Context
	// TraceAcquireEnd is called when Acquire returns, with the connection or the error.
	TraceAcquireEnd(ctx context.Context, pool *Pool, data TraceAcquireEndData)
}

// TraceAcquireStartData is what TraceAcquireStart gets: nothing yet, as in pgxpool.
type TraceAcquireStartData struct{}

// TraceAcquireEndData is what TraceAcquireEnd gets: the acquired connection, or nil and the
// error Acquire returns.
type TraceAcquireEndData struct {
	Conn *pgx.Conn
	Err  error
}

// ReleaseTracer traces Conn.Release. A ConnConfig.Tracer that implements it is called at the
// beginning of the first Release of each acquired Conn, before the connection is checked, as
// pgxpool does; later Release calls, and Hijack, are not traced.
type ReleaseTracer interface {
	// TraceRelease is called at the beginning of Release.
	TraceRelease(pool *Pool, data TraceReleaseData)
}

// TraceReleaseData is what TraceRelease gets: the connection being released.
type TraceReleaseData struct {
	Conn *pgx.Conn
}
