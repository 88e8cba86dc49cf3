package demux

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxRetries bounds re-sends of one request after unprocessed failures.
const maxRetries = 3

// initialH2Streams is what net/http's HTTP/2 client assumes for
// MAX_CONCURRENT_STREAMS before the peer's SETTINGS arrive.
const initialH2Streams = 100

// tlsSettleWait bounds how long an https:// connection is held to one stream while
// waiting to learn the peer's stream limit (no frame sniffing under TLS).
const tlsSettleWait = 2 * time.Second

// upstream is the Proxy's RoundTripper: a fixed cap of http.ClientConns, each carrying
// at most its stream limit of requests, with a FIFO queue for the rest.
//
// Lock order: u.mu is never held while calling a ClientConn method that can run its
// state hook (Reserve, Release, RoundTrip, Close, Body.Close), because the hook takes
// u.mu. Err, Available and InFlight only take the conn's own lock and are safe.
type upstream struct {
	cfg       Config
	mode      upstreamMode
	addr      string
	log       *slog.Logger
	dialer    net.Dialer
	tlsConfig *tls.Config
	protocols http.Protocols

	ctx    context.Context // cancelled by close; parent of dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // dials, settle pollers, async closes

	mu      sync.Mutex
	conns   []*uconn
	dialing int
	waitq   list.List // of *waiter, FIFO
	closed  bool
	nextID  uint64

	st counters
}

// counters are the cumulative Stats fields.
type counters struct {
	requests, retries, resets, goAways, dials, dialErrors atomic.Uint64
	queueWaits, queueTimeouts, queueFull                  atomic.Uint64
	queueWaitNanos, maxQueueWaitNanos                     atomic.Int64
}

// uconn is one upstream connection. Fields after cc are guarded by upstream.mu.
type uconn struct {
	u  *upstream
	id uint64
	cc *http.ClientConn

	inUse     int  // reservations handed out by this pool
	limit     int  // streams allowed: 1 until settled
	settled   bool // the peer's stream limit is known
	draining  bool // GOAWAY or unusable: no new streams, close when idle
	dead      bool // Err() != nil
	blocked   bool // Reserve failed at the client's own limit; wait for the state hook
	sawGoAway bool // a GOAWAY was counted for this conn
	seq       uint64
}

type waiter struct {
	ch   chan waitResult // buffered 1
	elem *list.Element   // nil once dequeued
}

type waitResult struct {
	uc  *uconn
	err error
}

func newUpstream(cfg Config, mode upstreamMode, addr string) *upstream {
	u := &upstream{cfg: cfg, mode: mode, addr: addr, log: cfg.Logger}
	u.dialer = net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	switch mode {
	case modeH2C:
		u.protocols.SetUnencryptedHTTP2(true)
	case modeH2TLS:
		u.protocols.SetHTTP2(true)
		if cfg.TLSConfig != nil {
			u.tlsConfig = cfg.TLSConfig.Clone()
		} else {
			u.tlsConfig = &tls.Config{}
		}
		u.tlsConfig.NextProtos = []string{"h2"}
	case modeH1:
		u.protocols.SetHTTP1(true)
	}
	return u
}

// transportFor builds the single-use Transport that dials uc. One Transport per conn
// lets CountError attribute HTTP/2 errors to their connection.
func (u *upstream) transportFor(uc *uconn) *http.Transport {
	h2 := &http.HTTP2Config{
		PingTimeout:               u.cfg.PingTimeout,
		MaxReceiveBufferPerStream: u.cfg.MaxReceiveBufferPerStream,
		CountError:                uc.countError,
	}
	if u.cfg.PingInterval > 0 {
		h2.SendPingTimeout = u.cfg.PingInterval
	}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := u.dialer.DialContext(ctx, network, addr)
			if err != nil || u.mode != modeH2C {
				return c, err
			}
			return &frameSniffer{Conn: c, ev: uc}, nil
		},
		TLSClientConfig:        u.tlsConfig,
		TLSHandshakeTimeout:    u.cfg.DialTimeout,
		DisableCompression:     true, // a transparent proxy must not add Accept-Encoding
		MaxResponseHeaderBytes: u.cfg.MaxResponseHeaderBytes,
		HTTP2:                  h2,
		Protocols:              &u.protocols,
	}
}

