package demux

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is a scripted h2c server built from Framer/hpack, for upstream behaviour the
// net/http server will not produce on demand (GOAWAY mid-burst, REFUSED_STREAM).
type rawH2 struct {
	ln      net.Listener
	addr    string
	accepts atomic.Int64
	wg      sync.WaitGroup
}

// newRawH2 serves each accepted conn with serve(connIndex, framer, streams) after the
// preface and an initial SETTINGS with maxStreams; streams yields each HEADERS' stream ID.
func newRawH2(t *testing.T, maxStreams uint32, serve func(i int, s *rawConn)) *rawH2 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rawH2{ln: l, addr: l.Addr().String()}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			i := int(r.accepts.Add(1))
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.Close()
				rc, err := newRawConn(c, maxStreams)
				if err != nil {
					return
				}
				serve(i, rc)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); r.wg.Wait() })
	return r
}

type rawConn struct {
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func newRawConn(c net.Conn, maxStreams uint32) (*rawConn, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return nil, io.ErrUnexpectedEOF
	}
	rc := &rawConn{c: c, fr: http2.NewFramer(c, c)}
	rc.enc = hpack.NewEncoder(&rc.buf)
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	return rc, rc.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: maxStreams})
}

// nextHeaders returns the next request's stream ID, answering SETTINGS and PING.
func (rc *rawConn) nextHeaders() (uint32, error) {
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return 0, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				rc.fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			return f.StreamID, nil
		}
	}
}

func (rc *rawConn) respond(id uint32, body string) error {
	rc.buf.Reset()
	rc.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	return rc.fr.WriteData(id, true, []byte(body))
}

// drain reads until the client closes the conn.
func (rc *rawConn) drain() {
	for {
		if _, err := rc.nextHeaders(); err != nil {
			return
		}
	}
}

// A GOAWAY stops new streams on the conn, streams above its last stream
// ID are retried on a new connection, and the stream below it completes.
func TestGoAwayRetriesUnprocessed(t *testing.T) {
	up := newRawH2(t, 10, func(i int, rc *rawConn) {
		if i > 1 {
			for {
				id, err := rc.nextHeaders()
				if err != nil {
					return
				}
				rc.respond(id, "retried")
			}
		}
		a, err := rc.nextHeaders()
		if err != nil {
			return
		}
		b, err := rc.nextHeaders()
		if err != nil {
			return
		}
		rc.fr.WriteGoAway(a, http2.ErrCodeNo, nil)
		rc.respond(a, "first")
		_ = b // never answered: above the GOAWAY's last stream ID
		rc.drain()
	})
	f := newFront(t, Config{Upstream: "h2c://" + up.addr})
	var wg sync.WaitGroup
	bodies := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := f.get(t, "/")
			if code != 200 {
				t.Errorf("request %d: status %d", i, code)
			}
			bodies[i] = body
		}()
	}
	wg.Wait()
	if got := strings.Join(bodies, ","); got != "first,retried" && got != "retried,first" {
		t.Errorf("bodies %q", got)
	}
	st := f.p.Stats()
	if st.GoAways != 1 || st.Retries != 1 || up.accepts.Load() != 2 {
		t.Errorf("goaways %d retries %d accepts %d, want 1 1 2", st.GoAways, st.Retries, up.accepts.Load())
	}
	if code, body := f.get(t, "/later"); code != 200 || body != "retried" {
		t.Errorf("later request: %d %q", code, body)
	}
}

// REFUSED_STREAM (RFC 9113 §8.7: not processed) is retried.
func TestRefusedStreamRetried(t *testing.T) {
	up := newRawH2(t, 10, func(i int, rc *rawConn) {
		id, err := rc.nextHeaders()
		if err != nil {
			return
		}
		rc.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		for {
			id, err := rc.nextHeaders()
			if err != nil {
				return
			}
			rc.respond(id, "ok")
		}
	})
	f := newFront(t, Config{Upstream: "h2c://" + up.addr})
	if code, body := f.get(t, "/"); code != 200 || body != "ok" {
		t.Errorf("got %d %q", code, body)
	}
	if st := f.p.Stats(); st.Retries != 1 || st.Resets != 1 {
		t.Errorf("retries %d resets %d, want 1 1", st.Retries, st.Resets)
	}
}

