package pgpool

import (
	"time"

	"github.com/muxpool/muxpool/pool"
)

// Stat is a snapshot of a Pool's statistics with pgxpool's Stat methods and meanings, taken at
// once under the pool's lock, so its numbers agree with each other. Pool.Stat returns one;
// Pool.PoolStat returns the generic pool.Stat, which has more (waiters, destroys in flight,
// wait time alone, construction errors).
type Stat struct {
	s pool.Stat
}

// AcquireCount returns the cumulative count of successful acquires from the pool (a
// connection later rejected by the ping or PrepareConn counts too, as in pgxpool).
func (s *Stat) AcquireCount() int64 { return s.s.AcquireCount }

// AcquireDuration returns the total duration of all successful acquires from the pool, from
// each call until it had a connection, waits included (pool.Stat.AcquireTime; not
// pool.Stat.AcquireDuration, which is the wait alone).
func (s *Stat) AcquireDuration() time.Duration { return s.s.AcquireTime }

// AcquiredConns returns the number of connections currently acquired.
func (s *Stat) AcquiredConns() int32 { return s.s.Acquired }

// CanceledAcquireCount returns the cumulative count of acquires that ended because their
// context did.
func (s *Stat) CanceledAcquireCount() int64 { return s.s.CanceledAcquireCount }

// ConstructingConns returns the number of connections being established.
func (s *Stat) ConstructingConns() int32 { return s.s.Constructing }

// EmptyAcquireCount returns the cumulative count of successful acquires that found no idle
// connection and waited for one to be released or established.
func (s *Stat) EmptyAcquireCount() int64 { return s.s.EmptyAcquireCount }

// IdleConns returns the number of idle connections.
func (s *Stat) IdleConns() int32 { return s.s.Idle }

// MaxConns returns the maximum size of the pool (Config.MaxConns).
func (s *Stat) MaxConns() int32 { return s.s.Max }

// EffectiveMaxConns returns the bound the pool applies now: MaxConns, or less while the
// server refuses more connections (SQLSTATE 53300 or 53400; see Pool.Acquire). pgxpool has no
// such bound.
func (s *Stat) EffectiveMaxConns() int32 { return s.s.Cap }

// TotalConns returns ConstructingConns + AcquiredConns + IdleConns, as in pgxpool. Connections
// being closed are not included, although they still hold a slot until closed
// (pool.Stat.Total includes them).
func (s *Stat) TotalConns() int32 { return s.s.Constructing + s.s.Acquired + s.s.Idle }

// NewConnsCount returns the cumulative count of connection attempts started, successful,
// failed or still in progress (pgxpool counts each constructor call).
func (s *Stat) NewConnsCount() int64 {
	return s.s.ConstructCount + s.s.ConstructErrorCount + int64(s.s.Constructing)
}

// MaxLifetimeDestroyCount returns the cumulative count of connections closed because they
// exceeded MaxConnLifetime.
func (s *Stat) MaxLifetimeDestroyCount() int64 { return s.s.LifetimeDestroyCount }

// MaxIdleDestroyCount returns the cumulative count of connections closed because they
// exceeded MaxConnIdleTime.
func (s *Stat) MaxIdleDestroyCount() int64 { return s.s.IdleDestroyCount }

// EmptyAcquireWaitTime returns the cumulative time that the acquires counted by
// EmptyAcquireCount waited.
func (s *Stat) EmptyAcquireWaitTime() time.Duration { return s.s.EmptyAcquireWaitTime }

// PoolStat returns a snapshot of the generic pool under p: every pool.Stat field, including
// the ones pgxpool's Stat lacks (Waiting, Destroying, ConstructErrorCount, HijackCount).
func (p *Pool) PoolStat() pool.Stat { return p.p.Stat() }
