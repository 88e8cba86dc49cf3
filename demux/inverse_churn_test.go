package demux

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// In inverse mode (HTTP/2 front, http:// HTTP/1.1 upstream
// pool, MaxConns 4) a request the client cancels does not cost a new upstream
// connection each time. During an HTTP/2 rapid-reset flood (HEADERS then RST_STREAM
// CANCEL, CVE-2023-39325) the backend accepts at most 4 + 4 TCP connections, and
// afterwards the proxy still serves HTTP/2 and HTTP/1.1 requests.
//
// "blind" floods 3000 HEADERS+RST pairs as fast as the connection takes them against a
// backend answering at once or after 20 ms (most streams are cancelled before they are
// dispatched). "after-dispatch" is the costly variant: 20 rounds of 4 requests, each
// round cancelled once all 4 have reached the backend (which answers after 100 ms),
// 80 resets in all, below the front's reset budget, so only the pool's reuse of
// connections keeps the count down.
func TestInverseRapidResetKeepsUpstreamConns(t *testing.T) {
	for _, d := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run("blind/backend-"+d.String(), func(t *testing.T) { inverseRapidReset(t, d, false) })
	}
	t.Run("after-dispatch", func(t *testing.T) { inverseRapidReset(t, 100*time.Millisecond, true) })
}

func inverseRapidReset(t *testing.T, delay time.Duration, afterDispatch bool) {
	const maxConns = 4
	var cc connCounter
	var hits atomic.Int64
	be := newBackend(t, 0, true, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
		}
		w.Write([]byte("fast"))
	}, cc.hook)
	f := newServedFront(t, Config{Upstream: "http://" + be.addr, MaxConns: maxConns}, false)
	a := dialH2Attacker(t, f.addr, 15*time.Second)
	sent := 0
	if afterDispatch {
		id := uint32(1)
		for round := range 20 {
			var ids []uint32
			for range maxConns {
				if a.request(id, "/rr") != nil {
					break
				}
				ids = append(ids, id)
				id += 2
			}
			waitSoft(3*time.Second, func() bool { return hits.Load() >= int64(maxConns*(round+1)) })
			for _, x := range ids {
				if a.reset(x) == nil {
					sent++
				}
			}
		}
		a.close()
	} else {
		for i := range 3000 {
			id := uint32(2*i + 1)
			if a.request(id, "/rr") != nil || a.reset(id) != nil {
				break
			}
			sent++
		}
		// The front ends a flood with GOAWAY and closes; the deadline bounds the wait.
		a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		<-a.done
		a.close()
	}
	if got := cc.accepts.Load(); got > maxConns+4 {
		t.Errorf("backend accepted %d TCP connections during the flood, want at most %d (cap %d + 4); %d streams reset, %d reached the backend, GOAWAYs %d, stats %+v",
			got, maxConns+4, maxConns, sent, hits.Load(), a.goAway.Load(), f.p.Stats())
	}
	t.Logf("reset %d streams; backend hits %d, accepts %d, peak open %d; GOAWAY %d; stats %+v",
		sent, hits.Load(), cc.accepts.Load(), cc.peak.Load(), a.goAway.Load(), f.p.Stats())
	// The proxy still serves: a fresh HTTP/2 request and a fresh HTTP/1.1 request.
	b := dialH2Attacker(t, f.addr, 10*time.Second)
	defer b.close()
	if err := b.request(1, "/after-h2"); err != nil {
		t.Fatal(err)
	}
	if !waitSoft(5*time.Second, func() bool { _, ok := b.statuses.Load(uint32(1)); return ok }) {
		t.Errorf("HTTP/2 request after the flood: no response (stats %+v)", f.p.Stats())
	} else if st, _ := b.statuses.Load(uint32(1)); st != "200" {
		t.Errorf("HTTP/2 request after the flood: status %v", st)
	}
	if d, err := probeFresh(f.url, "/after-h1", "fast", 5*time.Second); err != nil {
		t.Errorf("HTTP/1.1 request after the flood: %v after %v (stats %+v)", err, d, f.p.Stats())
	}
}