// An upstream that dies fails the in-flight request with 502; the next
// request gets a new connection and succeeds.
func TestUpstreamDiesInFlight(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			inFlight <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		io.WriteString(w, "alive")
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	done := make(chan int)
	go func() {
		resp, err := f.client.Post(f.url+"/hang", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-inFlight
	be.ln.sever()
	if code := <-done; code != http.StatusBadGateway {
		t.Errorf("in-flight request: %d, want 502", code)
	}
	if code, body := f.get(t, "/after"); code != 200 || body != "alive" {
		t.Errorf("later request: %d %q", code, body)
	}
	if got := be.ln.accepts.Load(); got != 2 {
		t.Errorf("backend accepts %d, want 2", got)
	}
}

// relay forwards TCP to target; blackhole makes existing conns swallow data silently.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	holes  []*atomic.Bool
	wg     sync.WaitGroup
}

func newRelay(t *testing.T, target string) *relay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: l, target: target}
	var conns []net.Conn
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			hole := new(atomic.Bool)
			r.mu.Lock()
			r.holes = append(r.holes, hole)
			conns = append(conns, c, d)
			r.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer r.wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !hole.Load() {
						dst.Write(buf[:n])
					}
					if err != nil {
						dst.Close()
						return
					}
				}
			}
			r.wg.Add(2)
			go pipe(d, c)
			go pipe(c, d)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		r.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) blackhole() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.holes {
		h.Store(true)
	}
}

// A blackholed upstream is detected by PING; the in-flight request fails
// with 502 well before any TCP timeout, and later requests use a new connection.
func TestBlackholeDetectedByPing(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			inFlight <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		io.WriteString(w, "alive")
	})
	rl := newRelay(t, be.addr)
	f := newFront(t, Config{Upstream: "h2c://" + rl.ln.Addr().String(), PingInterval: 150 * time.Millisecond, PingTimeout: 250 * time.Millisecond})
	done := make(chan int)
	start := time.Now()
	go func() {
		resp, err := f.client.Post(f.url+"/hang", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-inFlight
	rl.blackhole()
	code := <-done
	if code != http.StatusBadGateway && code != http.StatusGatewayTimeout {
		t.Errorf("in-flight request: %d, want 502 or 504", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("blackhole detected after %v", d)
	}
	if code, body := f.get(t, "/after"); code != 200 || body != "alive" {
		t.Errorf("later request: %d %q", code, body)
	}
}

// A backend shutting down gracefully sends GOAWAY; the in-flight request
// still completes, the conn takes no new streams, and once a backend listens again
// later requests succeed on a new connection.
func TestGracefulGoAwayFromNetHTTP(t *testing.T) {
	inFlight, finish := make(chan struct{}, 1), make(chan struct{})
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			inFlight <- struct{}{}
			<-finish
		}
		io.WriteString(w, "done "+r.URL.Path)
	}
	be := newBackend(t, 0, false, handler)
	f := newFront(t, Config{Upstream: "h2c://" + be.addr})
	slow := make(chan string, 1)
	go func() { c, b := f.get(t, "/slow"); slow <- strconv.Itoa(c) + " " + b }()
	<-inFlight
	shut := make(chan error, 1)
	go func() { shut <- be.srv.Shutdown(context.Background()) }()
	waitFor(t, 5*time.Second, "GOAWAY seen", func() bool { return f.p.Stats().GoAways == 1 })
	close(finish)
	if got := <-slow; got != "200 done /slow" {
		t.Errorf("in-flight request during graceful GOAWAY: %q", got)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	be2 := newBackendAt(t, be.addr, handler)
	if code, body := f.get(t, "/later"); code != 200 || body != "done /later" {
		t.Errorf("later request: %d %q", code, body)
	}
	if st := f.p.Stats(); st.Conns != 1 || st.Dials != 2 || be2.ln.accepts.Load() != 1 {
		t.Errorf("after GOAWAY: conns %d dials %d new accepts %d", st.Conns, st.Dials, be2.ln.accepts.Load())
	}
}
