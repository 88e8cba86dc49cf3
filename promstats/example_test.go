package promstats_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/muxpool/muxpool/pool"
	"github.com/muxpool/muxpool/promstats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A pool's metrics, with the acquire histogram fed by the pool's AcquireObserver, scraped
// through promhttp as Prometheus would. In a program, serve the handler on /metrics.
func ExamplePool() {
	acquire := promstats.NewHistogram(nil) // DefaultBuckets
	p, err := pool.New(pool.Config[string]{
		Constructor:     func(context.Context) (string, error) { return "conn", nil },
		MaxSize:         4,
		AcquireObserver: acquire,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(promstats.NewPool(p, "upstream", acquire))

	for range 3 {
		r, err := p.Acquire(context.Background())
		if err != nil {
			panic(err)
		}
		r.Release()
	}

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for sc := bufio.NewScanner(rec.Body); sc.Scan(); {
		line := sc.Text()
		for _, prefix := range []string{
			"muxpool_pool_acquire_total",
			"muxpool_pool_acquire_duration_seconds_count",
			"muxpool_pool_construct_total",
			"muxpool_pool_resources",
			"# TYPE muxpool_pool_acquire_duration_seconds ",
		} {
			if strings.HasPrefix(line, prefix) {
				fmt.Println(line)
			}
		}
	}
	// Output:
	// # TYPE muxpool_pool_acquire_duration_seconds histogram
	// muxpool_pool_acquire_duration_seconds_count{pool="upstream"} 3
	// muxpool_pool_acquire_total{pool="upstream"} 3
	// muxpool_pool_construct_total{pool="upstream",result="error"} 0
	// muxpool_pool_construct_total{pool="upstream",result="success"} 1
	// muxpool_pool_resources{pool="upstream",state="acquired"} 0
	// muxpool_pool_resources{pool="upstream",state="constructing"} 0
	// muxpool_pool_resources{pool="upstream",state="destroying"} 0
	// muxpool_pool_resources{pool="upstream",state="idle"} 1
}