// RoundTrip sends req on a reserved upstream stream, waiting in FIFO order for one if
// all are busy. It retries requests the upstream provably did not process (RFC 9113
// §8.7) when their body can be replayed. The returned body releases the stream on
// Close. Errors: ErrQueueTimeout, ErrQueueFull, ErrClosed, *DialError, or the
// ClientConn's error.
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
			u.release(uc)
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
		u.mu.Lock()
		uc.seq++
		seq := uc.seq
		u.mu.Unlock()
		if info != nil {
			info.conn, info.stream, info.queueWait = uc.id, seq, queued
		}

		out, headersIn, stop := req, func() {}, func() {}
		if u.mode == modeH1 {
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
		var wrote atomic.Bool
		out = out.WithContext(httptrace.WithClientTrace(out.Context(), &httptrace.ClientTrace{
			WroteHeaders: func() { wrote.Store(true) },
		}))
		switch {
		case info != nil && info.buffered != nil:
			out.Body = replayBody(info.buffered) // each attempt sends it whole
		case info != nil && info.body != nil && req.Body != nil && req.Body != http.NoBody:
			out.Body = transportBody{Reader: req.Body, tb: info.body}
		}
		resp, err := uc.cc.RoundTrip(out)
		headersIn() // bodies are never timed
		if err == nil {
			if u.mode == modeH2TLS {
				u.settleFromClient(uc)
			}
			return u.wrapResponse(resp, uc, stop), nil
		}
		if cause := context.Cause(out.Context()); cause == ErrResponseHeaderTimeout {
			err = ErrResponseHeaderTimeout
		}
		stop()
		u.release(uc)
		if attempt < maxRetries && ctx.Err() == nil && u.retryable(req, info, uc, seq, err, !wrote.Load()) {
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
	done := func() { stop(); u.release(uc) }
	if resp.Body == http.NoBody {
		done()
		return resp
	}
	rb := &releaseBody{ReadCloser: resp.Body, done: done}
	resp.Body = rb
	if rwc, ok := rb.ReadCloser.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// An HTTP/1.1 upgrade: ReverseProxy needs the writable conn. The conn
		// leaves the pool's use for good; Reserve will refuse it afterwards.
		resp.Body = &releaseRWC{releaseBody: rb, w: rwc}
		return resp
	}
	if n := u.cfg.ResponseBodyBuffer; n > 0 {
		resp.Body = newReadAhead(rb, n, u.mode == modeH1)
	}
	return resp
}

// detach gives req a context that outlives the client's by drainGrace, and the
// function that releases it.
func detach(req *http.Request) (*http.Request, func()) {
	ctx := req.Context()
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopWatch := context.AfterFunc(ctx, func() { time.AfterFunc(drainGrace, cancel) })
	return req.WithContext(dctx), func() { stopWatch(); cancel() }
}

func chain(a, b func()) func() { return func() { a(); b() } }

// headerTimeout returns a child of ctx that is cancelled with ErrResponseHeaderTimeout
// if response headers take longer than d once the request, body included, has been
// written (as net/http's Transport.ResponseHeaderTimeout): a slow upload is not a slow
// upstream. headersIn disarms it; stop disarms it and releases the context.
func headerTimeout(ctx context.Context, d time.Duration) (rctx context.Context, headersIn, stop func()) {
	rctx, cancel := context.WithCancelCause(ctx)
	var mu sync.Mutex
	var t *time.Timer
	disarmed := false
	arm := func(httptrace.WroteRequestInfo) { // may come after the headers (full duplex)
		mu.Lock()
		defer mu.Unlock()
		if !disarmed && t == nil {
			t = time.AfterFunc(d, func() { cancel(ErrResponseHeaderTimeout) })
		}
	}
	headersIn = func() {
		mu.Lock()
		defer mu.Unlock()
		disarmed = true
		if t != nil {
			t.Stop()
		}
	}
	// WithClientTrace keeps the hooks already in ctx (ReverseProxy's 1xx relay).
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{WroteRequest: arm})
	return rctx, headersIn, func() { headersIn(); cancel(nil) }
}

func (u *upstream) noteWait(info *reqInfo, d time.Duration, waited bool) {
	if !waited {
		return
	}
	u.st.queueWaits.Add(1)
	u.st.queueWaitNanos.Add(int64(d))
	for {
		m := u.st.maxQueueWaitNanos.Load()
		if int64(d) <= m || u.st.maxQueueWaitNanos.CompareAndSwap(m, int64(d)) {
			break
		}
	}
	if info != nil {
		info.queueWait = d
	}
}

