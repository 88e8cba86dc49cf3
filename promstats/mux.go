package promstats

import (
	"sync"

	"github.com/muxpool/muxpool/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// Mux is a prometheus.Collector for a changing set of mux sessions: the muxpool_mux_* metrics
// of the package documentation, labelled mux="<name>" and, per session, session="<name>", read
// from Session.Stats at each scrape. Sessions join with Add and leave with Remove, or by
// themselves once they have ended. Make it with NewMux; it is safe for concurrent use.
type Mux struct {
	rtt *Histogram // nil: no histogram

	mu       sync.Mutex
	sessions map[string]*mux.Session

	count, streams, opened, accepted, refused    *prometheus.Desc
	frames, bytes, resets, pongsDropped, growths *prometheus.Desc
	smoothedRTT, rttHist, memReserved, memLimit  *prometheus.Desc
}

// NewMux returns an empty session set whose metrics carry the label mux=name; name must be
// unique among the Mux collectors registered in one registry. rtt, if not nil, is reported as
// the histogram muxpool_mux_rtt_seconds, one for the whole set; it should be the RTTObserver in
// the mux.Config of the sessions added.
func NewMux(name string, rtt *Histogram) *Mux {
	l := prometheus.Labels{"mux": name}
	d := func(metric, help string, variable ...string) *prometheus.Desc {
		return newDesc("mux", metric, help, l, variable...)
	}
	return &Mux{
		rtt:      rtt,
		sessions: make(map[string]*mux.Session),

		count:    d("sessions", "Sessions in the set."),
		streams:  d("streams", "Streams alive in the session.", "session"),
		opened:   d("streams_opened_total", "Streams this side opened.", "session"),
		accepted: d("streams_accepted_total", "Streams the peer opened that were handed to AcceptStream.", "session"),
		refused: d("streams_refused_total", "Streams the peer opened that were refused with RST "+
			"(backlog, limits, GoAway, memory).", "session"),
		frames:       d("frames_total", "Frames of every type, by direction: sent or received.", "session", "direction"),
		bytes:        d("data_bytes_total", "Data frame payload bytes, by direction: sent or received.", "session", "direction"),
		resets:       d("resets_received_total", "RST frames received.", "session"),
		pongsDropped: d("pongs_dropped_total", "Ping replies not sent because the peer pinged too fast.", "session"),
		growths:      d("window_growths_total", "Receive-window doublings by auto-tuning.", "session"),
		smoothedRTT:  d("smoothed_rtt_seconds", "Smoothed round-trip time from pings (1/8 weight per sample); 0 until measured.", "session"),
		rttHist:      d("rtt_seconds", "Every round-trip time measured by the set's sessions (mux.Config.RTTObserver)."),
		memReserved:  d("memory_reserved_bytes", "Receive-window bytes reserved from the session's memory budget.", "session"),
		memLimit:     d("memory_limit_bytes", "The session's memory budget (mux.Config.MaxSessionMemory).", "session"),
	}
}

// Add puts s in the set under the label session=name, replacing the session of that name if
// there is one. Collect drops s once it has ended (its Done channel is closed).
func (c *Mux) Add(name string, s *mux.Session) {
	c.mu.Lock()
	c.sessions[name] = s
	c.mu.Unlock()
}

// Remove takes the session of that name out of the set; it is a no-op if there is none.
func (c *Mux) Remove(name string) {
	c.mu.Lock()
	delete(c.sessions, name)
	c.mu.Unlock()
}

// Describe sends the descriptors of the metrics Collect sends (prometheus.Collector).
func (c *Mux) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.count, c.streams, c.opened, c.accepted, c.refused, c.frames, c.bytes,
		c.resets, c.pongsDropped, c.growths, c.smoothedRTT, c.memReserved, c.memLimit,
	} {
		ch <- d
	}
	if c.rtt != nil {
		ch <- c.rttHist
	}
}

// Collect drops the sessions that have ended, then sends the metrics of the rest, each from one
// Stats snapshot (prometheus.Collector).
func (c *Mux) Collect(ch chan<- prometheus.Metric) {
	live := c.live()
	ch <- gauge(c.count, len(live))
	for name, s := range live {
		st := s.Stats()
		ch <- gauge(c.streams, st.Streams, name)
		ch <- counter(c.opened, st.StreamsOpened, name)
		ch <- counter(c.accepted, st.StreamsAccepted, name)
		ch <- counter(c.refused, st.StreamsRefused, name)
		ch <- counter(c.frames, st.FramesSent, name, "sent")
		ch <- counter(c.frames, st.FramesReceived, name, "received")
		ch <- counter(c.bytes, st.BytesSent, name, "sent")
		ch <- counter(c.bytes, st.BytesReceived, name, "received")
		ch <- counter(c.resets, st.ResetsReceived, name)
		ch <- counter(c.pongsDropped, st.PongsDropped, name)
		ch <- counter(c.growths, st.WindowGrowths, name)
		ch <- seconds(c.smoothedRTT, prometheus.GaugeValue, st.RTT, name)
		ch <- gauge(c.memReserved, st.MemoryReserved, name)
		ch <- gauge(c.memLimit, st.MemoryLimit, name)
	}
	if c.rtt != nil {
		ch <- c.rtt.metric(c.rttHist)
	}
}

// live removes the ended sessions from the set and returns a copy of the rest.
func (c *Mux) live() map[string]*mux.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*mux.Session, len(c.sessions))
	for name, s := range c.sessions {
		select {
		case <-s.Done():
			delete(c.sessions, name)
		default:
			out[name] = s
		}
	}
	return out
}
