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

// Inverse mode over TLS: HTTP/2 clients (ALPN h2) and HTTP/1.1 clients reach an
// HTTP/1.1 upstream pool through NewServer's protocols, with GuardListener below TLS
// standing aside.
func TestTLSFrontInverseMode(t *testing.T) {
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.Proto+" via "+r.Header.Get("Via"))
	})
	p, err := New(Config{Upstream: "http://" + be.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ts := httptest.NewUnstartedServer(p)
	srv := NewServer("", p)
	srv.TLSConfig = ts.Config.TLSConfig
	ts.Config = srv
	ts.Listener = GuardListener(ts.Listener, srv.MaxHeaderBytes)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	for _, proto := range []string{"h2", "http/1.1"} {
		tr := &http.Transport{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone(), Protocols: new(http.Protocols)}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		if proto == "h2" {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		resp, err := c.Get(ts.URL + "/x")
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "upstream saw HTTP/1.1 via 2 muxpool"
		if proto != "h2" {
			want = "upstream saw HTTP/1.1 via 1.1 muxpool"
		}
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("%s: %d %q, want %q", proto, resp.StatusCode, b, want)
		}
	}
}
