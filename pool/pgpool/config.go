package pgpool

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/muxpool/muxpool/pool"
)

// Defaults of the pool keys, the same as pgxpool's.
const (
	// DefaultMaxConns is the smallest default for MaxConns; the default is
	// max(DefaultMaxConns, runtime.NumCPU()).
	DefaultMaxConns = int32(4)
	// DefaultMaxConnLifetime is the default MaxConnLifetime.
	DefaultMaxConnLifetime = time.Hour
	// DefaultMaxConnIdleTime is the default MaxConnIdleTime.
	DefaultMaxConnIdleTime = 30 * time.Minute
	// DefaultHealthCheckPeriod is the default HealthCheckPeriod.
	DefaultHealthCheckPeriod = time.Minute
	// DefaultPingTimeout bounds the ping of an idle connection when Config.PingTimeout is zero.
	DefaultPingTimeout = 5 * time.Second
	// DefaultConnectTimeout is used for ConnConfig.ConnectTimeout when the connection string
	// sets none: a construction outlives the Acquire that started it (see pool.Config), so it
	// must not be able to hang for ever.
	DefaultConnectTimeout = 2 * time.Minute
)

// ErrInvalidConfig is wrapped by every error NewWithConfig returns for a bad Config; it is
// pool.ErrInvalidConfig, so errors.Is works with either name.
var ErrInvalidConfig = pool.ErrInvalidConfig

// Config is the configuration of a Pool. Obtain one from ParseConfig and adjust its fields; a
// Config built by hand needs at least ConnConfig (from pgx.ParseConfig) and MaxConns >= 1.
type Config struct {
	// ConnConfig is how each connection is made. It must come from pgx.ParseConfig. If its
	// Tracer implements AcquireTracer or ReleaseTracer, the pool calls it; a tracer made for
	// pgxpool (its methods take *pgxpool.Pool and pgxpool's Trace*Data) is recognized too and
	// called with pgxpool's data types and a nil *pgxpool.Pool (a panic in it is recovered).
	ConnConfig *pgx.ConnConfig

	// BeforeConnect, if set, is called before each new connection with a copy of ConnConfig
	// that it may modify (to rotate a password, say). An error fails that construction.
	BeforeConnect func(context.Context, *pgx.ConnConfig) error

	// AfterConnect, if set, is called after each new connection is established. An error
	// closes the connection and fails that construction.
	AfterConnect func(context.Context, *pgx.Conn) error

	// ShouldPing, if set, decides whether an acquired connection is pinged before it is handed
	// out. The default pings connections that sat idle for more than one second, as pgxpool
	// does. A connection whose ping fails is destroyed and Acquire tries another.
	ShouldPing func(context.Context, ShouldPingParams) bool

	// BeforeAcquire, if set, is called on every acquired connection before it is handed out;
	// false destroys the connection and Acquire tries another.
	//
	// Deprecated: use PrepareConn, as in pgxpool. When both are set, PrepareConn is used and
	// BeforeAcquire is ignored.
	BeforeAcquire func(context.Context, *pgx.Conn) bool

	// PrepareConn, if set, is called on every acquired connection before it is handed out
	// (after the ping). Its results mean: (true, nil) use the connection; (true, err) give it
	// back to the pool and fail the Acquire with err; (false, err) destroy it and fail with
	// err; (false, nil) destroy it and try another.
	PrepareConn func(context.Context, *pgx.Conn) (bool, error)

	// AfterRelease, if set, is called in its own goroutine on every connection given back in
	// a clean state; returning false destroys the connection instead of keeping it. The
	// connection stays counted as held until AfterRelease returns.
	AfterRelease func(*pgx.Conn) bool

	// BeforeClose, if set, is called before a connection is closed by the pool.
	BeforeClose func(*pgx.Conn)

	// AcquireObserver, if set, is told how long each successful acquire from the underlying
	// pool took (pool.AcquireObserver: waits included, before the ping and PrepareConn), the
	// times Stat.AcquireDuration sums, for a latency histogram (promstats). pgxpool has no such
	// field. Optional.
	AcquireObserver pool.AcquireObserver

	// MaxConns is the most connections the pool opens at once (including ones being dialed
	// or closed). Key pool_max_conns; default max(4, runtime.NumCPU()); must be >= 1.
	MaxConns int32

	// MinConns is the number of connections kept open even when idle, rebuilt in the
	// background. Key pool_min_conns; default 0.
	MinConns int32

	// MinIdleConns is the number of idle connections the pool tries to keep ready. Key
	// pool_min_idle_conns; default 0.
	MinIdleConns int32

	// MaxConnLifetime is the age after which a connection is closed (at acquire, at release
	// and by the health check; never while held). Key pool_max_conn_lifetime; default 1h;
	// zero or negative means no limit.
	MaxConnLifetime time.Duration

	// MaxConnLifetimeJitter adds a random extra in [0, jitter) to each connection's lifetime,
	// drawn once when it is made, so connections made together do not expire together. Key
	// pool_max_conn_lifetime_jitter; default 0.
	MaxConnLifetimeJitter time.Duration

	// MaxConnIdleTime is how long a connection may sit idle before the health check closes it
	// (never below MinConns). Key pool_max_conn_idle_time; default 30m; zero or negative means
	// no limit.
	MaxConnIdleTime time.Duration

	// HealthCheckPeriod is the interval of the background check of idle connections
	// (lifetime, idle time, MinConns, MinIdleConns). Key pool_health_check_period; default 1m.
	HealthCheckPeriod time.Duration

	// PingTimeout bounds the ping of an idle connection before reuse, on top of the Acquire
	// ctx. Key pool_ping_timeout. Zero means DefaultPingTimeout: unlike pgxpool, where zero
	// leaves the ping bounded only by the caller's ctx, a pgpool ping is always bounded, so a
	// silently dead peer costs at most this long.
	PingTimeout time.Duration
}

