package demux

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Proxy is an http.Handler that forwards every request to Config.Upstream over the
// pooled connections. Create it with New; it is safe for concurrent use.
type Proxy struct {
	cfg     Config
	mode    upstreamMode
	up      *upstream
	clients *clientShares
	via     via
	rp      *httputil.ReverseProxy
	target  *url.URL
}

// New validates cfg, applies defaults and returns a Proxy. It dials nothing: the
// first request opens the first upstream connection. Host names in the upstream URLs
// are looked up in the background at once. Errors are *ConfigError.
func New(cfg Config) (*Proxy, error) {
	cfg, mode, ups, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if mode == modeH2TLS {
		scheme = "https"
	}
	p := &Proxy{cfg: cfg, mode: mode, target: &url.URL{Scheme: scheme, Host: ups.hosts[0], Path: ups.path}}
	p.up = newUpstream(cfg, mode, ups.hosts)
	p.clients = newClientShares(cfg.MaxStreamsPerClient)
	p.via = newVia(cfg.ViaName)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.up,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     bufferPool{},
		ErrorLog:       nil,
	}
	return p, nil
}

// Stats returns a snapshot of the upstream pool.
func (p *Proxy) Stats() Stats { return p.up.stats() }

// Close closes every upstream connection, interrupting requests in flight, and fails
// queued ones with ErrClosed. Later requests get 503. It returns nil.
func (p *Proxy) Close() error {
	p.up.close()
	return nil
}

// reqInfo travels in the request context from ServeHTTP to the RoundTripper and back
// into the access log line.
type reqInfo struct {
	target       string // the upstream address the request went to
	conn, stream uint64
	queueWait    time.Duration
	deadline     time.Time // the end of the request's QueueTimeout
	retries      int
	body         *trackedBody // a request body that streams, or nil
	buffered     []byte       // a request body read whole (RequestBodyBuffer)
	trailers     bool         // an HTTP/1.1 client that accepts trailers (TE: trailers)
	err          error
	// wroteHeaders is set by the request's client trace once the current attempt's
	// HEADERS (or HTTP/1.1 request head) were written upstream; RoundTrip clears it
	// before each attempt.
	wroteHeaders atomic.Bool
	trace        httptrace.ClientTrace
	// relay is where forwardPlain's relay1xx writes interim responses, nil once
	// RoundTrip has returned; guarded by relayMu.
	relayMu sync.Mutex
	relay   http.ResponseWriter
	// lw is the handler's response writer, allocated with the info.
	lw logWriter
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(infoKey{}).(*reqInfo)
	return ri
}

// allowedMethods is the Allow value sent with 405 (RFC 9110 §15.5.6).
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE"

// ServeHTTP proxies r. Before anything is forwarded it refuses CONNECT (405), malformed
// methods and header fields (400), and protocol upgrades an HTTP/2 upstream cannot
// carry (501, ErrUpgradeUnsupported). WebSocket through an HTTP/2 upstream is such a
// 501: RFC 8441 extended CONNECT needs the ":protocol" pseudo-header, which Go 1.26's
// http.ClientConn rejects as an invalid field name, and Go's HTTP/2 server does not
// advertise SETTINGS_ENABLE_CONNECT_PROTOCOL by default either. An http:// upstream
// receives the upgrade itself on a dedicated HTTP/1.1 connection. Upstream failures map to 502, timeouts to 504,
// queue timeouts to 503, and a request header block the upstream refuses as too large
// to 431. Response trailers reach HTTP/1.1 clients (the response is chunked); request
// trailers are not forwarded, as ReverseProxy copies them before the body is read.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &reqInfo{deadline: start.Add(p.cfg.QueueTimeout),
		trailers: r.ProtoMajor == 1 && hasToken(r.Header["Te"], "trailers"),
		lw:       logWriter{ResponseWriter: w, idle: p.cfg.WriteIdleTimeout}}
	lw := &info.lw
	defer func() { p.logRequest(r, lw, info, start) }()

	if r.Method == http.MethodConnect {
		lw.Header().Set("Allow", allowedMethods)
		info.err = ErrConnectNotAllowed
		http.Error(lw, "CONNECT not allowed", http.StatusMethodNotAllowed)
		return
	}
	if up := upgradeRequested(r.Header); len(up) > 0 && p.mode != modeH1 {
		info.err = ErrUpgradeUnsupported
		http.Error(lw, fmt.Sprintf("upgrade to %q is not supported by this proxy (HTTP/2 upstream)", strings.Join(up, ", ")), http.StatusNotImplemented)
		return
	}
	if !validFieldName(r.Method) { // RFC 9110 §9.1: a method is a token
		info.err = fmt.Errorf("demux: malformed method %q", r.Method)
		http.Error(lw, "malformed method", http.StatusBadRequest)
		return
	}
	if bad := checkHeaders(r.Header); bad != "" {
		info.err = fmt.Errorf("demux: malformed header field %q", bad)
		http.Error(lw, "malformed header field", http.StatusBadRequest)
		return
	}
	// Runs after the body and the client's share are given up (deferred later).
	defer func() {
		if lw.status == 0 && r.Context().Err() != nil {
			afterReset(r)
		}
	}()
	// One context carries the request's info and the client trace that tells
	// RoundTrip whether an attempt reached the upstream (see retryable).
	info.trace.WroteHeaders = func() { info.wroteHeaders.Store(true) }
	out := r.WithContext(httptrace.WithClientTrace(context.WithValue(r.Context(), infoKey{}, info), &info.trace))
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if !p.takeBody(lw, r, out, info) {
			return
		}
		if info.body != nil {
			// No read of the client body may be in flight when the handler returns
			// (Go's HTTP/1.1 server then reads the connection itself).
			defer info.body.finish(func() {
				rc := http.NewResponseController(lw)
				if rc.SetReadDeadline(time.Now()) != nil {
					// A wrapping ResponseWriter hides the connection: at least let the
					// client have its response while the read waits for it.
					_ = rc.Flush()
				}
			})
		}
	}
	if r.ProtoMajor >= 2 {
		release, err := p.clients.acquire(out.Context(), r.RemoteAddr, info.deadline)
		if err != nil {
			p.errorHandler(lw, out, err)
			return
		}
		defer release()
	}
	if p.plainRequest(r) {
		p.forwardPlain(lw, r, out, info)
		return
	}
	p.rp.ServeHTTP(lw, out)
}

