package demux

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A Proxy behind middleware keeps every protection: the Server's framing check refuses
// ambiguous framing before any handler runs, and the Proxy's per-connection share
// holds one HTTP/2 client connection to MaxStreamsPerClient upstream streams.
func TestProtectionsHoldBehindMiddleware(t *testing.T) {
	var cur, peak, smuggled atomic.Int64
	release := make(chan struct{})
	be := newBackend(t, 0, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/smuggled":
			smuggled.Add(1)
		case "/slow":
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			cur.Add(-1)
		}
	})
	f := newFront(t, Config{Upstream: "h2c://" + be.addr}, func(s *http.Server) {
		h := s.Handler
		s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Middleware", "1")
			h.ServeHTTP(w, r)
		})
	})

	resp, _, closed := rawExchange(t, f.addr, "POST /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || !closed || smuggled.Load() != 0 {
		t.Errorf("CL+TE behind middleware: status %d, closed %v, backend saw %d", resp.StatusCode, closed, smuggled.Load())
	}

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true) // one HTTP/2 connection carries all 40
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(f.url + "/slow")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 && resp.Header.Get("X-Middleware") == "1" {
					ok.Add(1)
				}
			}
		}()
	}
	waitFor(t, 10*time.Second, "the client's share of upstream streams in use", func() bool {
		return cur.Load() == DefaultMaxStreamsPerClient
	})
	if st := f.p.Stats(); st.StreamsInUse != DefaultMaxStreamsPerClient || st.Queued != 0 {
		t.Errorf("one client connection holds %d streams (%d queued), want its share %d", st.StreamsInUse, st.Queued, DefaultMaxStreamsPerClient)
	}
	close(release)
	wg.Wait()
	if peak.Load() != DefaultMaxStreamsPerClient || ok.Load() != 40 {
		t.Errorf("peak %d upstream streams (want %d), %d of 40 answered through the middleware", peak.Load(), DefaultMaxStreamsPerClient, ok.Load())
	}
}
