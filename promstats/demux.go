package promstats

import (
	"github.com/muxpool/muxpool/demux"
	"github.com/prometheus/client_golang/prometheus"
)

// Demux is a prometheus.Collector for one demux.Proxy: the muxpool_demux_* metrics of the
// package documentation, read from Proxy.Stats at each scrape and labelled proxy="<name>". The
// series about one upstream target (connections, streams in use, requests sent, dials,
// ejections) also carry target="<ip:port>" (Stats.Targets[i].Addr) and leave with the target;
// the queue, the requests given to the pool and the frames received from the upstream are the
// proxy's as a whole. Make it with NewDemux.
type Demux struct {
	p         *demux.Proxy
	queueWait *Histogram // nil: no histogram

	// per target: variable label target
	conns, streamsInUse, sent, dials, dialErrors, ejected, ejections, gone *prometheus.Desc
	// the whole proxy
	requests, queued, queueWaits, queueWaitSeconds, queueMax *prometheus.Desc
	rejected, retries, resets, goAways                       *prometheus.Desc
	queueWaitHist                                            *prometheus.Desc
}

// NewDemux returns a collector for p whose metrics carry the label proxy=name; name must be
// unique among the proxies registered in one registry. queueWait, if not nil, is reported as
// muxpool_demux_queue_wait_duration_seconds: give the same Histogram to p's
// Config.QueueWaitObserver.
func NewDemux(p *demux.Proxy, name string, queueWait *Histogram) *Demux {
	l := prometheus.Labels{"proxy": name}
	d := func(metric, help string, variable ...string) *prometheus.Desc {
		return newDesc("demux", metric, help, l, variable...)
	}
	return &Demux{
		p:         p,
		queueWait: queueWait,
		queueWaitHist: d("queue_wait_duration_seconds", "Each request's wait for an upstream stream "+
			"(0 when one was free), from Config.QueueWaitObserver."),

		conns: d("connections", "Upstream connections to the target by state: dialing (being established), active, "+
			"and draining (GOAWAY received; no new streams, closed when idle).", "target", "state"),
		streamsInUse: d("streams_in_use", "Requests holding a stream (HTTP/2) or connection (HTTP/1.1) to the target, "+
			"up to the end of their response body.", "target"),
		sent:       d("requests_sent_total", "Requests sent to the target; a re-sent request counts again.", "target"),
		dials:      d("dials_total", "Connection attempts to the target.", "target"),
		dialErrors: d("dial_errors_total", "Connection attempts to the target that failed.", "target"),
		ejected: d("target_ejected", "1 while the target is ejected after failing repeatedly (no new streams for a backoff), "+
			"else 0.", "target"),
		ejections: d("target_ejections_total", "Times the target was ejected.", "target"),
		gone:      d("target_gone", "1 once the target's address no longer resolves (it leaves when idle), else 0.", "target"),

		requests:         d("requests_total", "Requests given to the upstream pool."),
		queued:           d("queued_requests", "Requests waiting in the FIFO queue for an upstream stream."),
		queueWaits:       d("queue_waits_total", "Requests that had to wait in the FIFO queue for an upstream stream."),
		queueWaitSeconds: d("queue_wait_seconds_total", "Time the requests counted by queue_waits_total waited."),
		queueMax:         d("queue_wait_max_seconds", "The longest queue wait since the proxy started."),
		rejected: d("queue_rejected_total", "Requests the queue refused with 503, by reason: "+
			"timeout (no stream within QueueTimeout) or full (the queue was full).", "reason"),
		retries: d("retries_total", "Re-sends of failed attempts: requests the upstream never saw or refused (REFUSED_STREAM), and idempotent ones lost to a GOAWAY or a failed reused connection."),
		resets:  d("resets_received_total", "RST_STREAM frames received from the upstream."),
		goAways: d("goaways_received_total", "GOAWAY frames received from the upstream."),
	}
}

// Describe sends the descriptors of the metrics Collect sends (prometheus.Collector).
func (c *Demux) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.conns, c.streamsInUse, c.sent, c.dials, c.dialErrors, c.ejected, c.ejections, c.gone,
		c.requests, c.queued, c.queueWaits, c.queueWaitSeconds, c.queueMax, c.rejected, c.retries, c.resets, c.goAways,
	} {
		ch <- d
	}
	if c.queueWait != nil {
		ch <- c.queueWaitHist
	}
}

// Collect sends the proxy's metrics, from one Stats snapshot (prometheus.Collector).
func (c *Demux) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	for _, t := range s.Targets {
		ch <- gauge(c.conns, t.Dialing, t.Addr, "dialing")
		ch <- gauge(c.conns, t.Conns-t.DrainingConns, t.Addr, "active")
		ch <- gauge(c.conns, t.DrainingConns, t.Addr, "draining")
		ch <- gauge(c.streamsInUse, t.StreamsInUse, t.Addr)
		ch <- counter(c.sent, t.Requests, t.Addr)
		ch <- counter(c.dials, t.Dials, t.Addr)
		ch <- counter(c.dialErrors, t.DialErrors, t.Addr)
		ch <- gauge(c.ejected, flag(t.Ejected), t.Addr)
		ch <- counter(c.ejections, t.Ejections, t.Addr)
		ch <- gauge(c.gone, flag(t.Gone), t.Addr)
	}

	ch <- counter(c.requests, s.Requests)
	ch <- gauge(c.queued, s.Queued)
	ch <- counter(c.queueWaits, s.QueueWaits)
	ch <- seconds(c.queueWaitSeconds, prometheus.CounterValue, s.QueueWaitTotal)
	ch <- seconds(c.queueMax, prometheus.GaugeValue, s.QueueWaitMax)
	ch <- counter(c.rejected, s.QueueTimeouts, "timeout")
	ch <- counter(c.rejected, s.QueueFull, "full")
	ch <- counter(c.retries, s.Retries)
	ch <- counter(c.resets, s.Resets)
	ch <- counter(c.goAways, s.GoAways)
	if c.queueWait != nil {
		ch <- c.queueWait.metric(c.queueWaitHist)
	}
}

// flag is 1 for true and 0 for false, a boolean as a gauge.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}
