package demux

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client is a raw HTTP/2 (prior knowledge) client for hostile input.
type h2Client struct {
	c   net.Conn
	fr  *http2.Framer
	buf bytes.Buffer
	enc *hpack.Encoder
}

func dialH2(t *testing.T, addr string) *h2Client {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	h := &h2Client{c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.WriteSettings()
	return h
}

func (h *h2Client) block(fields ...string) []byte {
	h.buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return h.buf.Bytes()
}

// frames reads until the conn ends, reporting GOAWAYs, RST_STREAMs and response statuses.
type frameLog struct {
	goAway   atomic.Int64
	goAwayEC atomic.Uint32
	rst      atomic.Int64
	statuses sync.Map // stream → status
	done     chan struct{}
}

func (h *h2Client) readAll() *frameLog {
	fl := &frameLog{done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				fl.goAway.Add(1)
				fl.goAwayEC.Store(uint32(f.ErrCode))
			case *http2.RSTStreamFrame:
				fl.rst.Add(1)
			case *http2.MetaHeadersFrame:
				fl.statuses.Store(f.StreamID, f.PseudoValue("status"))
			}
		}
	}()
	return fl
}

// inverseSetup: HTTP/2 front (h2c) in front of an HTTP/1.1 upstream pool. The backend
// tracks peak concurrent TCP conns and request hits.
func inverseSetup(t *testing.T, hold time.Duration) (*front, *backend, *atomic.Int64, *atomic.Int64) {
	var hits, open, peak atomic.Int64
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
		}
	}, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				n := open.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}
	})
	f := newFront(t, Config{Upstream: "http://" + be.addr})
	return f, be, &hits, &peak
}

// An HTTP/2 rapid-reset flood (HEADERS then RST_STREAM, CVE-2023-39325)
// costs bounded upstream work: upstream conns stay within the cap plus a small margin
// and most cancelled streams are never dispatched.
func TestInverseRapidReset(t *testing.T) {
	f, _, hits, peak := inverseSetup(t, 300*time.Millisecond)
	h := dialH2(t, f.addr)
	defer h.c.Close()
	fl := h.readAll()
	const n = 3000
	sent := 0
	for i := range n {
		id := uint32(2*i + 1)
		blk := h.block(":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/rr")
		if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: true, EndHeaders: true}) != nil {
			break
		}
		if h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	h.c.SetReadDeadline(time.Now().Add(8 * time.Second))
	<-fl.done
	margin := int64(2)
	if p := peak.Load(); p > DefaultMaxConnsHTTP1+margin {
		t.Errorf("peak upstream conns %d, cap %d", p, DefaultMaxConnsHTTP1)
	}
	if fl.goAway.Load() == 0 {
		t.Errorf("flood of %d resets not ended with GOAWAY", sent)
	}
	if got := hits.Load(); got > int64(sent)/4 {
		t.Errorf("%d of %d reset streams reached the upstream", got, sent)
	}
	t.Logf("sent %d HEADERS+RST, upstream hits %d, peak conns %d, GOAWAY %d (code %d), dials %d",
		sent, hits.Load(), peak.Load(), fl.goAway.Load(), fl.goAwayEC.Load(), f.p.Stats().Dials)
}

// A CONTINUATION flood (CVE-2023-45288) is cut off at the header limit
// with GOAWAY and never reaches the upstream.
func TestInverseContinuationFlood(t *testing.T) {
	f, _, hits, _ := inverseSetup(t, 0)
	h := dialH2(t, f.addr)
	defer h.c.Close()
	fl := h.readAll()
	blk := h.block(":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/flood")
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: false})
	junk := h.block("x-junk", string(bytes.Repeat([]byte("j"), 8000)))
	written := 0
	for range 10000 { // up to ~80 MB; the server must stop us far earlier
		if h.fr.WriteContinuation(1, false, junk) != nil {
			break
		}
		written++
	}
	<-fl.done
	if fl.goAway.Load() == 0 {
		t.Errorf("no GOAWAY after %d CONTINUATION frames", written)
	}
	if hits.Load() != 0 {
		t.Errorf("flooded request reached the upstream")
	}
	if written >= 10000 {
		t.Errorf("server accepted the whole flood")
	}
	t.Logf("%d CONTINUATION frames before the cut, GOAWAY code %d", written, fl.goAwayEC.Load())
}

// Malformed HTTP/2 requests never reach the HTTP/1.1 upstream.
func TestInverseMalformedH2Requests(t *testing.T) {
	f, _, hits, _ := inverseSetup(t, 0)
	cases := [][]string{
		{":method", "GET", ":scheme", "http", ":authority", "x"},                                               // no :path
		{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", ":bogus", "1"},                  // unknown pseudo-header
		{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "connection", "keep-alive"},     // connection-specific
		{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "transfer-encoding", "chunked"}, // connection-specific
		{":method", "GET /x HTTP/1.1", ":scheme", "http", ":authority", "x", ":path", "/"},                     // method with spaces
		{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "x-a", "a\r\nx-b: b"},           // CRLF in value
		{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/", "Upper", "v"},                   // uppercase name
		{":method", "GET", ":scheme", "http", ":authority", "x", "x-early", "1", ":path", "/"},                 // pseudo after regular
	}
	for i, fields := range cases {
		h := dialH2(t, f.addr)
		fl := h.readAll()
		h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block(fields...), EndStream: true, EndHeaders: true})
		time.Sleep(50 * time.Millisecond)
		h.c.Close()
		<-fl.done
		st, _ := fl.statuses.Load(uint32(1))
		if st != nil && st != "400" && st != "431" {
			t.Errorf("case %d: status %v", i, st)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d malformed requests reached the upstream", n)
	}
	// The front still works for a well-formed HTTP/2 request.
	h := dialH2(t, f.addr)
	defer h.c.Close()
	fl := h.readAll()
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block(":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/ok"), EndStream: true, EndHeaders: true})
	waitFor(t, 5*time.Second, "response", func() bool { _, ok := fl.statuses.Load(uint32(1)); return ok })
	if st, _ := fl.statuses.Load(uint32(1)); st != "200" {
		t.Errorf("well-formed request: %v", st)
	}
}
