package promstats_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/muxpool/muxpool/mux"
	"github.com/muxpool/muxpool/promstats"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server = <-accepted; server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}

// A Mux collector reports each session in its set: one stream carrying 5 bytes each way, a
// Ping whose RTT is in the histogram and the smoothed RTT; ended sessions leave the set.
func TestMuxCollectorScrapesKnownActivity(t *testing.T) {
	rtt := promstats.NewHistogram(nil)
	cfg := mux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.RTTObserver = rtt
	cc, sc := tcpPair(t)
	client, err := mux.Client(cc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := mux.Server(sc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
		client.Wait()
		server.Wait()
	})
	set := promstats.NewMux("tunnel", rtt)
	set.Add("client", client)
	set.Add("server", server)
	url := serve(t, set)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	echoed := make(chan error, 1)
	go func() { // the server echoes one stream
		st, err := server.AcceptStream(ctx)
		if err != nil {
			echoed <- err
			return
		}
		defer st.Close()
		_, err = io.Copy(st, st)
		echoed <- err
	}()
	st, err := client.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	if got, err := io.ReadAll(st); err != nil || string(got) != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	st.Close()
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
	if _, err := client.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	compare(t, url, `
# HELP muxpool_mux_sessions Sessions in the set.
# TYPE muxpool_mux_sessions gauge
muxpool_mux_sessions{mux="tunnel"} 2
# HELP muxpool_mux_streams_opened_total Streams this side opened.
# TYPE muxpool_mux_streams_opened_total counter
muxpool_mux_streams_opened_total{mux="tunnel",session="client"} 1
muxpool_mux_streams_opened_total{mux="tunnel",session="server"} 0
# HELP muxpool_mux_streams_accepted_total Streams the peer opened that were handed to AcceptStream.
# TYPE muxpool_mux_streams_accepted_total counter
muxpool_mux_streams_accepted_total{mux="tunnel",session="client"} 0
muxpool_mux_streams_accepted_total{mux="tunnel",session="server"} 1
# HELP muxpool_mux_streams_refused_total Streams the peer opened that were refused with RST (backlog, limits, GoAway, memory).
# TYPE muxpool_mux_streams_refused_total counter
muxpool_mux_streams_refused_total{mux="tunnel",session="client"} 0
muxpool_mux_streams_refused_total{mux="tunnel",session="server"} 0
# HELP muxpool_mux_data_bytes_total Data frame payload bytes, by direction: sent or received.
# TYPE muxpool_mux_data_bytes_total counter
muxpool_mux_data_bytes_total{direction="received",mux="tunnel",session="client"} 5
muxpool_mux_data_bytes_total{direction="received",mux="tunnel",session="server"} 5
muxpool_mux_data_bytes_total{direction="sent",mux="tunnel",session="client"} 5
muxpool_mux_data_bytes_total{direction="sent",mux="tunnel",session="server"} 5
# HELP muxpool_mux_resets_received_total RST frames received.
# TYPE muxpool_mux_resets_received_total counter
muxpool_mux_resets_received_total{mux="tunnel",session="client"} 0
muxpool_mux_resets_received_total{mux="tunnel",session="server"} 0
# HELP muxpool_mux_memory_limit_bytes The session's memory budget (mux.Config.MaxSessionMemory).
# TYPE muxpool_mux_memory_limit_bytes gauge
muxpool_mux_memory_limit_bytes{mux="tunnel",session="client"} 2.68435456e+08
muxpool_mux_memory_limit_bytes{mux="tunnel",session="server"} 2.68435456e+08
`)

	fams := scrape(t, url)
	for _, side := range []string{"client", "server"} {
		for _, dir := range []string{"sent", "received"} {
			if n := series(t, fams, "muxpool_mux_frames_total", "session", side, "direction", dir).GetCounter().GetValue(); n < 2 {
				t.Errorf("%s %s %v frames, want at least the stream's data and FIN", side, dir, n)
			}
		}
	}
	if v := series(t, fams, "muxpool_mux_smoothed_rtt_seconds", "session", "client").GetGauge().GetValue(); v <= 0 {
		t.Errorf("client smoothed RTT %v after a Ping", v)
	}
	if h := series(t, fams, "muxpool_mux_rtt_seconds", "mux", "tunnel").GetHistogram(); h.GetSampleCount() < 1 || h.GetSampleSum() <= 0 {
		t.Errorf("RTT histogram: %d samples summing to %vs after a Ping", h.GetSampleCount(), h.GetSampleSum())
	}

	// Sessions that end leave the set at the next scrape; Remove takes one out at once.
	set.Remove("client")
	server.Close()
	<-server.Done()
	compare(t, url, `
# HELP muxpool_mux_sessions Sessions in the set.
# TYPE muxpool_mux_sessions gauge
muxpool_mux_sessions{mux="tunnel"} 0
`)
	if _, ok := scrape(t, url)["muxpool_mux_streams_opened_total"]; ok {
		t.Error("per-session series after every session left the set")
	}
}
