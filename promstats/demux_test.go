package promstats_test

import (
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/muxpool/muxpool/demux"
	"github.com/muxpool/muxpool/promstats"
)

// startDemux runs n h2c backends answering "ok" and a demux proxy in front of them, all on
// loopback, until the test ends. It returns the proxy, the backends' addresses (the proxy's
// targets) and the proxy's front URL.
func startDemux(t *testing.T, n int, queueWait demux.QueueWaitObserver) (p *demux.Proxy, targets []string, front string) {
	t.Helper()
	var (
		servers   []interface{ Close() error } // closed in this order: front, proxy, backends
		done      []chan error                 // each Serve's result
		upstreams []string
	)
	serveOn := func(srv interface{ Serve(net.Listener) error }, ln net.Listener) {
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		done = append(done, served)
	}
	t.Cleanup(func() {
		for _, s := range slices.Backward(servers) {
			s.Close()
		}
		for _, d := range done {
			if err := <-d; !errors.Is(err, http.ErrServerClosed) {
				t.Error(err)
			}
		}
	})
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}

	for range n {
		bl := listen()
		backend := &http.Server{
			Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
			Protocols: new(http.Protocols),
		}
		backend.Protocols.SetUnencryptedHTTP2(true)
		servers = append(servers, backend)
		serveOn(backend, bl)
		targets = append(targets, bl.Addr().String())
		upstreams = append(upstreams, "h2c://"+bl.Addr().String())
	}
	p, err := demux.New(demux.Config{Upstreams: upstreams, MaxConns: 1, QueueWaitObserver: queueWait})
	if err != nil {
		t.Fatal(err)
	}
	servers = append(servers, p)
	fl := listen()
	srv := demux.NewServer(fl.Addr().String(), p)
	servers = append(servers, srv)
	serveOn(srv, fl)
	return p, targets, "http://" + fl.Addr().String()
}

// get sends n HTTP/1.1 requests to url one after the other, each expecting "ok".
func get(t *testing.T, url string, n int) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range n {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Fatalf("%s %q %v", resp.Status, body, err)
		}
	}
}

