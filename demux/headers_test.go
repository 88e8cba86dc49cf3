package demux

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawExchange writes raw bytes to addr and parses the first response. closed reports
// whether the server closed the connection afterwards.
func rawExchange(t *testing.T, addr, raw string) (resp *http.Response, body string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errorsAs(err, &ne) && ne.Timeout())
	return resp, string(b), closed
}

func errorsAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// Connection-specific fields never cross (RFC 9113 §8.2.2), Upgrade: h2c
// is ignored, X-Forwarded-* are the proxy's own and Via is appended (RFC 9110 §7.6.3).
func TestHopByHopAndForwardingHeaders(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	var host string
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got, host = r.Header.Clone(), r.Host
		mu.Unlock()
		io.WriteString(w, "plain")
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	raw := "GET /h HTTP/1.1\r\n" +
		"Host: example.test\r\n" +
		"Connection: keep-alive, X-Secret, Upgrade, HTTP2-Settings\r\n" +
		"X-Secret: s\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"TE: trailers, deflate\r\n" +
		"Upgrade: h2c\r\n" +
		"HTTP2-Settings: AAMAAABkAAQAAP__\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\n" +
		"X-Forwarded-Host: evil.test\r\n" +
		"X-Forwarded-Proto: https\r\n" +
		"Forwarded: for=6.6.6.6\r\n" +
		"Via: 1.0 other\r\n" +
		"X-Kept: yes\r\n\r\n"
	resp, body, _ := rawExchange(t, f.addr, raw)
	if resp.StatusCode != 200 || body != "plain" {
		t.Fatalf("h2c upgrade request: %d %q, want a plain 200", resp.StatusCode, body)
	}
	if v := resp.Header.Get("Via"); v != "2 muxpool" {
		t.Errorf("response Via %q", v)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Connection", "Upgrade", "Http2-Settings", "Transfer-Encoding", "Forwarded"} {
		if v, ok := got[h]; ok {
			t.Errorf("%s crossed the proxy: %q", h, v)
		}
	}
	want := map[string]string{
		"Te": "trailers", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "example.test",
		"X-Forwarded-Proto": "http", "Via": "1.0 other, 1.1 muxpool", "X-Kept": "yes",
	}
	for k, v := range want {
		if g := strings.Join(got[k], ","); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if host != "example.test" {
		t.Errorf("upstream :authority %q, want the client's Host", host)
	}
}

// WebSocket through an HTTP/2 upstream is a documented 501, never a 502.
func TestWebSocketUpgrade501(t *testing.T) {
	var hits atomic.Int64
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	resp, body, _ := rawExchange(t, f.addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "websocket") {
		t.Errorf("websocket: %d %q, want 501 naming websocket", resp.StatusCode, body)
	}
	if hits.Load() != 0 {
		t.Errorf("upgrade request reached the upstream")
	}
}

// Ambiguous or malformed requests get a 4xx and do not reach the upstream.
func TestMalformedRequestsRejected(t *testing.T) {
	var hits sync.Map // path → true
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, true)
		io.ReadAll(r.Body)
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	for _, tc := range []struct {
		name, raw  string
		want       int
		mustClose  bool
		mayForward bool // headers may reach the upstream before the body proves bad
	}{
		{"conflicting-content-length", "POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, true, false},
		{"bad-chunk-size", "POST /%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, true, true},
		{"bad-header-name", "GET /%s HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, true, false},
		{"bad-header-value", "GET /%s HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400, true, false},
		{"connect", "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", 405, false, false},
		{"oversized-headers", "GET /%s HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(tc.raw, "%s", tc.name, 1)
			resp, _, closed := rawExchange(t, f.addr, raw)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.mustClose && !closed {
				t.Errorf("connection left open after %d", resp.StatusCode)
			}
			if tc.want == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if _, ok := hits.Load("/" + tc.name); ok && !tc.mayForward {
				t.Errorf("request reached the upstream")
			}
		})
	}
	if _, ok := hits.Load("example.test:443"); ok {
		t.Errorf("CONNECT reached the upstream")
	}
}

// The framing check follows pipelined requests: Content-Length and chunked
// bodies (with extensions and trailers) are delimited exactly, so every request in
// the pipeline is answered in order.
func TestPipelinedFramingServedInOrder(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.URL.Path+":"+string(b))
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"+
		"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/cl:hello", "/chunked:abcde", "/plain:"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading response for %s: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, b, want)
		}
	}
}

// A header block the upstream advertises as too large
// (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113 §6.5.2) gets 431, not 502.
func TestUpstreamHeaderListTooLarge431(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {},
		func(s *http.Server) { s.MaxHeaderBytes = 4 << 10 }) // advertised in SETTINGS
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	req, _ := http.NewRequest("GET", f.url+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 16<<10))
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

// A client that sends its header block slowly is cut off by
// ReadHeaderTimeout.
func TestSlowHeadersCutOff(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr}, func(s *http.Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(c) // returns when the server closes
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("slow client held for %v", d)
	}
}