// retryable reports whether a failed attempt may be sent again on another stream
// (RFC 9113 §8.7, RFC 9110 §9.2.2). Its body must be replayable: none, read whole
// (Config.RequestBodyBuffer), or not started; an upgrade is never re-sent. Then it is
// retried when the upstream provably did not see it (its HEADERS were never written),
// refused it (REFUSED_STREAM), or, for an idempotent method, failed without a
// response on a connection that received GOAWAY (the streams it did process
// complete; RFC 9113 §6.8), or on one that had served earlier requests and then
// failed: the race of a request with an upstream closing an idle connection. A
// request that kills a fresh connection is not re-sent (a request that crashes the
// upstream would crash it again).
func (u *upstream) retryable(req *http.Request, info *reqInfo, uc *uconn, seq uint64, err error, notSent bool) bool {
	if req.Header.Get("Upgrade") != "" {
		return false
	}
	if errors.Is(err, ErrResponseHeaderTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	streaming := info == nil || (info.buffered == nil && info.body != nil)
	if req.Body != nil && req.Body != http.NoBody && streaming && (info == nil || info.body.started.Load()) {
		return false
	}
	if notSent || refusedStream(err) {
		return true
	}
	u.mu.Lock()
	goAway, gone := uc.sawGoAway, uc.dead || uc.draining
	u.mu.Unlock()
	return idempotent(req.Method) && (goAway || (seq > 1 && (gone || uc.cc.Err() != nil)))
}

// h2StreamError mirrors the shape of net/http's HTTP/2 stream error, which converts
// itself into any struct with these fields under errors.As (as it does for
// golang.org/x/net/http2.StreamError).
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string {
	return fmt.Sprintf("stream %d reset with code %d", e.StreamID, e.Code)
}

// errCodeRefusedStream is REFUSED_STREAM (RFC 9113 §7): the stream was not processed.
const errCodeRefusedStream = 0x7

func refusedStream(err error) bool {
	var se h2StreamError
	return errors.As(err, &se) && se.Code == errCodeRefusedStream
}

// idempotent reports RFC 9110 §9.2.2 idempotent methods.
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// acquire returns a conn with one of its streams counted as ours (inUse), waiting in
// the FIFO queue when none is free. front puts a retried request at the queue's head.
func (u *upstream) acquire(ctx context.Context, front bool) (uc *uconn, waited bool, err error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, false, ErrClosed
	}
	if front || u.waitq.Len() == 0 {
		if uc := u.pickLocked(); uc != nil {
			uc.inUse++
			u.mu.Unlock()
			return uc, false, nil
		}
	}
	if u.waitq.Len() >= u.cfg.MaxQueued {
		u.mu.Unlock()
		u.st.queueFull.Add(1)
		return nil, false, ErrQueueFull
	}
	w := &waiter{ch: make(chan waitResult, 1)}
	if front {
		w.elem = u.waitq.PushFront(w)
	} else {
		w.elem = u.waitq.PushBack(w)
	}
	u.maybeDialLocked()
	u.mu.Unlock()

	t := time.NewTimer(u.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case r := <-w.ch:
		return r.uc, true, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = ErrQueueTimeout
		u.st.queueTimeouts.Add(1)
	}
	u.mu.Lock()
	if w.elem != nil {
		u.waitq.Remove(w.elem)
		w.elem = nil
		u.mu.Unlock()
		return nil, true, err
	}
	u.mu.Unlock()
	// Dispatched while we gave up: hand the stream back.
	if r := <-w.ch; r.uc != nil {
		u.release(r.uc)
	}
	return nil, true, err
}

// pickLocked returns the least-loaded conn with a free stream, or nil.
func (u *upstream) pickLocked() *uconn {
	var best *uconn
	for _, uc := range u.conns {
		if uc.dead || uc.draining || uc.blocked || uc.inUse >= uc.limit {
			continue
		}
		if best == nil || uc.inUse < best.inUse {
			best = uc
		}
	}
	return best
}

