package demux

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Priority 3: an http:// upstream gets a bounded pool of HTTP/1.1 connections (default
// 6), one request per connection at a time, the rest queued FIFO.
func TestHTTP1UpstreamPool(t *testing.T) {
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, r.URL.Query().Get("i"))
	})
	f := newFront(t, Config{Upstream: "http://" + be.addr})
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := f.get(t, "/?i="+strconv.Itoa(i)); code != 200 || body != strconv.Itoa(i) {
				t.Errorf("request %d: %d %q", i, code, body)
			}
		}()
	}
	wg.Wait()
	if got := be.ln.accepts.Load(); got > DefaultMaxConnsHTTP1 {
		t.Errorf("backend accepted %d conns, cap %d", got, DefaultMaxConnsHTTP1)
	}
	if got := be.maxPerConn(); got != 1 {
		t.Errorf("max concurrent requests on one HTTP/1.1 conn = %d", got)
	}
	st := f.p.Stats()
	if st.Conns > DefaultMaxConnsHTTP1 || st.StreamsInUse != 0 || st.Queued != 0 || st.QueueWaits == 0 {
		t.Errorf("stats %+v", st)
	}
}

// For an http:// upstream, a WebSocket-style upgrade works end to end on a dedicated
// HTTP/1.1 connection.
func TestHTTP1UpstreamUpgrade(t *testing.T) {
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
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
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	io.WriteString(c, "hello\n")
	if line, _ := br.ReadString('\n'); line != "echo hello\n" {
		t.Errorf("tunnel echo %q", line)
	}
	c.Close()
	// The pool recovers: a normal request still works.
	if code, _ := f.get(t, "/plain"); code != 400 {
		t.Errorf("after upgrade: %d", code)
	}
}
