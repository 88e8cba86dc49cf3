package promstats

import (
	"github.com/muxpool/muxpool/pool/pgpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PgPool is a prometheus.Collector for one pgpool.Pool: the same muxpool_pool_* metrics as Pool,
// labelled pool="<name>", read from PoolStat at each scrape, so a dashboard for one serves both.
// Make it with NewPgPool.
type PgPool struct {
	m *poolMetrics
}

// NewPgPool returns a collector for p whose metrics carry the label pool=name; name must be
// unique among the pools registered in one registry. acquire, if not nil, is reported as
// muxpool_pool_acquire_duration_seconds: give the same Histogram to p's
// Config.AcquireObserver.
func NewPgPool(p *pgpool.Pool, name string, acquire *Histogram) *PgPool {
	return &PgPool{m: newPoolMetrics(p.PoolStat, name, acquire)}
}

// Describe sends the descriptors of the metrics Collect sends (prometheus.Collector).
func (c *PgPool) Describe(ch chan<- *prometheus.Desc) { c.m.describe(ch) }

// Collect sends the pool's metrics, from one PoolStat snapshot (prometheus.Collector).
func (c *PgPool) Collect(ch chan<- prometheus.Metric) { c.m.collect(ch) }