// A Demux collector reports the proxy after three HTTP/1.1 requests carried over one h2c
// connection to its one target: three requests, one dial, one active connection, one queue
// wait (the first request's, for the dial), nothing refused, retried, reset or ejected.
func TestDemuxCollectorScrapesKnownActivity(t *testing.T) {
	p, targets, front := startDemux(t, 1, nil)
	url := serve(t, promstats.NewDemux(p, "front", nil))
	get(t, front+"/", 3)

	target := targets[0]
	compare(t, url, `
# HELP muxpool_demux_requests_total Requests given to the upstream pool.
# TYPE muxpool_demux_requests_total counter
muxpool_demux_requests_total{proxy="front"} 3
# HELP muxpool_demux_requests_sent_total Requests sent to the target; a re-sent request counts again.
# TYPE muxpool_demux_requests_sent_total counter
muxpool_demux_requests_sent_total{proxy="front",target="`+target+`"} 3
# HELP muxpool_demux_dials_total Connection attempts to the target.
# TYPE muxpool_demux_dials_total counter
muxpool_demux_dials_total{proxy="front",target="`+target+`"} 1
# HELP muxpool_demux_dial_errors_total Connection attempts to the target that failed.
# TYPE muxpool_demux_dial_errors_total counter
muxpool_demux_dial_errors_total{proxy="front",target="`+target+`"} 0
# HELP muxpool_demux_connections Upstream connections to the target by state: dialing (being established), active, and draining (GOAWAY received; no new streams, closed when idle).
# TYPE muxpool_demux_connections gauge
muxpool_demux_connections{proxy="front",state="active",target="`+target+`"} 1
muxpool_demux_connections{proxy="front",state="dialing",target="`+target+`"} 0
muxpool_demux_connections{proxy="front",state="draining",target="`+target+`"} 0
# HELP muxpool_demux_target_ejected 1 while the target is ejected after failing repeatedly (no new streams for a backoff), else 0.
# TYPE muxpool_demux_target_ejected gauge
muxpool_demux_target_ejected{proxy="front",target="`+target+`"} 0
# HELP muxpool_demux_target_ejections_total Times the target was ejected.
# TYPE muxpool_demux_target_ejections_total counter
muxpool_demux_target_ejections_total{proxy="front",target="`+target+`"} 0
# HELP muxpool_demux_target_gone 1 once the target's address no longer resolves (it leaves when idle), else 0.
# TYPE muxpool_demux_target_gone gauge
muxpool_demux_target_gone{proxy="front",target="`+target+`"} 0
# HELP muxpool_demux_queued_requests Requests waiting in the FIFO queue for an upstream stream.
# TYPE muxpool_demux_queued_requests gauge
muxpool_demux_queued_requests{proxy="front"} 0
# HELP muxpool_demux_queue_waits_total Requests that had to wait in the FIFO queue for an upstream stream.
# TYPE muxpool_demux_queue_waits_total counter
muxpool_demux_queue_waits_total{proxy="front"} 1
# HELP muxpool_demux_queue_rejected_total Requests the queue refused with 503, by reason: timeout (no stream within QueueTimeout) or full (the queue was full).
# TYPE muxpool_demux_queue_rejected_total counter
muxpool_demux_queue_rejected_total{proxy="front",reason="full"} 0
muxpool_demux_queue_rejected_total{proxy="front",reason="timeout"} 0
# HELP muxpool_demux_retries_total Re-sends of failed attempts: requests the upstream never saw or refused (REFUSED_STREAM), and idempotent ones lost to a GOAWAY or a failed reused connection.
# TYPE muxpool_demux_retries_total counter
muxpool_demux_retries_total{proxy="front"} 0
# HELP muxpool_demux_resets_received_total RST_STREAM frames received from the upstream.
# TYPE muxpool_demux_resets_received_total counter
muxpool_demux_resets_received_total{proxy="front"} 0
# HELP muxpool_demux_goaways_received_total GOAWAY frames received from the upstream.
# TYPE muxpool_demux_goaways_received_total counter
muxpool_demux_goaways_received_total{proxy="front"} 0
`)
	// The one wait, the first request's for the connection to be dialled, is both the total and
	// the maximum.
	fams := scrape(t, url)
	total := series(t, fams, "muxpool_demux_queue_wait_seconds_total", "proxy", "front").GetCounter().GetValue()
	longest := series(t, fams, "muxpool_demux_queue_wait_max_seconds", "proxy", "front").GetGauge().GetValue()
	if total <= 0 || longest != total {
		t.Errorf("queue wait: total %vs, max %vs; want one wait > 0", total, longest)
	}
	// streams_in_use falls back to 0 when the proxy closes the upstream body, which may be
	// just after the client has read the whole response: only its presence is checked.
	series(t, fams, "muxpool_demux_streams_in_use", "proxy", "front", "target", target)
}

// With two targets each has its own series, and the requests sent to them add up to the
// requests given to the pool.
func TestDemuxCollectorLabelsEachTarget(t *testing.T) {
	p, targets, front := startDemux(t, 2, nil)
	url := serve(t, promstats.NewDemux(p, "front", nil))
	get(t, front+"/", 6)

	fams := scrape(t, url)
	var labelled []string
	var sent float64
	for _, m := range fams["muxpool_demux_requests_sent_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "target" {
				labelled = append(labelled, lp.GetValue())
			}
		}
		sent += m.GetCounter().GetValue()
	}
	slices.Sort(labelled)
	slices.Sort(targets)
	if !slices.Equal(labelled, targets) {
		t.Errorf("requests_sent_total for targets %q, want %q", labelled, targets)
	}
	if given := series(t, fams, "muxpool_demux_requests_total", "proxy", "front").GetCounter().GetValue(); sent != 6 || given != 6 {
		t.Errorf("requests sent %v, given to the pool %v; want 6 and 6", sent, given)
	}
	for _, target := range targets {
		series(t, fams, "muxpool_demux_connections", "target", target, "state", "active")
	}
}

// The queue-wait histogram counts every request the proxy gave its upstream pool, fed by
// Config.QueueWaitObserver with the collector's own Histogram.
func TestDemuxQueueWaitHistogram(t *testing.T) {
	h := promstats.NewHistogram(nil)
	p, _, front := startDemux(t, 1, h)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(promstats.NewDemux(p, "front", h))
	get(t, front+"/", 3)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "muxpool_demux_queue_wait_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 3 {
				t.Errorf("histogram counts %d requests, want 3", n)
			}
			return
		}
	}
	t.Errorf("no muxpool_demux_queue_wait_duration_seconds in %d families", len(mfs))
}
