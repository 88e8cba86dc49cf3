package demux

import (
	"container/list"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
)

// upstream is the Proxy's RoundTripper: a capped set of http.ClientConns, each
// carrying at most its stream limit of requests, with a FIFO queue for the rest.
//
// Goroutines: RoundTrip runs on the request's goroutine; one goroutine per dial in
// progress (dial), per https:// connection learning its stream limit (pollSettle)
// and per closing connection (closeAsync); the ClientConns' own read loops call the
// frame events (settings, goAway) and the state hook (onState). An h2c connection's
// writes go through a batchConn, which runs a flusher goroutine while it has bytes
// queued.
//
// Ownership: mu guards the connection set (conns and every uconn field after cc),
// dialing, the wait queue, closed and nextID; counters are atomics. Every section
// that may free a stream or fail waiters ends with unlockAndWake, the one path that
// hands streams to waiters: it decides under mu, unlocks, then wakes them.
//
// Lock order: mu is never held while calling a ClientConn method that can run its
// state hook (Reserve, Release, RoundTrip, Close, Body.Close), because the hook takes
// mu. Err, Available and InFlight only take the conn's own lock and are safe.
type upstream struct {
	cfg     Config
	proto   upstreamProto
	name    string   // the configured upstream hosts, for errors
	sources []source // Config.Upstreams' host:port entries
	log     *slog.Logger
	dialer  net.Dialer

	ctx    context.Context // cancelled by close; parent of dials and lookups
	cancel context.CancelFunc
	wg     sync.WaitGroup // dials, settle pollers, async closes, the resolver

	mu       sync.Mutex
	targets  []*target // one per resolved address
	resolved bool      // the first resolution finished
	waitq    list.List // of *waiter, FIFO
	wakes    []wake    // decided under mu, delivered by unlockAndWake
	closed   bool
	nextID   uint64
	spread   int // HTTP/2 connections per target load is spread over (see spreadLocked)

	st counters
}

func newUpstream(cfg Config, mode upstreamMode, hosts []string) *upstream {
	u := &upstream{cfg: cfg, proto: newProto(mode, cfg), name: strings.Join(hosts, ","), log: cfg.Logger}
	u.dialer = net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	if u.proto.multiplexed() {
		u.spread = min(max(runtime.GOMAXPROCS(0)/2, 1), cfg.MaxConns)
	}
	u.startResolving(hosts)
	if cfg.HealthCheckPath != "" && !u.proto.multiplexed() && cfg.PingInterval > 0 {
		u.wg.Add(1)
		go u.healthLoop()
	}
	return u
}

// transportFor builds the single-use Transport that dials uc. One Transport per conn
// lets CountError attribute HTTP/2 errors to their connection.
func (u *upstream) transportFor(uc *uconn) *http.Transport {
	h2 := &http.HTTP2Config{
		PingTimeout:               u.cfg.PingTimeout,
		MaxReceiveBufferPerStream: u.cfg.MaxReceiveBufferPerStream,
	}
	if u.cfg.PingInterval > 0 {
		h2.SendPingTimeout = u.cfg.PingInterval
	}
	t := &http.Transport{
		DialContext:            u.dialer.DialContext,
		DisableCompression:     true, // a transparent proxy must not add Accept-Encoding
		MaxResponseHeaderBytes: u.cfg.MaxResponseHeaderBytes,
		HTTP2:                  h2,
		Protocols:              new(http.Protocols),
	}
	u.proto.transport(t, uc)
	return t
}

