package promstats

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	_ prometheus.Collector = (*Pool)(nil)
	_ prometheus.Collector = (*PgPool)(nil)
	_ prometheus.Collector = (*Mux)(nil)
	_ prometheus.Collector = (*Demux)(nil)
)

// namespace is the first part of every metric name.
const namespace = "muxpool"

// newDesc describes the metric muxpool_<subsystem>_<name>.
func newDesc(subsystem, name, help string, constLabels prometheus.Labels, variableLabels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, variableLabels, constLabels)
}

// counter and gauge make constant metrics for one scrape.
func counter[N int64 | uint64](d *prometheus.Desc, v N, labelValues ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labelValues...)
}

func gauge[N int | int32 | int64](d *prometheus.Desc, v N, labelValues ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labelValues...)
}

// seconds makes a constant metric of a duration in seconds.
func seconds(d *prometheus.Desc, t prometheus.ValueType, v time.Duration, labelValues ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, t, v.Seconds(), labelValues...)
}
