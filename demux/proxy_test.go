package demux

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewRejectsBadConfig(t *testing.T) {
	for _, up := range []string{"", "ftp://x:1", "h2c://", "http://u@x:1", "h2c://x:1?q=1", "h2c://x:1#f"} {
		_, err := New(Config{Upstream: up})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Upstream" {
			t.Errorf("Upstream %q: err %v, want *ConfigError for Upstream", up, err)
		}
	}
	for field, cfg := range map[string]Config{
		"MaxConns":               {MaxConns: -1},
		"MaxQueued":              {MaxQueued: -1},
		"QueueTimeout":           {QueueTimeout: -time.Second},
		"DialTimeout":            {DialTimeout: -time.Second},
		"PingTimeout":            {PingTimeout: -time.Second},
		"MaxResponseHeaderBytes": {MaxResponseHeaderBytes: -1},
	} {
		cfg.Upstream = "h2c://x:1"
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("negative %s: err %v, want *ConfigError for %s", field, err, field)
		}
	}
	if p, err := New(Config{Upstream: "h2c://x:1", PingInterval: -1}); err != nil {
		t.Errorf("negative PingInterval (no health checks): %v", err)
	} else {
		p.Close()
	}
	p, err := New(Config{Upstream: "http://x"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.cfg.MaxConns != DefaultMaxConnsHTTP1 || p.up.name != "x:80" {
		t.Errorf("http defaults: MaxConns %d addr %q", p.cfg.MaxConns, p.up.name)
	}
	for _, ups := range [][]string{{"h2c://a:1", "http://b:1"}, {"h2c://a:1/v1", "h2c://b:1/v2"}, {"h2c://a:1", "gopher://b"}} {
		_, err := New(Config{Upstreams: ups})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Upstreams" {
			t.Errorf("Upstreams %q: err %v, want *ConfigError for Upstreams", ups, err)
		}
	}
}

func TestErrorsAreNetErrors(t *testing.T) {
	for _, err := range []error{ErrQueueTimeout, ErrResponseHeaderTimeout} {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%v is not a net.Error timeout", err)
		}
	}
}

// An unreachable upstream fails queued requests with 502 at once, not at QueueTimeout.
func TestDialFailure502(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	f := newFront(t, Config{Upstream: "h2c://" + addr, QueueTimeout: 10 * time.Second})
	start := time.Now()
	if code, _ := f.get(t, "/"); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dial failure took %v to surface", d)
	}
	if st := f.p.Stats(); st.DialErrors == 0 {
		t.Errorf("DialErrors = 0")
	}
}

// Config.ErrorHandler writes the failure response and sees the typed cause.
func TestErrorHandlerSeesTypedError(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	got := make(chan error, 1)
	f := newFront(t, Config{Upstream: "h2c://" + addr, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		got <- err
		http.Error(w, "upstream down", http.StatusServiceUnavailable)
	}})
	if code, body := f.get(t, "/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "upstream down") {
		t.Errorf("got %d %q, want the ErrorHandler's 503", code, body)
	}
	var de *DialError
	if err := <-got; !errors.As(err, &de) || de.Addr != addr {
		t.Errorf("ErrorHandler got %v, want a *DialError for %s", err, addr)
	}
}

// ResponseHeaderTimeout bounds the wait for headers (504); bodies stay untimed.
func TestResponseHeaderTimeout504(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-headers" {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		time.Sleep(300 * time.Millisecond) // body slower than the header timeout
		io.WriteString(w, "late body")
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, ResponseHeaderTimeout: 150 * time.Millisecond})
	if code, _ := f.get(t, "/slow-headers"); code != http.StatusGatewayTimeout {
		t.Errorf("slow headers: %d, want 504", code)
	}
	if code, body := f.get(t, "/slow-body"); code != 200 || body != "late body" {
		t.Errorf("slow body: %d %q", code, body)
	}
}

// MaxRequestBodyBytes turns an oversized upload into 413.
func TestRequestBodyLimit413(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, MaxRequestBodyBytes: 1 << 10})
	resp, err := f.client.Post(f.url+"/", "text/plain", io.NopCloser(strings.NewReader(strings.Repeat("x", 64<<10))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
	if code, _ := f.get(t, "/small"); code != 200 {
		t.Errorf("small request after 413: %d", code)
	}
}

// After Close, requests get 503 and no upstream connection remains.
func TestCloseThen503(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	if code, _ := f.get(t, "/"); code != 200 {
		t.Fatalf("before Close: %d", code)
	}
	f.p.Close()
	if code, _ := f.get(t, "/"); code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", code)
	}
	if st := f.p.Stats(); st.Conns != 0 {
		t.Errorf("conns after Close: %d", st.Conns)
	}
}

// An upstream that does not speak h2c (here HTTP/1.1 only) fails fast with 502
// instead of being redialled until QueueTimeout.
func TestWrongProtocolUpstream502(t *testing.T) {
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, QueueTimeout: 10 * time.Second})
	start := time.Now()
	if code, _ := f.get(t, "/"); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	if st := f.p.Stats(); st.Dials > 2 {
		t.Errorf("%d dials for one request", st.Dials)
	}
}

// Expect: 100-continue gets exactly one 100 Continue: the front answers it and the
// field is not forwarded (the upstream would relay a second one).
func TestExpectContinueOnce(t *testing.T) {
	var sawExpect atomic.Bool
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		sawExpect.Store(r.Header.Get("Expect") != "")
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("first line %q, want 100 Continue", line)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Errorf("final response %d %q (a second 100 would show here)", resp.StatusCode, b)
	}
	if sawExpect.Load() {
		t.Error("Expect forwarded upstream")
	}
}