// takeBody reads the request body up to Config.RequestBodyBuffer before any upstream
// stream is taken, under the body clock (Config.MinRequestBodyRate). A body that fits
// becomes out's replayable body; a longer one streams on through a trackedBody
// (info.body). On a client-side failure it answers (400, 408 or 413) and reports false.
func (p *Proxy) takeBody(lw *logWriter, r, out *http.Request, info *reqInfo) bool {
	var src io.Reader = r.Body
	if n := p.cfg.MaxRequestBodyBytes; n > 0 {
		src = http.MaxBytesReader(lw, r.Body, n)
	}
	clock := newBodyClock(lw, &p.cfg)
	buf, whole, err := bufferBody(src, p.cfg.RequestBodyBuffer, clock)
	if err != nil {
		p.errorHandler(lw, out, &clientBodyError{err: err})
		return false
	}
	if whole {
		info.buffered = buf
		out.Body, out.ContentLength, out.TransferEncoding = replayBody(buf), int64(len(buf)), nil
		return true
	}
	// The body streams upstream while the response streams back. Go's HTTP/1.1
	// server would otherwise discard the unread rest of the body when the response
	// header is written, and the upstream would get a truncated body.
	_ = http.NewResponseController(lw).EnableFullDuplex()
	// out, not r, carries the wrapper: the server checks r.Body's own type to decide
	// whether the connection can be reused after an unread body.
	info.body = newTrackedBody(io.MultiReader(bytes.NewReader(buf), src), r.ProtoMajor == 1, clock)
	out.Body = info.body
	return true
}

// checkHeaders returns the name of the first field with an invalid name or value, or "".
func checkHeaders(h http.Header) string {
	for name, vals := range h {
		if !validFieldName(name) {
			return name
		}
		for _, v := range vals {
			if !validFieldValue(v) {
				return name
			}
		}
	}
	return ""
}

// rewrite is ReverseProxy's Rewrite: see outbound.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) { pr.Out = p.outbound(pr.In, pr.Out) }

// outbound builds the outbound request out (a copy of in) and returns it, or the
// request Config.Rewrite replaced it with. The standard hop-by-hop fields and the
// inbound Forwarded/X-Forwarded-* (which are never trusted) are already removed;
// this removes the HTTP/2-forbidden rest (RFC 9113 §8.2.2), keeps the client's Host
// as :authority, sets X-Forwarded-For/-Host/-Proto and appends Via (RFC 9110 §7.6.3).
func (p *Proxy) outbound(in, out *http.Request) *http.Request {
	(&httputil.ProxyRequest{In: in, Out: out}).SetURL(p.target)
	out.Host = in.Host
	// ReverseProxy re-adds "Connection: Upgrade" and Upgrade for any upgrade, h2c
	// included (golang/go#80416); only a real HTTP/1.1 upgrade may keep them, and then
	// without h2c. It also does not know HTTP2-Settings as connection-specific.
	up := upgradeRequested(in.Header)
	sanitizeOutbound(out.Header)
	if p.mode == modeH1 && len(up) > 0 {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", strings.Join(up, ", "))
	}
	// The front server answers Expect: 100-continue itself when the body is first
	// read; forwarding it too would send the client a second 100.
	out.Header.Del("Expect")
	p.addForwarding(in, out.Header)
	if p.cfg.Rewrite != nil {
		pr := &httputil.ProxyRequest{In: in, Out: out}
		p.cfg.Rewrite(pr)
		out = pr.Out
		out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	}
	return out
}

