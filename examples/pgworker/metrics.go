package main

import (
	"net"
	"net/http"
	"time"

	"github.com/muxpool/muxpool/pool/pgpool"
	"github.com/muxpool/muxpool/promstats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics serves the pool's muxpool_pool_* metrics in Prometheus text format at
// http://<addr>/metrics (promstats.PgPool, with acquire as its acquire-time
// histogram; give the same Histogram to the pool's Config.AcquireObserver) until
// stop is called. It returns the address it listens on.
func serveMetrics(addr string, p *pgpool.Pool, acquire *promstats.Histogram) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(promstats.NewPgPool(p, "pgworker", acquire))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln) // http.ErrServerClosed once stopped
	}()
	return ln.Addr().String(), func() { srv.Close(); <-done }, nil
}
