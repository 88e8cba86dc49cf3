package promstats

import (
	"github.com/muxpool/muxpool/pool"
	"github.com/prometheus/client_golang/prometheus"
)

// Pool is a prometheus.Collector for one pool.Pool, whatever its resource type: the
// muxpool_pool_* metrics of the package documentation, labelled pool="<name>", read from
// Pool.Stat at each scrape. Make it with NewPool.
type Pool struct {
	m *poolMetrics
}

// NewPool returns a collector for p whose metrics carry the label pool=name; name must be
// unique among the pools registered in one registry. acquire, if not nil, is reported as the
// histogram muxpool_pool_acquire_duration_seconds; it should be the AcquireObserver in the
// pool.Config p was made with.
func NewPool[T any](p *pool.Pool[T], name string, acquire *Histogram) *Pool {
	return &Pool{m: newPoolMetrics(p.Stat, name, acquire)}
}

// Describe sends the descriptors of the metrics Collect sends (prometheus.Collector).
func (c *Pool) Describe(ch chan<- *prometheus.Desc) { c.m.describe(ch) }

// Collect sends the pool's metrics, from one Stat snapshot (prometheus.Collector).
func (c *Pool) Collect(ch chan<- prometheus.Metric) { c.m.collect(ch) }
