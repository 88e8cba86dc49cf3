package pool

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultHealthCheckPeriod is the interval of the background check of idle resources when
// Config.HealthCheckPeriod is zero. It matches pgxpool's default.
const DefaultHealthCheckPeriod = time.Minute

// ErrInvalidConfig is wrapped by every error New returns for a bad Config; use errors.Is.
var ErrInvalidConfig = errors.New("pool: invalid config")

// Config describes a pool. Only Constructor and MaxSize are required; every duration left at
// zero switches its feature off (except HealthCheckPeriod, which defaults to
// DefaultHealthCheckPeriod).
type Config[T any] struct {
	// Constructor builds one resource. It runs in its own goroutine, never under the pool's
	// lock. Its ctx carries the values of the ctx given to Acquire (or TryAcquire) but is
	// canceled only by Close and by ConstructTimeout: a caller that gives up does not abort the
	// construction, and the finished resource goes to the next waiter or the idle set
	// (the reason is pgx#1259 and pgx#1287). Background warm-up constructions (MinSize,
	// MinIdle) get a ctx with no values. Required.
	Constructor func(ctx context.Context) (T, error)

	// Destructor closes one resource. It runs in its own goroutine, never under the pool's
	// lock, exactly once per constructed resource that was not hijacked. The resource's slot
	// stays counted against MaxSize until Destructor returns. Optional.
	Destructor func(T)

	// MaxSize is the hard bound on resources: constructions in flight + live resources +
	// resources being destroyed never exceed it. Required, >= 1.
	MaxSize int32

	// MinSize is the number of resources the pool keeps built (idle or acquired), warming them
	// up in the background at New and after every destroy. Idle-time closes never take the
	// pool below it. 0 <= MinSize <= MaxSize.
	MinSize int32

	// MinIdle is the number of idle resources the pool tries to keep ready, within MaxSize.
	// It is restored in the background when an acquire takes the idle count below it.
	// 0 <= MinIdle <= MaxSize.
	MinIdle int32

	// MaxLifetime is the age after which a resource is destroyed: at acquire, at release and
	// by the health check, so it holds even on a pool that is never idle. A resource is never
	// taken from its holder. Zero means no limit.
	MaxLifetime time.Duration

	// MaxLifetimeJitter adds a random extra in [0, MaxLifetimeJitter) to MaxLifetime, drawn
	// once per resource when it is built, so resources built together do not all expire
	// together. Ignored when MaxLifetime is zero.
	MaxLifetimeJitter time.Duration

	// MaxIdleTime is how long a resource may sit idle before the health check destroys it
	// (never below MinSize). Zero means no limit.
	MaxIdleTime time.Duration

	// HealthCheckPeriod is the interval of the background pass that enforces MaxLifetime and
	// MaxIdleTime on idle resources and restores MinSize and MinIdle. Zero means
	// DefaultHealthCheckPeriod. MinSize is also restored right after each destroy, without
	// waiting for the period.
	HealthCheckPeriod time.Duration

	// CapacityError, if set, reports whether a Constructor error means the backend takes no
	// more resources for now (PostgreSQL's too_many_connections). Such a failure, while the
	// pool holds other resources, does not fail the waiter it was for: the pool caps its size
	// at what it holds (Stat.Cap), the waiter stays in line for one of those, and once a
	// second the cap is raised by one to probe the backend again. It runs in the construction's
	// goroutine, never under the pool's lock. Optional.
	CapacityError func(error) bool

	// ConstructTimeout bounds each Constructor call through its ctx. Zero means no bound other
	// than Close; set it when the constructor does network I/O, because a construction holds a
	// slot until it returns.
	ConstructTimeout time.Duration

	// AcquireObserver, if set, is told how long each successful Acquire took, for a latency
	// histogram (see AcquireObserver). Nil costs nothing. Optional.
	AcquireObserver AcquireObserver
}

// validate reports the first problem with c, wrapped in ErrInvalidConfig.
func (c *Config[T]) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Constructor == nil:
		return bad("Constructor is nil")
	case c.MaxSize < 1:
		return bad("MaxSize is %d, must be >= 1", c.MaxSize)
	case c.MinSize < 0 || c.MinSize > c.MaxSize:
		return bad("MinSize is %d, must be in [0, MaxSize=%d]", c.MinSize, c.MaxSize)
	case c.MinIdle < 0 || c.MinIdle > c.MaxSize:
		return bad("MinIdle is %d, must be in [0, MaxSize=%d]", c.MinIdle, c.MaxSize)
	case c.MaxLifetime < 0:
		return bad("MaxLifetime is negative (%v)", c.MaxLifetime)
	case c.MaxLifetimeJitter < 0:
		return bad("MaxLifetimeJitter is negative (%v)", c.MaxLifetimeJitter)
	case c.MaxIdleTime < 0:
		return bad("MaxIdleTime is negative (%v)", c.MaxIdleTime)
	case c.HealthCheckPeriod < 0:
		return bad("HealthCheckPeriod is negative (%v)", c.HealthCheckPeriod)
	case c.ConstructTimeout < 0:
		return bad("ConstructTimeout is negative (%v)", c.ConstructTimeout)
	}
	return nil
}