// dispatchLocked hands free streams to waiters in FIFO order, then dials if waiters remain.
func (u *upstream) dispatchLocked() {
	for u.waitq.Len() > 0 {
		uc := u.pickLocked()
		if uc == nil {
			break
		}
		w := u.waitq.Remove(u.waitq.Front()).(*waiter)
		w.elem = nil
		uc.inUse++
		w.ch <- waitResult{uc: uc}
	}
	u.maybeDialLocked()
}

// failWaitersLocked ends every queued request with err.
func (u *upstream) failWaitersLocked(err error) {
	for u.waitq.Len() > 0 {
		w := u.waitq.Remove(u.waitq.Front()).(*waiter)
		w.elem = nil
		w.ch <- waitResult{err: err}
	}
}

// maybeDialLocked starts dials while requests wait and the cap allows. Draining conns
// do not count against MaxConns: they take no new streams and close when idle.
// HTTP/2 dials one conn at a time and only once every open conn is settled and full,
// so that a burst never opens more conns than the peer's limits require.
func (u *upstream) maybeDialLocked() {
	if u.closed || u.waitq.Len() == 0 {
		return
	}
	live, unsettled, spare := 0, false, false
	for _, uc := range u.conns {
		if uc.dead || uc.draining {
			continue
		}
		live++
		unsettled = unsettled || !uc.settled
		spare = spare || uc.inUse < uc.limit
	}
	if u.mode == modeH1 {
		for need := u.waitq.Len() - u.dialing; need > 0 && live+u.dialing < u.cfg.MaxConns; need-- {
			u.startDialLocked()
		}
		return
	}
	if live+u.dialing < u.cfg.MaxConns && u.dialing == 0 && !unsettled && !spare {
		u.startDialLocked()
	}
}

func (u *upstream) startDialLocked() {
	u.dialing++
	u.nextID++
	// h2c conns take no stream until the peer's SETTINGS are processed (the frame
	// sniffer tells); https:// conns take one, as TLS hides the frames.
	uc := &uconn{u: u, id: u.nextID, limit: 1, settled: u.mode == modeH1}
	if u.mode == modeH2C {
		uc.limit = 0
	}
	u.wg.Add(1)
	go u.dial(uc)
}

func (u *upstream) dial(uc *uconn) {
	defer u.wg.Done()
	ctx, cancel := context.WithTimeout(u.ctx, u.cfg.DialTimeout)
	defer cancel()
	scheme := "http"
	if u.mode == modeH2TLS {
		scheme = "https"
	}
	u.st.dials.Add(1)
	cc, err := u.transportFor(uc).NewClientConn(ctx, scheme, u.addr)

	u.mu.Lock()
	u.dialing--
	if err != nil {
		u.st.dialErrors.Add(1)
		derr := &DialError{Addr: u.addr, Err: err}
		// Nothing else will serve the queue soon: fail it now rather than at QueueTimeout.
		if !u.hasLiveLocked() && u.dialing == 0 {
			u.failWaitersLocked(derr)
		}
		u.mu.Unlock()
		u.log.Debug("demux: upstream dial failed", "addr", u.addr, "err", err)
		return
	}
	if u.closed {
		u.mu.Unlock()
		cc.Close()
		return
	}
	uc.cc = cc
	u.conns = append(u.conns, uc)
	toClose := u.reapLocked()
	u.dispatchLocked()
	u.mu.Unlock()
	u.closeAsync(toClose)
	u.log.Debug("demux: upstream conn open", "conn", uc.id, "proto", u.mode.String())
	cc.SetStateHook(func(*http.ClientConn) { u.onState(uc) })
	if u.mode == modeH2TLS {
		u.wg.Add(1)
		go u.pollSettle(uc)
	}
}

func (u *upstream) hasLiveLocked() bool {
	for _, uc := range u.conns {
		if !uc.dead && !uc.draining {
			return true
		}
	}
	return false
}

// reapLocked removes dead conns and idle draining ones; the caller must pass them to
// closeAsync. The WaitGroup is counted here, under u.mu, so that close's Wait (which
// follows its own u.mu section) cannot miss them.
func (u *upstream) reapLocked() []*uconn {
	var out []*uconn
	kept := u.conns[:0]
	for _, uc := range u.conns {
		if uc.dead || (uc.draining && uc.inUse == 0) {
			out = append(out, uc)
			continue
		}
		kept = append(kept, uc)
	}
	clear(u.conns[len(kept):])
	u.conns = kept
	u.wg.Add(len(out))
	return out
}

