package promstats

import (
	"github.com/muxpool/muxpool/pool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolMetrics is what Pool and PgPool share: the muxpool_pool_* metrics of one pool.Stat source,
// labelled pool="<name>".
type poolMetrics struct {
	stat    func() pool.Stat
	acquire *Histogram // nil: no histogram

	resources, max, effectiveMax, waiters        *prometheus.Desc
	acquires, emptyAcquires, canceled            *prometheus.Desc
	acquireSeconds, waitSeconds, acquireDuration *prometheus.Desc
	constructs, destroys, expires, hijacks       *prometheus.Desc
}

func newPoolMetrics(stat func() pool.Stat, name string, acquire *Histogram) *poolMetrics {
	l := prometheus.Labels{"pool": name}
	d := func(metric, help string, variable ...string) *prometheus.Desc {
		return newDesc("pool", metric, help, l, variable...)
	}
	return &poolMetrics{
		stat:    stat,
		acquire: acquire,

		resources: d("resources", "Resources in the pool by state: idle, acquired, "+
			"constructing (Constructor running) and destroying (Destructor scheduled or running; its slot still counts).", "state"),
		max:          d("max_resources", "The bound on resources in the pool (pool.Config.MaxSize)."),
		effectiveMax: d("effective_max_resources", "The bound applied now: max_resources, or less while the backend refuses more (pool.Config.CapacityError)."),
		waiters:      d("waiters", "Acquire calls waiting in line for a resource."),

		acquires:      d("acquire_total", "Successful acquires (Acquire and TryAcquire)."),
		emptyAcquires: d("acquire_empty_total", "Successful acquires that found no idle resource and waited for a release or a construction."),
		canceled:      d("acquire_canceled_total", "Acquire calls that returned their context's error."),
		acquireSeconds: d("acquire_seconds_total", "Time successful Acquire calls took, from the call until the resource was held, "+
			"waits included (pgxpool's AcquireDuration)."),
		waitSeconds: d("acquire_wait_seconds_total", "Time the acquires counted by acquire_empty_total waited."),
		acquireDuration: d("acquire_duration_seconds", "Duration of each successful Acquire call, from the call until the resource was held "+
			"(pool.Config.AcquireObserver)."),

		constructs: d("construct_total", "Constructor calls that returned, by result: success or error.", "result"),
		destroys:   d("destroy_total", "Destructor calls that returned (and destroys with no Destructor)."),
		expires: d("expire_total", "Destroys decided because a resource outlived its lifetime (reason max_lifetime) "+
			"or sat idle too long (reason max_idle_time).", "reason"),
		hijacks: d("hijack_total", "Resources taken out of the pool by Hijack."),
	}
}

func (m *poolMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		m.resources, m.max, m.effectiveMax, m.waiters,
		m.acquires, m.emptyAcquires, m.canceled, m.acquireSeconds, m.waitSeconds,
		m.constructs, m.destroys, m.expires, m.hijacks,
	} {
		ch <- d
	}
	if m.acquire != nil {
		ch <- m.acquireDuration
	}
}

func (m *poolMetrics) collect(ch chan<- prometheus.Metric) {
	s := m.stat()
	ch <- gauge(m.resources, s.Idle, "idle")
	ch <- gauge(m.resources, s.Acquired, "acquired")
	ch <- gauge(m.resources, s.Constructing, "constructing")
	ch <- gauge(m.resources, s.Destroying, "destroying")
	ch <- gauge(m.max, s.Max)
	ch <- gauge(m.effectiveMax, s.Cap)
	ch <- gauge(m.waiters, s.Waiting)

	ch <- counter(m.acquires, s.AcquireCount)
	ch <- counter(m.emptyAcquires, s.EmptyAcquireCount)
	ch <- counter(m.canceled, s.CanceledAcquireCount)
	ch <- seconds(m.acquireSeconds, prometheus.CounterValue, s.AcquireTime)
	ch <- seconds(m.waitSeconds, prometheus.CounterValue, s.EmptyAcquireWaitTime)
	if m.acquire != nil {
		ch <- m.acquire.metric(m.acquireDuration)
	}

	ch <- counter(m.constructs, s.ConstructCount, "success")
	ch <- counter(m.constructs, s.ConstructErrorCount, "error")
	ch <- counter(m.destroys, s.DestroyCount)
	ch <- counter(m.expires, s.LifetimeDestroyCount, "max_lifetime")
	ch <- counter(m.expires, s.IdleDestroyCount, "max_idle_time")
	ch <- counter(m.hijacks, s.HijackCount)
}
