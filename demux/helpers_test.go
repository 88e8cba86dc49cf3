package demux

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// net/http's connection goroutine waits 500 ms (rstAvoidanceDelay) before closing
	// a connection whose request it could not read to the end (431, a failed body), so
	// that the client gets the response; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// countingListener counts accepted TCP connections and can sever them all.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// sever closes every accepted connection (an upstream crash as seen by the proxy).
func (l *countingListener) sever() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

type connKey struct{}

// backend is an upstream test server: h2c (or HTTP/1.1) on loopback, counting TCP
// accepts, server-side HTTP/2 errors and concurrent handlers per connection.
type backend struct {
	t        testing.TB
	srv      *http.Server
	ln       *countingListener
	addr     string
	h2errs   atomic.Int64
	errKinds sync.Map

	mu      sync.Mutex
	active  map[net.Conn]int
	maxPer  int
	maxConn int
}

// newBackend starts h on loopback. maxStreams > 0 sets the advertised
// SETTINGS_MAX_CONCURRENT_STREAMS; h1 selects HTTP/1.1 instead of h2c.
func newBackend(t testing.TB, maxStreams int, h1 bool, h http.HandlerFunc, opts ...func(*http.Server)) *backend {
	t.Helper()
	return newBackendOn(t, "127.0.0.1:0", maxStreams, h1, h, opts...)
}

// newBackendAt starts an h2c backend on a given address (a restarted upstream).
func newBackendAt(t testing.TB, addr string, h http.HandlerFunc) *backend {
	t.Helper()
	return newBackendOn(t, addr, 0, false, h)
}

func newBackendOn(t testing.TB, addr string, maxStreams int, h1 bool, h http.HandlerFunc, opts ...func(*http.Server)) *backend {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{t: t, ln: &countingListener{Listener: l}, addr: l.Addr().String(), active: map[net.Conn]int{}}
	b.srv = &http.Server{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.track(w, r, h) }),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		Protocols:   new(http.Protocols),
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams, CountError: func(k string) {
			b.h2errs.Add(1)
			b.errKinds.Store(k, true)
		}},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if h1 {
		b.srv.Protocols.SetHTTP1(true)
	} else {
		b.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	for _, o := range opts {
		o(b.srv)
	}
	go b.srv.Serve(b.ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *backend) track(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	b.mu.Lock()
	b.active[c]++
	b.maxPer = max(b.maxPer, b.active[c])
	n := 0
	for _, v := range b.active {
		if v > 0 {
			n++
		}
	}
	b.maxConn = max(b.maxConn, n)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.active[c]--
		b.mu.Unlock()
	}()
	h(w, r)
}

func (b *backend) maxPerConn() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxPer
}

func (b *backend) errKindsString() string {
	var ks []string
	b.errKinds.Range(func(k, _ any) bool { ks = append(ks, k.(string)); return true })
	return strings.Join(ks, ",")
}

// front is a Proxy served by NewServer on loopback, and an HTTP/1.1-only client.
type front struct {
	p      *Proxy
	srv    *Server
	url    string
	addr   string
	client *http.Client
	tr     *http.Transport
}

func newFront(t testing.TB, cfg Config, opts ...func(*http.Server)) *front {
	t.Helper()
	if cfg.Logger == nil && testing.Verbose() {
		tw := &testWriter{t: t}
		t.Cleanup(func() { tw.done.Store(true) }) // registered first: runs last
		cfg.Logger = slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(l.Addr().String(), p)
	srv.ReadHeaderTimeout = 2 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0) // expected protocol errors from hostile-input tests
	for _, o := range opts {
		o(srv.Server)
	}
	go srv.Serve(l)
	tr := &http.Transport{Protocols: new(http.Protocols), MaxConnsPerHost: 0, MaxIdleConnsPerHost: 256, DisableCompression: true}
	tr.Protocols.SetHTTP1(true)
	f := &front{p: p, srv: srv, url: "http://" + l.Addr().String(), addr: l.Addr().String(), tr: tr,
		client: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		p.Close()
	})
	return f
}

// testWriter sends log lines to t.Log until the test's cleanup ends; handler
// goroutines may outlive http.Server.Close.
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// get performs a GET and returns status and body.
func (f *front) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := f.client.Get(f.url + path)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until true or the deadline; it reports failure with msg.
func waitFor(t testing.TB, d time.Duration, msg string, cond func() bool) {
	t.Helper()
	if !waitSoft(d, cond) {
		t.Fatalf("timed out waiting for %s", msg)
	}
}
