// Package pgpool is a PostgreSQL connection pool for pgx v5 built on the bounded, strictly
// FIFO pool of package pool, and a drop-in for pgxpool: the same Config, pool_* keys, methods,
// hooks, tracers and Stat, with pgx's types.
//
// On top of pgxpool it closes better (Close wakes blocked Acquire calls at once; Shutdown
// bounds the wait for holders), checks every returned connection (closed, busy, inside or
// after a failed transaction, or past its lifetime: destroyed, and the next Acquire gets a
// clean one without waiting for a health check), pings a connection idle for more than a
// second within a bounded time before reuse, backs off while the server is unreachable, and
// absorbs the server's connection limit (SQLSTATE 53300/53400) instead of failing callers.
// OpenDB gives database/sql on the same connections.
//
// # Migrating from pgxpool
//
// Replace the import path github.com/jackc/pgx/v5/pgxpool with
// github.com/muxpool/muxpool/pool/pgpool and the package name pgxpool with pgpool, and pgx's
// stdlib.OpenDBFromPool(p) with pgpool.OpenDB(p); nothing else has to change. Identical:
//
//   - ParseConfig: every connection-string key with its default and range (pool_max_conns,
//     pool_min_conns, pool_min_idle_conns, pool_max_conn_lifetime,
//     pool_max_conn_lifetime_jitter, pool_max_conn_idle_time, pool_health_check_period,
//     pool_ping_timeout), every Config field (BeforeAcquire included, deprecated for
//     PrepareConn as in pgxpool), Config.Copy and Config.ConnString.
//   - Pool: New, NewWithConfig, Acquire, AcquireFunc, AcquireAllIdle, Exec, Query, QueryRow,
//     SendBatch, Begin, BeginTx, CopyFrom, Ping, Stat, Config, Reset, Close; Conn and its
//     methods (Release may be called again, as in pgxpool); Tx; ShouldPingParams.
//   - Stat returns a *Stat with pgxpool's methods and meanings (TotalConns, IdleConns,
//     AcquiredConns, ConstructingConns, MaxConns, AcquireCount, AcquireDuration,
//     EmptyAcquireCount, EmptyAcquireWaitTime, CanceledAcquireCount, NewConnsCount,
//     MaxLifetimeDestroyCount, MaxIdleDestroyCount).
//   - AcquireTracer and ReleaseTracer, found in ConnConfig.Tracer and called where pgxpool
//     calls them: TraceAcquireStart and TraceAcquireEnd around Acquire (and every helper, which
//     acquires through it), TraceRelease at the start of a Conn's first Release.
//   - Behaviour: waiters are served in arrival order; a connection given back closed, busy or
//     with a transaction status other than idle is destroyed; MaxConnLifetime (with its jitter,
//     drawn once per connection) is enforced at acquire, at release and by the health check; a
//     connection idle for more than a second is pinged before use (ShouldPing decides); the
//     four PrepareConn outcomes; AfterRelease runs in its own goroutine; a connection started
//     for an Acquire whose ctx ends is finished and kept; ConnectTimeout defaults to 2 minutes.
//
// Different on purpose, and why:
//
//   - Close fails every blocked Acquire at once with ErrClosedPool (pgxpool leaves them
//     blocked until someone releases), and Shutdown(ctx) bounds the wait for held connections:
//     a shutting-down program should not hang on its own pool.
//   - PingTimeout zero means DefaultPingTimeout (5 s), not "the caller's ctx only", and a ping
//     the caller's ctx interrupts destroys the connection at once instead of finishing in the
//     background for up to a minute: a silently dead server costs a bounded time, and a
//     connection in an unknown state is never reused.
//   - Connection failures back off (10 ms doubling to 250 ms, jittered, one attempt at a time
//     until one succeeds), where pgxpool dials once per Acquire: callers retrying in a loop
//     during a server restart made thousands of attempts a second. A caller still gets the
//     connect error (or its ctx's) by its deadline.
//   - A server that refuses more connections (53300 too_many_connections, 53400) while the pool
//     has others does not fail the caller: the pool stops growing at what the server accepts,
//     the caller waits in line for a connection the pool has, and once a second the pool tries
//     one more. Stat.EffectiveMaxConns, which pgxpool lacks, shows the bound in force.
//   - MinConns is rebuilt right after a connection is destroyed, not on the next health check.
//   - NewWithConfig accepts a Config built by hand (pgxpool panics unless it came from
//     ParseConfig) and reports a bad one with an error matching ErrInvalidConfig.
//   - Conn.Hijack on a released Conn returns nil (pgxpool panics).
//   - A tracer written for pgxpool (its methods take *pgxpool.Pool, as pgx's tracelog and the
//     OpenTelemetry wrappers do) is recognized by its methods' shape and called with pgxpool's
//     data types and a nil *pgxpool.Pool: pgpool does not import pgxpool, so that a pgpool
//     program does not build puddle in. A tracer that reads that pool (some OpenTelemetry
//     wrappers read pool.Config() for span attributes) panics; pgpool recovers, and that call
//     goes untraced.
//   - Stat's snapshot is taken in O(1) under the pool's lock; PoolStat returns the generic
//     pool.Stat, with the numbers pgxpool has no method for (waiters, connections being
//     closed, failed connects, hijacks, the wait time alone).
//   - OpenDB(p) replaces pgx's stdlib.OpenDBFromPool, which takes only a *pgxpool.Pool.
//   - Config.AcquireObserver, which pgxpool lacks, feeds each acquire's duration to a latency
//     histogram (package promstats has one).
//
// # PgBouncer
//
// Through PgBouncer in transaction pooling mode (how a server's connections are shared by many
// application instances) a client connection's consecutive transactions may run on different
// server connections, so pgx's default exec mode, which prepares named statements once per
// connection and reuses them, fails ("prepared statement already exists", 42P05; "does not
// exist", 26000). The connection string alone fixes it:
//
//	postgres://app@pgbouncer:6432/app?default_query_exec_mode=cache_describe&pool_max_conns=8
//
// cache_describe (recommended) describes each statement once per client connection, through
// the unnamed statement in its own round trip, and then runs it in one round trip with binary
// parameters and results, so values are encoded and decoded exactly as in the default mode and
// nothing named outlives a transaction. Its caveat (pgx's): a cached description goes stale if
// the schema or search_path changes under a running program; if that happens, use exec (one
// round trip, text format, parameter types taken from the Go values) or simple_protocol
// (client-side interpolation). Do not use describe_exec: its two round trips may land on two
// server connections. The pool's own pings (an empty simple query) and release checks (the
// transaction status PgBouncer forwards) work through PgBouncer, and pool_max_conns may exceed
// PgBouncer's default_pool_size: PgBouncer queues the excess. Session state (SET, temporary
// tables, advisory locks, LISTEN) does not carry across transactions there, with any client.
// These claims are tested against PgBouncer 1.18 in transaction mode; PgBouncer 1.21 and later
// can also track named prepared statements (max_prepared_statements), which is not tested here.
package pgpool
