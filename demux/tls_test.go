package demux

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
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
		MaxConns:  1,
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

// tlsFront serves p with NewServer's ServeTLS on loopback, with httptest's test
// certificate; it returns the base URL and a client TLS config that trusts it.
func tlsFront(t *testing.T, p *Proxy) (string, *tls.Config) {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	certs := ts.TLS.Certificates
	clientTLS := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	ts.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(l.Addr().String(), p)
	srv.TLSConfig = &tls.Config{Certificates: certs}
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return "https://" + l.Addr().String(), clientTLS
}

// Inverse mode over TLS: HTTP/2 clients (ALPN h2) and HTTP/1.1 clients reach an
// HTTP/1.1 upstream pool through ServeTLS, and the upstream learns the client used
// TLS (X-Forwarded-Proto: https) on both protocols.
func TestTLSFrontInverseMode(t *testing.T) {
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.Proto+" via "+r.Header.Get("Via")+" proto "+r.Header.Get("X-Forwarded-Proto"))
	})
	p, err := New(Config{Upstream: "http://" + be.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	url, clientTLS := tlsFront(t, p)
	for _, proto := range []string{"h2", "http/1.1"} {
		tr := &http.Transport{TLSClientConfig: clientTLS.Clone(), Protocols: new(http.Protocols)}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		if proto == "h2" {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		resp, err := c.Get(url + "/x")
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "upstream saw HTTP/1.1 via 2 muxpool proto https"
		if proto != "h2" {
			want = "upstream saw HTTP/1.1 via 1.1 muxpool proto https"
		}
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("%s: %d %q, want %q", proto, resp.StatusCode, b, want)
		}
	}
}