// addForwarding sets X-Forwarded-For, X-Forwarded-Host and X-Forwarded-Proto in h as
// httputil.ProxyRequest.SetXForwarded does (the client's address appended to any
// X-Forwarded-For already in h, none if in.RemoteAddr has no port; "https" under
// TLS), and appends this proxy to Via, all four values in one allocation.
func (p *Proxy) addForwarding(in *http.Request, h http.Header) {
	vals := make([]string, 4)
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		h["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	vals[1] = in.Host
	h["X-Forwarded-Host"] = vals[1:2:2]
	vals[2] = "http"
	if in.TLS != nil {
		vals[2] = "https"
	}
	h["X-Forwarded-Proto"] = vals[2:3:3]
	vals[3] = p.via.entry(h, in.ProtoMajor, in.ProtoMinor)
	h["Via"] = vals[3:4:4]
}

// modifyResponse adds Via to the response (RFC 9110 §7.6.3) and drops Content-Length
// when trailers were announced, or may come unannounced to an HTTP/1.1 client that
// sent "TE: trailers": HTTP/2 servers (Go's included) send both, and an HTTP/1.1
// response with Content-Length cannot carry trailers, so the client would silently
// lose them. Without it the front server chunks the body (RFC 9112 §7.1.2).
func (p *Proxy) modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := checkSwitch(resp); err != nil {
			return err // ReverseProxy closes the body (and so the conn), then 502
		}
	}
	if info := infoFrom(resp.Request.Context()); info != nil && info.body.unfinished() {
		resp.Header.Set("Connection", "close") // see trackedBody.unfinished
	}
	// Trailers, announced or not, need a chunked HTTP/1.1 response: without
	// Content-Length, ReverseProxy flushes each write, so net/http chunks even a short body.
	if info := infoFrom(resp.Request.Context()); len(resp.Trailer) > 0 || (info != nil && info.trailers) {
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		p.via.add(resp.Header, resp.ProtoMajor, resp.ProtoMinor)
	}
	if p.cfg.ModifyResponse != nil {
		return p.cfg.ModifyResponse(resp)
	}
	return nil
}

// checkSwitch refuses a 101 that ReverseProxy would not tunnel: a protocol other
// than the one requested, or one that is not printable ASCII. ReverseProxy refuses
// those itself with 502, but without closing the response body, which after a 101
// owns the upstream connection: that connection would stay open for good, outside
// the pool. Refused here, through ModifyResponse, the body is closed.
func checkSwitch(resp *http.Response) error {
	want, got := upgradeType(resp.Request.Header), upgradeType(resp.Header)
	for i := 0; i < len(got); i++ {
		if got[i] < ' ' || got[i] > '~' {
			return fmt.Errorf("demux: upstream tried to switch to invalid protocol %q", got)
		}
	}
	if !strings.EqualFold(want, got) {
		return fmt.Errorf("demux: upstream tried to switch protocol %q when %q was requested", got, want)
	}
	return nil
}

// upgradeType is the Upgrade value of h if its Connection asks for an upgrade,
// exactly as ReverseProxy reads it.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// errorHandler turns a proxying failure into a status (see statusFor). A failure
// while reading the client's body is the client's fault: 400, or 413 past the limit.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(r.Context())
	if info != nil {
		if b := info.body; b != nil {
			if berr := b.readErr(); berr != nil {
				err = &clientBodyError{err: berr}
			}
		}
		info.err = err
	}
	code := statusFor(r, err)
	if (code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusRequestTimeout) && r.ProtoMajor == 1 {
		// The body framing is unknown now. (On HTTP/2 the stream ends alone; there
		// "Connection: close" would make the server shut the whole connection down.)
		w.Header().Set("Connection", "close")
	} else if info != nil && info.body.unfinished() {
		w.Header().Set("Connection", "close") // see trackedBody.unfinished
	}
	if h := p.cfg.ErrorHandler; h != nil {
		h(w, r, err)
		return
	}
	if code == 0 {
		return // the client is gone
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, http.StatusText(code), code)
}

// bufferPool recycles ReverseProxy's 32 KiB copy buffers.
type bufferPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBufs.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBufs.Put(&b) }
