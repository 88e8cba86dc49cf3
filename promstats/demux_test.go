package promstats_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/muxpool/muxpool/demux"
	"github.com/muxpool/muxpool/promstats"
)

// startDemux runs an h2c backend answering "ok" and a demux proxy in front of it, both on
// loopback, until the test ends. It returns the proxy, its upstream, and its front URL.
func startDemux(t *testing.T) (p *demux.Proxy, upstream, front string) {
	t.Helper()
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Protocols: new(http.Protocols),
	}
	backend.Protocols.SetUnencryptedHTTP2(true)
	backendDone := make(chan error, 1)
	go func() { backendDone <- backend.Serve(bl) }()

	upstream = "h2c://" + bl.Addr().String()
	p, err = demux.New(demux.Config{Upstream: upstream, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := demux.NewServer(fl.Addr().String(), p)
	frontDone := make(chan error, 1)
	go func() { frontDone <- srv.Serve(fl) }()
	t.Cleanup(func() {
		srv.Close()
		p.Close()
		backend.Close()
		for _, done := range []chan error{frontDone, backendDone} {
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Error(err)
			}
		}
	})
	return p, upstream, "http://" + fl.Addr().String()
}

// A Demux collector reports the proxy's upstream pool after three HTTP/1.1 requests carried
// over one h2c connection: three requests, one dial, one active connection, one queue wait (the
// first request's, for the dial), nothing refused, retried or reset.
func TestDemuxCollectorScrapesKnownActivity(t *testing.T) {
	p, upstream, front := startDemux(t)
	url := serve(t, promstats.NewDemux(p, "front", upstream))

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for range 3 {
		resp, err := client.Get(front + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "ok" {
			t.Fatalf("%s %q %v", resp.Status, body, err)
		}
	}

	compare(t, url, `
# HELP muxpool_demux_requests_total Requests given to the upstream pool.
# TYPE muxpool_demux_requests_total counter
muxpool_demux_requests_total{proxy="front",target="`+upstream+`"} 3
# HELP muxpool_demux_dials_total Upstream connection attempts.
# TYPE muxpool_demux_dials_total counter
muxpool_demux_dials_total{proxy="front",target="`+upstream+`"} 1
# HELP muxpool_demux_dial_errors_total Upstream connection attempts that failed.
# TYPE muxpool_demux_dial_errors_total counter
muxpool_demux_dial_errors_total{proxy="front",target="`+upstream+`"} 0
# HELP muxpool_demux_connections Upstream connections by state: dialing (being established), active, and draining (GOAWAY received; no new streams, closed when idle).
# TYPE muxpool_demux_connections gauge
muxpool_demux_connections{proxy="front",state="active",target="`+upstream+`"} 1
muxpool_demux_connections{proxy="front",state="dialing",target="`+upstream+`"} 0
muxpool_demux_connections{proxy="front",state="draining",target="`+upstream+`"} 0
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
# HELP muxpool_demux_retries_total Re-sends of requests the upstream did not process (REFUSED_STREAM, or above a GOAWAY's last stream ID).
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
	series(t, fams, "muxpool_demux_streams_in_use", "proxy", "front")
}