// ShouldPingParams are the arguments of Config.ShouldPing.
type ShouldPingParams struct {
	// Conn is the acquired connection.
	Conn *pgx.Conn
	// IdleDuration is how long the connection sat idle since its last use.
	IdleDuration time.Duration
}

// Copy returns a deep copy of c (ConnConfig included) that can be changed without affecting c.
func (c *Config) Copy() *Config {
	n := *c
	if c.ConnConfig != nil {
		n.ConnConfig = c.ConnConfig.Copy()
	}
	return &n
}

// ConnString returns the connection string that c was parsed from (pool keys included), or ""
// for a Config built by hand.
func (c *Config) ConnString() string {
	if c.ConnConfig == nil {
		return ""
	}
	return c.ConnConfig.ConnString()
}

// ParseConfig parses connString, in any form pgx.ParseConfig accepts (URL or key=value), plus
// the pool keys below, which are removed before connecting so the server never sees them:
//
//	pool_max_conns                 integer >= 1
//	pool_min_conns                 integer in [0, pool_max_conns]
//	pool_min_idle_conns            integer in [0, pool_max_conns]
//	pool_max_conn_lifetime         duration (time.ParseDuration), e.g. 1h30m
//	pool_max_conn_lifetime_jitter  duration >= 0
//	pool_max_conn_idle_time        duration
//	pool_health_check_period       duration > 0
//	pool_ping_timeout              duration >= 0
//
// Missing keys take the defaults documented on Config's fields. A malformed value, or one out
// of range, returns a *pgconn.ParseConfigError (use errors.As) naming the key, as do the
// errors of pgx.ParseConfig itself; for a pool key it also matches ErrInvalidConfig.
func ParseConfig(connString string) (*Config, error) {
	cc, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	c := &Config{
		ConnConfig:        cc,
		MaxConns:          max(DefaultMaxConns, int32(runtime.NumCPU())),
		MaxConnLifetime:   DefaultMaxConnLifetime,
		MaxConnIdleTime:   DefaultMaxConnIdleTime,
		HealthCheckPeriod: DefaultHealthCheckPeriod,
	}
	// pgconn puts every key it does not know into RuntimeParams (sent to the server as session
	// settings), whatever the string's syntax; taking the pool keys out of there means no
	// second parser of URL and key=value syntax is needed.
	params := cc.RuntimeParams
	take := func(key string) (string, bool) {
		v, ok := params[key]
		delete(params, key)
		return v, ok
	}
	fail := func(key, msg string, err error) error {
		// Also ErrInvalidConfig, as the same mistake made through NewWithConfig is.
		inner := ErrInvalidConfig
		if err != nil {
			inner = fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		return pgconn.NewParseConfigError(connString, key+": "+msg, inner)
	}
	ints := []struct {
		key string
		dst *int32
		min int32
	}{
		{"pool_max_conns", &c.MaxConns, 1},
		{"pool_min_conns", &c.MinConns, 0},
		{"pool_min_idle_conns", &c.MinIdleConns, 0},
	}
	for _, k := range ints {
		s, ok := take(k.key)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fail(k.key, "not an integer", err)
		}
		if int32(n) < k.min {
			return nil, fail(k.key, fmt.Sprintf("%d is below %d", n, k.min), nil)
		}
		*k.dst = int32(n)
	}
	durations := []struct {
		key      string
		dst      *time.Duration
		positive bool // must be > 0 (else >= 0 unless anyNeg)
		anyNeg   bool // negative allowed (means "no limit")
	}{
		{"pool_max_conn_lifetime", &c.MaxConnLifetime, false, true},
		{"pool_max_conn_lifetime_jitter", &c.MaxConnLifetimeJitter, false, false},
		{"pool_max_conn_idle_time", &c.MaxConnIdleTime, false, true},
		{"pool_health_check_period", &c.HealthCheckPeriod, true, false},
		{"pool_ping_timeout", &c.PingTimeout, false, false},
	}
	for _, k := range durations {
		s, ok := take(k.key)
		if !ok {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fail(k.key, "not a duration", err)
		}
		if (k.positive && d <= 0) || (!k.anyNeg && d < 0) {
			return nil, fail(k.key, fmt.Sprintf("%v is out of range", d), nil)
		}
		*k.dst = d
	}
	for _, k := range []struct {
		key string
		n   int32
	}{{"pool_min_conns", c.MinConns}, {"pool_min_idle_conns", c.MinIdleConns}} {
		if k.n > c.MaxConns {
			return nil, fail(k.key, fmt.Sprintf("%d exceeds pool_max_conns %d", k.n, c.MaxConns), nil)
		}
	}
	return c, nil
}

// validate reports what the generic pool would not catch about c, wrapping ErrInvalidConfig.
func (c *Config) validate() error {
	switch {
	case c.ConnConfig == nil:
		return fmt.Errorf("%w: ConnConfig is nil (use ParseConfig)", ErrInvalidConfig)
	case c.MaxConns < 1:
		return fmt.Errorf("%w: MaxConns is %d, must be >= 1", ErrInvalidConfig, c.MaxConns)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MaxConnLifetimeJitter", c.MaxConnLifetimeJitter}, {"HealthCheckPeriod", c.HealthCheckPeriod}, {"PingTimeout", c.PingTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s is negative (%v)", ErrInvalidConfig, d.name, d.v)
		}
	}
	return nil
}
