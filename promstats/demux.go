package promstats

import (
	"github.com/muxpool/muxpool/demux"
	"github.com/prometheus/client_golang/prometheus"
)

// Demux is a prometheus.Collector for one demux.Proxy: the muxpool_demux_* metrics of the
// package documentation, labelled proxy="<name>" and target="<upstream>", read from Proxy.Stats
// at each scrape. Make it with NewDemux.
type Demux struct {
	p *demux.Proxy

	conns, streamsInUse, queued                       *prometheus.Desc
	requests, queueWaits, queueWaitSeconds, queueMax  *prometheus.Desc
	rejected, retries, resets, goAways, dials, dialEr *prometheus.Desc
}

// NewDemux returns a collector for p whose metrics carry the labels proxy=name (unique among
// the proxies registered in one registry) and target=target, the upstream p sends to (the
// demux.Config.Upstream it was made with). A proxy has one upstream today; the target label is
// there so that series per upstream can be told apart once a proxy has several.
func NewDemux(p *demux.Proxy, name, target string) *Demux {
	l := prometheus.Labels{"proxy": name, "target": target}
	d := func(metric, help string, variable ...string) *prometheus.Desc {
		return newDesc("demux", metric, help, l, variable...)
	}
	return &Demux{
		p: p,

		conns: d("connections", "Upstream connections by state: dialing (being established), active, "+
			"and draining (GOAWAY received; no new streams, closed when idle).", "state"),
		streamsInUse: d("streams_in_use", "Requests holding an upstream stream (HTTP/2) or connection (HTTP/1.1), "+
			"up to the end of their response body."),
		queued:           d("queued_requests", "Requests waiting in the FIFO queue for an upstream stream."),
		requests:         d("requests_total", "Requests given to the upstream pool."),
		queueWaits:       d("queue_waits_total", "Requests that had to wait in the FIFO queue for an upstream stream."),
		queueWaitSeconds: d("queue_wait_seconds_total", "Time the requests counted by queue_waits_total waited."),
		queueMax:         d("queue_wait_max_seconds", "The longest queue wait since the proxy started."),
		rejected: d("queue_rejected_total", "Requests the queue refused with 503, by reason: "+
			"timeout (no stream within QueueTimeout) or full (the queue was full).", "reason"),
		retries: d("retries_total", "Re-sends of requests the upstream did not process (REFUSED_STREAM, or above a GOAWAY's last stream ID)."),
		resets:  d("resets_received_total", "RST_STREAM frames received from the upstream."),
		goAways: d("goaways_received_total", "GOAWAY frames received from the upstream."),
		dials:   d("dials_total", "Upstream connection attempts."),
		dialEr:  d("dial_errors_total", "Upstream connection attempts that failed."),
	}
}

// Describe sends the descriptors of the metrics Collect sends (prometheus.Collector).
func (c *Demux) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.conns, c.streamsInUse, c.queued, c.requests, c.queueWaits, c.queueWaitSeconds, c.queueMax,
		c.rejected, c.retries, c.resets, c.goAways, c.dials, c.dialEr,
	} {
		ch <- d
	}
}

// Collect sends the proxy's metrics, from one Stats snapshot (prometheus.Collector).
func (c *Demux) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	ch <- gauge(c.conns, s.Dialing, "dialing")
	ch <- gauge(c.conns, s.Conns-s.DrainingConns, "active")
	ch <- gauge(c.conns, s.DrainingConns, "draining")
	ch <- gauge(c.streamsInUse, s.StreamsInUse)
	ch <- gauge(c.queued, s.Queued)

	ch <- counter(c.requests, s.Requests)
	ch <- counter(c.queueWaits, s.QueueWaits)
	ch <- seconds(c.queueWaitSeconds, prometheus.CounterValue, s.QueueWaitTotal)
	ch <- seconds(c.queueMax, prometheus.GaugeValue, s.QueueWaitMax)
	ch <- counter(c.rejected, s.QueueTimeouts, "timeout")
	ch <- counter(c.rejected, s.QueueFull, "full")
	ch <- counter(c.retries, s.Retries)
	ch <- counter(c.resets, s.Resets)
	ch <- counter(c.goAways, s.GoAways)
	ch <- counter(c.dials, s.Dials)
	ch <- counter(c.dialEr, s.DialErrors)
}
