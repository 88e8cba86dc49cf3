package promstats

import (
	"github.com/muxpool/muxpool/demux"
	"math"
	"sync/atomic"
	"time"

	"github.com/muxpool/muxpool/mux"
	"github.com/muxpool/muxpool/pool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	_ pool.AcquireObserver    = (*Histogram)(nil)
	_ mux.RTTObserver         = (*Histogram)(nil)
	_ demux.QueueWaitObserver = (*Histogram)(nil)
)

// DefaultBuckets are the upper bounds, in seconds, of a Histogram made with nil buckets: 10 µs
// to 10 s, so that both an acquire served from the idle set (well under 10 µs) and a wait for a
// slow backend land in a bucket of their own.
var DefaultBuckets = []float64{
	0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Histogram counts durations into buckets, fed by a core package's hook: it implements
// pool.AcquireObserver (put it in pool.Config.AcquireObserver) and mux.RTTObserver (put it in
// mux.Config.RTTObserver). A collector given it reports it as a Prometheus histogram in seconds,
// under the collector's metric name and labels. Observing costs a few atomic additions and
// never allocates; it is safe for concurrent use. A scrape taken while observations are being
// made may see an observation in the count and buckets but not yet in the sum.
type Histogram struct {
	bounds []float64       // upper bounds in seconds, increasing
	nanos  []int64         // the same bounds in nanoseconds, for Observe
	counts []atomic.Uint64 // per bucket (not cumulative); the last one is +Inf
	sum    atomic.Int64    // nanoseconds
}

// NewHistogram returns an empty Histogram whose buckets have the given upper bounds in seconds
// (strictly increasing; nil or empty means DefaultBuckets). It panics if buckets are not
// strictly increasing, as prometheus.NewHistogram does.
func NewHistogram(buckets []float64) *Histogram {
	if len(buckets) == 0 {
		buckets = DefaultBuckets
	}
	h := &Histogram{
		bounds: append([]float64(nil), buckets...),
		nanos:  make([]int64, len(buckets)),
		counts: make([]atomic.Uint64, len(buckets)+1),
	}
	for i, b := range h.bounds {
		if i > 0 && b <= h.bounds[i-1] {
			panic("promstats: histogram buckets not strictly increasing")
		}
		h.nanos[i] = int64(math.Round(b * float64(time.Second)))
	}
	return h
}

// Observe adds one duration; a negative one counts as zero.
func (h *Histogram) Observe(d time.Duration) {
	ns := max(int64(d), 0)
	i := 0
	for i < len(h.nanos) && ns > h.nanos[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(ns)
}

// ObserveAcquire is Observe, making h a pool.AcquireObserver.
func (h *Histogram) ObserveAcquire(d time.Duration) { h.Observe(d) }

// ObserveRTT is Observe, making h a mux.RTTObserver.
func (h *Histogram) ObserveRTT(d time.Duration) { h.Observe(d) }

// ObserveQueueWait is Observe, making h a demux.QueueWaitObserver.
func (h *Histogram) ObserveQueueWait(d time.Duration) { h.Observe(d) }

// metric returns h as a constant Prometheus histogram for desc: cumulative bucket counts, the
// count (the sum of the buckets, so the two agree) and the sum in seconds.
func (h *Histogram) metric(desc *prometheus.Desc, labelValues ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.bounds))
	var n uint64
	for i, b := range h.bounds {
		n += h.counts[i].Load()
		buckets[b] = n
	}
	n += h.counts[len(h.bounds)].Load()
	sum := time.Duration(h.sum.Load()).Seconds()
	return prometheus.MustNewConstHistogram(desc, n, sum, buckets, labelValues...)
}
