package promstats

import (
	"github.com/muxpool/muxpool/demux"
	"github.com/prometheus/client_golang/prometheus"
)

// Demux is a prometheus.Collector for one demux.Proxy: the muxpool_demux_* metrics of the
// package documentation, read from Proxy.Stats at each scrape and labelled proxy="<name>". The
// series about upstream connections and what was sent on them (connections, streams in use,
// requests, dials) also carry target="<upstream>"; the queue and the frames received from
// the upstream are the proxy's as a whole and carry no target. Make it with NewDemux.
type Demux struct {
	p      *demux.Proxy
	target string

	// per target: variable label target
	conns, streamsInUse, requests, dials, dialErrors *prometheus.Desc
	// the whole proxy
	queued, queueWaits, queueWaitSeconds, queueMax, rejected *prometheus.Desc
	retries, resets, goAways                                 *prometheus.Desc
}

// NewDemux returns a collector for p whose metrics carry the label proxy=name (unique among
// the proxies registered in one registry); target, the upstream p sends to (the
// demux.Config.Upstream it was made with), is the value of the target label. A proxy has one
// upstream today; the label is there so that series per upstream target can be told apart once
// a proxy reports several.
func NewDemux(p *demux.Proxy, name, target string) *Demux {
	l := prometheus.Labels{"proxy": name}
	d := func(metric, help string, variable ...string) *prometheus.Desc {
		return newDesc("demux", metric, help, l, variable...)
	}
	return &Demux{
		p:      p,
		target: target,

		conns: d("connections", "Upstream connections by state: dialing (being established), active, "+
			"and draining (GOAWAY received; no new streams, closed when idle).", "target", "state"),
		streamsInUse: d("streams_in_use", "Requests holding an upstream stream (HTTP/2) or connection (HTTP/1.1), "+
			"up to the end of their response body.", "target"),
		requests:   d("requests_total", "Requests given to the upstream pool.", "target"),
		dials:      d("dials_total", "Upstream connection attempts.", "target"),
		dialErrors: d("dial_errors_total", "Upstream connection attempts that failed.", "target"),

		queued:           d("queued_requests", "Requests waiting in the FIFO queue for an upstream stream."),
		queueWaits:       d("queue_waits_total", "Requests that had to wait in the FIFO queue for an upstream stream."),
		queueWaitSeconds: d("queue_wait_seconds_total", "Time the requests counted by queue_waits_total waited."),
		queueMax:         d("queue_wait_max_seconds", "The longest queue wait since the proxy started."),
		rejected: d("queue_rejected_total", "Requests the queue refused with 503, by reason: "+
			"timeout (no stream within QueueTimeout) or full (the queue was full).", "reason"),
		retries: d("retries_total", "Re-sends of requests the upstream did not process (REFUSED_STREAM, or above a GOAWAY's last stream ID)."),
		resets:  d("resets_received_total", "RST_STREAM frames received from the upstream."),
		goAways: d("goaways_received_total", "GOAWAY frames received from the upstream."),
	}
}

// Describe sends the descriptors of the metrics Collect sends (prometheus.Collector).
func (c *Demux) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.conns, c.streamsInUse, c.requests, c.dials, c.dialErrors,
		c.queued, c.queueWaits, c.queueWaitSeconds, c.queueMax, c.rejected, c.retries, c.resets, c.goAways,
	} {
		ch <- d
	}
}

// Collect sends the proxy's metrics, from one Stats snapshot (prometheus.Collector).
func (c *Demux) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	t := c.target
	ch <- gauge(c.conns, s.Dialing, t, "dialing")
	ch <- gauge(c.conns, s.Conns-s.DrainingConns, t, "active")
	ch <- gauge(c.conns, s.DrainingConns, t, "draining")
	ch <- gauge(c.streamsInUse, s.StreamsInUse, t)
	ch <- counter(c.requests, s.Requests, t)
	ch <- counter(c.dials, s.Dials, t)
	ch <- counter(c.dialErrors, s.DialErrors, t)

	ch <- gauge(c.queued, s.Queued)
	ch <- counter(c.queueWaits, s.QueueWaits)
	ch <- seconds(c.queueWaitSeconds, prometheus.CounterValue, s.QueueWaitTotal)
	ch <- seconds(c.queueMax, prometheus.GaugeValue, s.QueueWaitMax)
	ch <- counter(c.rejected, s.QueueTimeouts, "timeout")
	ch <- counter(c.rejected, s.QueueFull, "full")
	ch <- counter(c.retries, s.Retries)
	ch <- counter(c.resets, s.Resets)
	ch <- counter(c.goAways, s.GoAways)
}
