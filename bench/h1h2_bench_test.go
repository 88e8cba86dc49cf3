package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpool/muxpool/internal/netem"
)

// h1h2Clients is how many requests the benchmark keeps in flight: more than
// six, so the six-connection client queues and the multiplexed one does not.
const h1h2Clients = 60

// h1h2Size is the response body size in bytes.
const h1h2Size = 1024

// BenchmarkH1vsH2 compares a browser-like client with six HTTP/1.1
// connections (proto=h1x6) against one h2c connection (proto=h2x1) to the
// same backend, 60 requests in flight, 1 KiB responses, with the round trip
// added by a netem relay between client and backend. One op is one request;
// req/s is the throughput and conns the TCP connections the relay accepted.
func BenchmarkH1vsH2(b *testing.B) {
	for _, rtt := range []time.Duration{0, 10 * time.Millisecond, 40 * time.Millisecond} {
		for _, proto := range []string{"h1x6", "h2x1"} {
			b.Run(fmt.Sprintf("rtt=%dms/proto=%s", rtt.Milliseconds(), proto), func(b *testing.B) {
				benchH1H2(b, rtt, proto)
			})
		}
	}
}

func benchH1H2(b *testing.B, rtt time.Duration, proto string) {
	addr, stopBackend := h1h2Backend(b)
	defer stopBackend()
	relay, err := netem.Listen(addr, netem.Config{Delay: rtt / 2})
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()

	var rt http.RoundTripper
	var protos http.Protocols
	switch proto {
	case "h1x6":
		protos.SetHTTP1(true)
		tr := &http.Transport{Protocols: &protos, MaxConnsPerHost: 6, MaxIdleConnsPerHost: 6}
		defer tr.CloseIdleConnections()
		rt = tr
	case "h2x1":
		protos.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &protos}
		// NewClientConn pins exactly one connection; Transport's own
		// pool may dial extra h2 connections under load.
		cc, err := tr.NewClientConn(context.Background(), "http", relay.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		rt = cc
	}
	url := "http://" + relay.Addr().String() + "/"

	h1h2Drive(b, rt, url, h1h2Clients) // warm: open every connection before timing
	b.ResetTimer()
	start := time.Now()
	h1h2Drive(b, rt, url, b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(relay.Accepted()), "conns")
}

// h1h2Drive performs n GETs with h1h2Clients workers, failing b on any error.
func h1h2Drive(b *testing.B, rt http.RoundTripper, url string, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(h1h2Clients, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := h1h2Get(rt, url); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func h1h2Get(rt http.RoundTripper, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && n != h1h2Size {
		err = fmt.Errorf("got %d body bytes, want %d", n, h1h2Size)
	}
	return err
}

// h1h2Backend serves HTTP/1.1 and h2c on one loopback port, answering every
// request with h1h2Size bytes.
func h1h2Backend(b *testing.B) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, h1h2Size)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		}),
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	return ln.Addr().String(), func() { srv.Close(); <-done }
}
