package demux

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// maxRetries bounds the re-sends of one request.
const maxRetries = 3

// retryable reports whether a failed attempt may be sent again on another stream
// (RFC 9113 §8.7, RFC 9110 §9.2.2). Its body must be replayable: none, read whole
// (Config.RequestBodyBuffer), or not started; an upgrade is never re-sent. Then it is
// retried when the upstream provably did not see it (its HEADERS were never written),
// refused it (REFUSED_STREAM), or, for an idempotent method, failed without a
// response on a connection that received GOAWAY (the streams it did process
// complete; RFC 9113 §6.8), or on one that had carried earlier requests and then
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

// detach gives req a context that outlives the client's by drainGrace, and the
// function that releases it.
func detach(req *http.Request) (*http.Request, func()) {
	ctx := req.Context()
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopWatch := context.AfterFunc(ctx, func() { time.AfterFunc(drainGrace, cancel) })
	return req.WithContext(dctx), func() { stopWatch(); cancel() }
}

func chain(a, b func()) func() { return func() { a(); b() } }
