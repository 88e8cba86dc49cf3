package demux

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// The framing check stays in step with the connection after requests with unusual
// heads: a pipelined request with Content-Length and Transfer-Encoding behind them
// never reaches the upstream. A first request that offers only h2c is served as an
// ordinary request; being an upgrade request it also ends the connection.
func TestFramingInStepAfterOddHeads(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	const smuggle = "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	for name, first := range map[string]string{
		// Only h2c is offered, which is never honoured: an ordinary request.
		"h2c-only-upgrade": "GET /first HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c/1\r\n\r\n",
		"h2c-twice":        "GET /first HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, h2c\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, first+smuggle)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first response: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("first request: status %d", resp.StatusCode)
			}
			resp, err = http.ReadResponse(br, nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("CL+TE after %s: status %d, want 400", name, resp.StatusCode)
				}
			}
			mu.Lock()
			n := hits["/smuggled"]
			delete(hits, "/smuggled")
			mu.Unlock()
			if n != 0 {
				t.Errorf("CL+TE request after %s reached the upstream", name)
			}
		})
	}
}

// An HTTP/1.1 upgrade whose Connection or Upgrade field is split over several lines is
// an upgrade for the proxy (it tunnels it), and the framing check passes the tunnel's
// bytes through: it does not hold them back as an unfinished request head.
func TestUpgradeOverSeveralLinesTunnels(t *testing.T) {
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	})
	f := newFront(t, Config{Upstream: "http://" + be.addr})
	for name, head := range map[string]string{
		"connection-twice": "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n\r\n",
		"upgrade-twice":    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, head)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			io.WriteString(c, "hello\n")
			if line, err := br.ReadString('\n'); line != "echo hello\n" {
				t.Errorf("tunnel echo %q (%v)", line, err)
			}
		})
	}
}

// A 101 that ReverseProxy refuses to tunnel (the upstream switched to another
// protocol than the Upgrade value the client sent) must still close the upstream
// connection: ReverseProxy's handleUpgradeResponse answers 502 without closing the
// response body on that path, and after a 101 that body owns the TCP connection, so
// every refused switch left one upstream connection open for good, outside the pool's
// count and cap.
func TestReviewRefusedSwitchClosesUpstreamConn(t *testing.T) {
	var ended sync.WaitGroup
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			io.WriteString(w, "plain")
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer ended.Done()
		defer c.Close()
		// A WebSocket server that accepts any Upgrade list containing "websocket".
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, brw) // until the proxy closes the connection
	})
	f := newFront(t, Config{Upstream: "http://" + be.addr, MaxConns: 1, QueueTimeout: time.Second})
	const n = 2
	ended.Add(n)
	for range n {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo, websocket\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("mismatched switch: status %d, want 502", resp.StatusCode)
		}
	}
	done := make(chan struct{})
	go func() { ended.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Errorf("upstream connections of refused switches still open")
		ended.Wait() // their read deadline ends them
	}
	if code, body := f.get(t, "/plain"); code != 200 || body != "plain" {
		t.Errorf("after refused switches: %d %q", code, body)
	}
}

// A streaming upload whose upstream answers before reading the body (full duplex:
// headers first, then the body is consumed) must reach the upstream intact. Go's
// HTTP/1.1 server, unless full duplex is enabled, discards the rest of the request
// body when the handler writes its response header, so the upstream got a silently
// truncated body.
func TestReviewFullDuplexUploadIntact(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d %v", n, err)
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	_, b := postTrickle(t, f, "/up", strings.Repeat("x", 1000), 10, 10*time.Millisecond)
	if b != "got 10000 <nil>" {
		t.Errorf("upstream saw %q, want the whole 10000-byte body", b)
	}
}

// An upstream that answers without reading the request body while the client is
// still sending it: the client gets the response at once, the upstream stream is
// freed (it was held until the client sent more, so with the peer's limit of one
// stream every other request got 503), and the unread rest of the body is never
// parsed as a request on a kept-alive connection.
func TestReviewEarlyResponseFreesStream(t *testing.T) {
	var smuggled atomic.Int64
	be := newBackend(t, 1, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/smuggled" {
			smuggled.Add(1)
		}
		io.WriteString(w, "ok")
	})
	var srvLog panicLog
	// Streamed, not buffered: the upload must still be open when the response comes.
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, QueueTimeout: 3 * time.Second, RequestBodyBuffer: -1},
		func(s *http.Server) { s.ErrorLog = log.New(&srvLog, "", 0) })
	inner := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nabc", 3+len(inner))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response while the upload is open: %v (stats %+v)", err, f.p.Stats())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("early response %d %q", resp.StatusCode, b)
	}
	// The rest of the body must not become a request.
	firstClose := resp.Close
	io.WriteString(c, inner)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		resp.Body.Close()
		t.Errorf("the unread body was served as a request: %d", resp.StatusCode)
	} else if !firstClose {
		t.Errorf("the connection closed (%v) without Connection: close on the response", err)
	}
	start := time.Now()
	if code, body := f.get(t, "/next"); code != 200 || body != "ok" {
		t.Errorf("next request: %d %q after %v (stats %+v)", code, body, time.Since(start), f.p.Stats())
	}
	if n := smuggled.Load(); n != 0 {
		t.Errorf("smuggled request reached the upstream")
	}
	if srvLog.panicked.Load() {
		t.Errorf("the front server panicked")
	}
}

