package demux

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Client-reset budget per HTTP/2 front connection (see connGuard).
const (
	resetWindow = time.Second
	resetBudget = 100              // client-cancelled requests per window before lingering
	resetLinger = 10 * time.Second // longest a handler keeps its slot once over budget
)

// connGuard counts, per client connection, requests the client cancelled before a
// response (HTTP/2 RST_STREAM). Go's HTTP/2 server bounds a rapid-reset flood
// (CVE-2023-39325) by running at most MaxConcurrentStreams handlers and sending GOAWAY
// ENHANCE_YOUR_CALM once 4× that many wait to start; but the proxy's handlers return
// at once when their stream is reset, so that queue never fills and the flood goes on
// forever. A connection that goes over budget once is hostile for good: each of its
// reset handlers keeps its slot until the connection closes (at most resetLinger),
// so the server's own limit ends the flood with GOAWAY however fast it reads frames,
// while a client that cancels now and then never notices.
type connGuard struct {
	done    chan struct{} // closed when the connection closes: lingering ends
	mu      sync.Mutex
	start   time.Time
	resets  int
	hostile bool // went over budget once; stays so for the connection's life
}

type guardKey struct{}

// guards maps live front connections to their guards, so ConnState can end lingering.
type guards struct{ m sync.Map } // net.Conn → *connGuard

// connContext is NewServer's ConnContext: one guard per accepted connection.
func (gs *guards) connContext(ctx context.Context, c net.Conn) context.Context {
	g := &connGuard{done: make(chan struct{})}
	gs.m.Store(c, g)
	return context.WithValue(ctx, guardKey{}, g)
}

// connState is NewServer's ConnState: it releases the guard of a closed connection.
func (gs *guards) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	if g, ok := gs.m.LoadAndDelete(c); ok {
		close(g.(*connGuard).done)
	}
}

// noteReset records a client-cancelled request and reports whether the connection is
// over its reset budget.
func (g *connGuard) noteReset(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.start) > resetWindow {
		g.start, g.resets = now, 0
	}
	g.resets++
	g.hostile = g.hostile || g.resets > resetBudget
	return g.hostile
}

// afterReset applies the budget to r, whose client went away before a response.
func afterReset(r *http.Request) {
	g, _ := r.Context().Value(guardKey{}).(*connGuard)
	if g == nil || r.ProtoMajor != 2 {
		return
	}
	if g.noteReset(time.Now()) {
		t := time.NewTimer(resetLinger)
		defer t.Stop()
		select {
		case <-t.C:
		case <-g.done:
		}
	}
}