// RoundTrip sends req on a reserved upstream stream, waiting in FIFO order for one if
// all are busy, and re-sends a failed attempt, up to maxRetries times, when
// retryable allows. The returned body releases the stream when closed, or earlier
// when it was read ahead to its end (Config.ResponseBodyBuffer). Errors:
// ErrQueueTimeout, ErrQueueFull, ErrClosed, *DialError, ErrResponseHeaderTimeout, or
// the ClientConn's error.
func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	info := infoFrom(ctx)
	u.st.requests.Add(1)
	var queued time.Duration
	var waitedAny, noted, front bool
	note := func() { // queue-wait statistics, once per request
		if !noted {
			noted = true
			u.noteWait(info, queued, waitedAny)
			if o := u.cfg.QueueWaitObserver; o != nil {
				o.ObserveQueueWait(queued)
			}
		}
	}
	for attempt := 0; ; {
		t0 := time.Now()
		uc, waited, err := u.acquire(ctx, front)
		if waited {
			waitedAny = true
			queued += time.Since(t0)
		}
		if err != nil {
			note()
			return nil, err
		}
		if ctx.Err() != nil { // cancelled while queued (e.g. RST_STREAM): never dispatch
			u.release(uc, false)
			return nil, ctx.Err()
		}
		if err := uc.cc.Reserve(); err != nil {
			u.reserveFailed(uc)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			front = true // the conn is excluded now; keep our place at the queue's head
			continue
		}
		note()
		uc.t.requests.Add(1)
		u.mu.Lock()
		uc.seq++
		seq := uc.seq
		u.mu.Unlock()
		if info != nil {
			info.conn, info.stream, info.queueWait, info.target = uc.id, seq, queued, uc.t.addr
		}

		out, headersIn, stop := req, func() {}, func() {}
		if !u.proto.multiplexed() {
			// A cancelled HTTP/1.1 request can only be aborted by closing its
			// connection: it is given drainGrace to finish instead (readAhead).
			out, stop = detach(out)
		}
		if d := u.cfg.ResponseHeaderTimeout; d > 0 {
			var rctx context.Context
			var stopTimer func()
			rctx, headersIn, stopTimer = headerTimeout(out.Context(), d)
			out, stop = out.WithContext(rctx), chain(stopTimer, stop)
		}
		var body io.ReadCloser
		switch {
		case info != nil && info.buffered != nil:
			body = replayBody(info.buffered) // each attempt sends it whole
		case info != nil && info.body != nil && req.Body != nil && req.Body != http.NoBody:
			body = transportBody{Reader: req.Body, tb: info.body}
		}
		if body != nil {
			if out == req {
				out = req.WithContext(req.Context()) // a copy: req is ReverseProxy's
			}
			out.Body = body
		}
		if info != nil {
			info.wroteHeaders.Store(false)
		}
		resp, err := uc.cc.RoundTrip(out)
		headersIn() // bodies are never timed
		if err == nil {
			u.proto.answered(u, uc)
			return u.wrapResponse(resp, uc, stop), nil
		}
		if cause := context.Cause(out.Context()); cause == ErrResponseHeaderTimeout {
			err = ErrResponseHeaderTimeout
		}
		stop()
		u.release(uc, false)
		if refusedStream(err) {
			u.mu.Lock()
			u.failedLocked(uc.t, err)
			u.mu.Unlock()
		}
		if attempt < maxRetries && ctx.Err() == nil && u.retryable(req, info, uc, seq, err, info != nil && !info.wroteHeaders.Load()) {
			attempt, front = attempt+1, true
			u.st.retries.Add(1)
			if info != nil {
				info.retries++
			}
			u.log.Debug("demux: retrying unprocessed request", "conn", uc.id, "err", err)
			continue
		}
		return nil, err
	}
}

// wrapResponse makes the response body release uc's stream when it is closed or,
// with Config.ResponseBodyBuffer, as soon as the upstream has sent it all.
func (u *upstream) wrapResponse(resp *http.Response, uc *uconn, stop func()) *http.Response {
	if resp.Body == http.NoBody {
		stop()
		u.release(uc, true)
		return resp
	}
	rb := &releaseBody{ReadCloser: resp.Body, u: u, uc: uc, stop: stop}
	resp.Body = rb
	if rwc, ok := rb.ReadCloser.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An HTTP/1.1 upgrade: ReverseProxy needs the writable conn. The conn
		// leaves the pool's use for good; Reserve will refuse it afterwards.
		resp.Body = &releaseRWC{releaseBody: rb, w: rwc}
		return resp
	}
	if n := u.cfg.ResponseBodyBuffer; n > 0 {
		if cl := resp.ContentLength; cl > 0 && cl <= int64(min(n, smallBody)) {
			resp.Body = readSmall(rb, int(cl))
		} else {
			resp.Body = newReadAhead(rb, n, !u.proto.multiplexed())
		}
	}
	return resp
}

// releaseBody releases the stream when the response body is closed: it stops the
// attempt's timers and contexts (stop) and gives uc's stream back, once.
type releaseBody struct {
	io.ReadCloser
	once sync.Once
	u    *upstream
	uc   *uconn
	stop func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

func (b *releaseBody) release() {
	b.stop()
	b.u.release(b.uc, true)
}

// releaseRWC is a releaseBody for a 101 response, whose body is the raw connection.
type releaseRWC struct {
	*releaseBody
	w io.Writer
}

func (b *releaseRWC) Write(p []byte) (int, error) { return b.w.Write(p) }
