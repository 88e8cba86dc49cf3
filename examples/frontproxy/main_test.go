package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a log sink safe for the proxy's goroutines and the test's polling.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunProxiesRequest runs the command against an h2c backend, sends one HTTP/1.1
// request through it, checks the response and the access-log line, and stops it.
func TestRunProxiesRequest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello via "+r.Proto+" "+r.Header.Get("Via"))
	}), Protocols: new(http.Protocols)}
	backend.Protocols.SetUnencryptedHTTP2(true)
	go backend.Serve(l)
	defer backend.Close()

	addr, logs, stop := startRun(t, "-listen", "127.0.0.1:0", "-upstream", "h2c://"+l.Addr().String(), "-max-conns", "1")
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/hi")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello via HTTP/2.0 1.1 muxpool" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	tr.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}
	log := logs.String()
	line := ""
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=request") {
			line = l
		}
	}
	for _, want := range []string{"path=/hi", "status=200", "bytes=30", "upstream_conn=1", "stream=1", "queue_wait="} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %q", line, want)
		}
	}
}

// startRun runs the command with args until the returned stop is called (which
// returns run's error), and waits for its "listening" line to learn its address.
func startRun(t *testing.T, args ...string) (addr string, logs *syncBuffer, stop func() error) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs) }()
	stop = func() error { cancel(); return <-done }
	addrRe := regexp.MustCompile(`msg=listening addr=(\S+)`)
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(5 * time.Millisecond) {
		if m := addrRe.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("proxy did not start: %s", logs.String())
		}
	}
	return addr, logs, stop
}

// README's frontproxy line works on a fresh machine: -demo-backend needs no app.
func TestRunDemoBackendWorksAlone(t *testing.T) {
	addr, _, stop := startRun(t, "-listen", "127.0.0.1:0", "-demo-backend")
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/x")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Errorf("run: %v", err)
	}
	if want := "hello from the demo backend: GET /x over HTTP/2.0, via \"1.1 muxpool\"\n"; resp.StatusCode != 200 || string(body) != want {
		t.Errorf("got %d %q, want %q", resp.StatusCode, body, want)
	}
}

func TestRunRejectsBadUpstream(t *testing.T) {
	if err := run(context.Background(), []string{"-upstream", "ftp://x:1"}, io.Discard); err == nil {
		t.Error("ftp upstream accepted")
	}
}

// Several upstreams (a comma list and a repeated flag) share the load, and the admin
// listener reports health and per-target stats.
func TestRunSeveralUpstreamsAndAdmin(t *testing.T) {
	var addrs []string
	for _, name := range []string{"one", "two"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		be := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}), Protocols: new(http.Protocols)}
		be.Protocols.SetUnencryptedHTTP2(true)
		go be.Serve(l)
		defer be.Close()
		addrs = append(addrs, "h2c://"+l.Addr().String())
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := al.Addr().String()
	al.Close()
	addr, _, stop := startRun(t, "-listen", "127.0.0.1:0", "-upstream", addrs[0], "-upstream", addrs[1]+",", "-admin", adminAddr)
	defer stop()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	seen := map[string]bool{}
	for range 50 {
		if code, body := get("http://" + addr + "/"); code == 200 {
			seen[body] = true
		}
	}
	if !seen["one"] || !seen["two"] {
		t.Errorf("answers from %v, want both upstreams", seen)
	}
	if code, body := get("http://" + adminAddr + "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("http://" + adminAddr + "/metrics"); code != 200 ||
		!strings.Contains(body, "muxpool_demux_requests_total{proxy=\"frontproxy\"} 50") ||
		!strings.Contains(body, "muxpool_demux_queue_wait_duration_seconds_count{proxy=\"frontproxy\"} 50") {
		t.Errorf("/metrics: %d, lacks the proxy's requests or queue-wait histogram:\n%s", code, body)
	}
	code, body := get("http://" + adminAddr + "/stats")
	var st struct{ Targets []struct{ Addr string } }
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Targets) != 2 {
		t.Errorf("/stats: %d %v %s", code, err, body)
	}
}
