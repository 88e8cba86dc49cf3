package demux

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// An https:// upstream speaks HTTP/2 over TLS (ALPN h2) and, without frame
// visibility, still never exceeds the advertised stream limit.
func TestHTTPSUpstreamWithinLimit(t *testing.T) {
	var cur, peak, accepts atomic.Int64
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, r.Proto)
	}))
	ts.EnableHTTP2 = true
	ts.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2}
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepts.Add(1)
		}
	}
	ts.Config.ErrorLog = nil
	ts.StartTLS()
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	f := newFront(t, Config{
		Upstream:  "https://" + strings.TrimPrefix(ts.URL, "https://"),
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
	})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := f.get(t, "/"); code != 200 || body != "HTTP/2.0" {
				t.Errorf("got %d %q", code, body)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Errorf("peak concurrent streams %d, advertised 2", p)
	}
	if a := accepts.Load(); a != 1 {
		t.Errorf("backend conns %d, want 1", a)
	}
}