// closeAsync closes conns returned by reapLocked off the caller's goroutine: the
// caller may be the conn's own read loop (frame sniffer) or state hook.
func (u *upstream) closeAsync(ucs []*uconn) {
	for _, uc := range ucs {
		go func() {
			defer u.wg.Done()
			uc.cc.Close()
			u.log.Debug("demux: upstream conn closed", "conn", uc.id)
		}()
	}
}

// release returns one stream of uc to the pool.
func (u *upstream) release(uc *uconn) {
	err := uc.cc.Err()
	u.mu.Lock()
	uc.inUse--
	if err != nil {
		u.markDeadLocked(uc)
	}
	toClose := u.reapLocked()
	u.dispatchLocked()
	u.mu.Unlock()
	u.closeAsync(toClose)
}

// reserveFailed handles a Reserve refusal after the pool counted a free stream: the
// conn died, stopped taking streams (GOAWAY), or still counts a finished or reset
// stream (RFC 9113 §5.1.2 accounting lags our release); the last clears on its state hook.
func (u *upstream) reserveFailed(uc *uconn) {
	err, avail, inFlight := uc.cc.Err(), uc.cc.Available(), uc.cc.InFlight()
	u.mu.Lock()
	uc.inUse--
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case avail == 0 && inFlight == 0:
		u.markDrainingLocked(uc)
	default:
		uc.blocked = true
	}
	toClose := u.reapLocked()
	u.dispatchLocked()
	u.mu.Unlock()
	u.closeAsync(toClose)
	if uc.cc.Available() > 0 { // the hook may have fired before blocked was set
		u.onState(uc)
	}
}

// markDeadLocked records that uc's connection failed. One that failed before its
// peer's SETTINGS arrived never worked (wrong protocol, refused preface): it counts
// as a failed dial and, if nothing else can serve the queue, fails it now instead of
// redialling in a loop until QueueTimeout.
func (u *upstream) markDeadLocked(uc *uconn) {
	if uc.dead {
		return
	}
	uc.dead = true
	if uc.settled {
		return
	}
	u.st.dialErrors.Add(1)
	if !u.hasLiveLocked() && u.dialing == 0 {
		u.failWaitersLocked(&DialError{Addr: u.addr, Err: errNoSettings})
	}
}

// errNoSettings: the upstream closed an HTTP/2 connection before sending SETTINGS.
var errNoSettings = errors.New("connection closed before the peer's HTTP/2 SETTINGS (is the upstream speaking h2c?)")

func (u *upstream) markDrainingLocked(uc *uconn) {
	if !uc.draining && !uc.sawGoAway && u.mode != modeH2C && u.mode != modeH1 {
		// Under TLS a graceful GOAWAY is only visible as a conn that stops taking streams.
		uc.sawGoAway = true
		u.st.goAways.Add(1)
	}
	uc.draining = true
}

// onState is the ClientConn state hook: a stream ended, capacity grew, or the conn died.
func (u *upstream) onState(uc *uconn) {
	err, avail, inFlight := uc.cc.Err(), uc.cc.Available(), uc.cc.InFlight()
	u.mu.Lock()
	switch {
	case err != nil:
		u.markDeadLocked(uc)
	case avail == 0 && inFlight == 0 && uc.limit > 0 && u.mode != modeH1:
		u.markDrainingLocked(uc)
	}
	uc.blocked = false
	toClose := u.reapLocked()
	u.dispatchLocked()
	u.mu.Unlock()
	u.closeAsync(toClose)
}

// settings implements frameEvents: the peer's SETTINGS fix the conn's stream limit
// at min(MaxStreamsPerConn, SETTINGS_MAX_CONCURRENT_STREAMS).
func (uc *uconn) settings(maxStreams uint32, has bool) {
	u := uc.u
	limit := u.cfg.MaxStreamsPerConn
	if has && int64(maxStreams) < int64(limit) {
		limit = int(maxStreams)
	}
	u.mu.Lock()
	uc.limit, uc.settled = limit, true
	u.dispatchLocked()
	u.mu.Unlock()
}