// On the HTTP/1.1 upgrade path (http:// upstream), the dedicated upstream connection
// gets the WebSocket upgrade, but neither "h2c" in Upgrade nor an HTTP2-Settings
// field, which ReverseProxy does not know as connection-specific.
func TestReviewUpgradeToH1DropsH2cAndSettings(t *testing.T) {
	seen := make(chan http.Header, 1)
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
	})
	f := newFront(t, Config{Upstream: "http://" + be.addr})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d, want 101", resp.StatusCode)
	}
	select {
	case h := <-seen:
		if got := h.Values("Upgrade"); len(got) != 1 || got[0] != "websocket" {
			t.Errorf("upstream Upgrade %q, want only websocket", got)
		}
		if v, ok := h["Http2-Settings"]; ok {
			t.Errorf("HTTP2-Settings %q crossed the proxy", v)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("upgrade never reached the upstream")
	}
}

// panicLog is an http.Server ErrorLog that notes a recovered handler panic.
type panicLog struct{ panicked atomic.Bool }

func (l *panicLog) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "panic serving") {
		l.panicked.Store(true)
	}
	return len(p), nil
}

// flushOnlyWriter is middleware's ResponseWriter that offers Flush but hides the
// connection (no Unwrap), as much older middleware does.
type flushOnlyWriter struct{ http.ResponseWriter }

func (w flushOnlyWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// Behind such middleware the proxy cannot interrupt a client-body read that is in
// flight when the upstream has answered; the client must still get the response at
// once instead of waiting until it sends more.
func TestReviewEarlyResponseBehindMiddleware(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, RequestBodyBuffer: -1}, func(s *http.Server) {
		h := s.Handler
		s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(flushOnlyWriter{w}, r) })
	})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response while the upload is open: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("early response %d %q", resp.StatusCode, b)
	}
}

// ResponseHeaderTimeout counts from the end of the request, as its documentation (and
// net/http's Transport field of that name) says: a slow upload the upstream reads as it
// comes must not be cut off with 504 while it is still being sent.
func TestReviewResponseHeaderTimeoutAfterUpload(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "got %d", n)
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, ResponseHeaderTimeout: 200 * time.Millisecond})
	code, b := postTrickle(t, f, "/slow-upload", "0123456789", 8, 60*time.Millisecond)
	if code != 200 || b != "got 80" {
		t.Errorf("slow upload: %d %q, want 200 \"got 80\"", code, b)
	}
}

// A SETTINGS frame may carry any number of parameters (RFC 9113 §6.5.1; repeated and
// unknown identifiers included). The sniffer kept only the first 32, so a
// MAX_CONCURRENT_STREAMS after them was missed and the pool assumed
// MaxStreamsPerConn: it kept dispatching to a full connection (Reserve refusals)
// instead of dialing another.
func TestReviewSnifferLongSettings(t *testing.T) {
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, nil)
	var params []http2.Setting
	for i := range 40 {
		params = append(params, http2.Setting{ID: http2.SettingID(0x0a0a + 0x1010*(i%4)), Val: uint32(i)})
	}
	params = append(params, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 2})
	fr.WriteSettings(params...)
	for _, step := range []int{1, 5, 6, 7, 64, wire.Len()} {
		rec := &sniffRecorder{}
		s := &frameSniffer{Conn: emptyConn{}, ev: rec}
		for b := wire.Bytes(); len(b) > 0; {
			n := min(step, len(b))
			s.scan(b[:n])
			b = b[n:]
		}
		s.Read(nil)
		if got := strings.Join(rec.events, " "); got != "max=2" {
			t.Errorf("step %d: settings events %q, want \"max=2\"", step, got)
		}
	}
}

// On an HTTP/2 front, "Connection: close" on a response makes Go's server shut the
// whole client connection down (GOAWAY), every other stream's connection too; a 413
// for one stream's body must not do that.
func TestReviewH2Front413KeepsConnection(t *testing.T) {
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	f := newFront(t, Config{Upstream: "h2c://" + be.addr, MaxRequestBodyBytes: 1 << 10})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Post(f.url+"/big", "text/plain", strings.NewReader(strings.Repeat("x", 64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/small", nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !reused {
		t.Errorf("after a 413 on HTTP/2: status %d, connection reused %v", resp.StatusCode, reused)
	}
}

// postTrickle POSTs n copies of piece to path through f, gap apart, as a chunked body, and
// returns the response's status and body.
func postTrickle(t *testing.T, f *front, path, piece string, n int, gap time.Duration) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		for range n {
			pw.Write([]byte(piece))
			time.Sleep(gap)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", f.url+path, pr)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}
