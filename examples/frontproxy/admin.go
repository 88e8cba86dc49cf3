package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/muxpool/muxpool/demux"
	"github.com/muxpool/muxpool/promstats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveAdmin serves the operator's endpoints on addr until stop is called:
//   - /metrics: the proxy's muxpool_demux_* metrics in Prometheus text format
//     (promstats.Demux, with queueWait as its queue-wait histogram), plus Go's
//     runtime and process metrics;
//   - /healthz: 200 "ok" while some upstream target takes requests (not ejected or
//     gone), else 503;
//   - /stats: p.Stats() as JSON, with a target per upstream address.
func serveAdmin(addr string, p *demux.Proxy, queueWait *promstats.Histogram, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(promstats.NewDemux(p, "frontproxy", queueWait),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !healthy(p.Stats()) {
			http.Error(w, "no upstream target takes requests", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(p.Stats())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener", "err", err)
		}
	}()
	log.Info("admin listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// healthy reports whether some target takes requests; before any target is known
// (a name not resolved yet) the proxy counts as healthy.
func healthy(st demux.Stats) bool {
	if len(st.Targets) == 0 {
		return true
	}
	for _, t := range st.Targets {
		if !t.Ejected && !t.Gone {
			return true
		}
	}
	return false
}