// goAway implements frameEvents (RFC 9113 §6.8): no new streams on this conn; streams
// above lastStreamID fail with a retryable error and are re-sent elsewhere.
func (uc *uconn) goAway(lastStreamID, code uint32) {
	u := uc.u
	u.st.goAways.Add(1)
	u.mu.Lock()
	uc.sawGoAway = true
	uc.draining = true
	toClose := []*uconn(nil)
	if uc.cc != nil {
		toClose = u.reapLocked()
	}
	u.dispatchLocked()
	u.mu.Unlock()
	u.closeAsync(toClose)
	u.log.Debug("demux: upstream GOAWAY", "conn", uc.id, "last_stream", lastStreamID, "code", code)
}

// rstStream implements frameEvents: the upstream reset a stream (RFC 9113 §6.4).
func (uc *uconn) rstStream(code uint32) { uc.u.st.resets.Add(1) }

// countError receives net/http's HTTP/2 error counters for this conn. Go 1.26 passes
// HTTP2Config.CountError to the HTTP/2 client only partly, so counts seen here are a
// floor; h2c conns count from the frame sniffer instead.
func (uc *uconn) countError(kind string) {
	switch {
	case strings.HasPrefix(kind, "recv_rststream_") && uc.u.mode == modeH2TLS:
		uc.u.st.resets.Add(1)
	case strings.HasPrefix(kind, "recv_goaway_") && uc.u.mode == modeH2TLS:
		uc.u.mu.Lock()
		counted := uc.sawGoAway
		uc.sawGoAway = true
		uc.u.mu.Unlock()
		if !counted {
			uc.u.st.goAways.Add(1)
		}
	}
}

// settleFromClient fixes an https:// conn's limit once a response proves the peer's
// SETTINGS were processed (they precede every other server frame, RFC 9113 §3.4).
func (u *upstream) settleFromClient(uc *uconn) {
	u.mu.Lock()
	done := uc.settled
	u.mu.Unlock()
	if done {
		return
	}
	if n := uc.cc.Available() + uc.cc.InFlight(); n > 0 {
		uc.settings(uint32(n), true)
	}
}

// pollSettle learns an https:// conn's limit without a request: the client's
// Available+InFlight moves off its assumed 100 when SETTINGS arrive. A peer that
// advertises exactly 100 is indistinguishable, so the wait is bounded.
func (u *upstream) pollSettle(uc *uconn) {
	defer u.wg.Done()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(tlsSettleWait)
	defer limit.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-limit.C:
			uc.settings(initialH2Streams, true)
			return
		case <-tick.C:
		}
		u.mu.Lock()
		done := uc.settled
		u.mu.Unlock()
		if done || uc.cc.Err() != nil {
			return
		}
		if n := uc.cc.Available() + uc.cc.InFlight(); n != initialH2Streams && n > 0 {
			uc.settings(uint32(n), true)
			return
		}
	}
}

// stats snapshots the pool.
func (u *upstream) stats() Stats {
	s := Stats{
		Requests:       u.st.requests.Load(),
		Retries:        u.st.retries.Load(),
		Resets:         u.st.resets.Load(),
		GoAways:        u.st.goAways.Load(),
		Dials:          u.st.dials.Load(),
		DialErrors:     u.st.dialErrors.Load(),
		QueueWaits:     u.st.queueWaits.Load(),
		QueueWaitTotal: time.Duration(u.st.queueWaitNanos.Load()),
		QueueWaitMax:   time.Duration(u.st.maxQueueWaitNanos.Load()),
		QueueTimeouts:  u.st.queueTimeouts.Load(),
		QueueFull:      u.st.queueFull.Load(),
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, uc := range u.conns {
		s.Conns++
		s.StreamsInUse += uc.inUse
		if uc.draining {
			s.DrainingConns++
		}
	}
	s.Dialing = u.dialing
	s.Queued = u.waitq.Len()
	return s
}

// close fails waiters, closes every conn and waits for the pool's goroutines.
func (u *upstream) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	u.failWaitersLocked(ErrClosed)
	conns := u.conns
	u.conns = nil
	u.mu.Unlock()
	u.cancel()
	for _, uc := range conns {
		uc.cc.Close()
	}
	u.wg.Wait()
}

// releaseBody releases the stream when the response body is closed.
type releaseBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// releaseRWC is a releaseBody for a 101 response, whose body is the raw connection.
type releaseRWC struct {
	*releaseBody
	w io.Writer
}

func (b *releaseRWC) Write(p []byte) (int, error) { return b.w.Write(p) }
