package demux

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultMaxConnsHTTP2 is the connection cap per target for h2c:// and https://
	// upstreams. Connections are dialled on demand, one at a time, when every open one
	// is at its stream limit (or, on machines with more cores, at its share of it), so
	// light load uses one connection; the cap leaves room for 800 concurrent requests
	// (long polls, streams) at 100 streams each.
	DefaultMaxConnsHTTP2 = 8
	// DefaultMaxConnsHTTP1 is the upstream connection cap for http:// upstreams, the
	// browser-style six connections per origin.
	DefaultMaxConnsHTTP1 = 6
	// DefaultMaxStreamsPerConn caps concurrent streams per HTTP/2 connection before the
	// peer's SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §6.5.2) lowers it further.
	DefaultMaxStreamsPerConn = 100
	// DefaultQueueTimeout bounds how long a request waits for a free upstream stream.
	DefaultQueueTimeout = 15 * time.Second
	// DefaultMaxQueued bounds the number of requests waiting for a stream.
	DefaultMaxQueued = 4096
	// DefaultDialTimeout bounds dialing (TCP, TLS and protocol setup) one upstream connection.
	DefaultDialTimeout = 10 * time.Second
	// DefaultPingInterval is the idle time after which an HTTP/2 upstream connection is
	// probed with PING (RFC 9113 §6.7).
	DefaultPingInterval = 30 * time.Second
	// DefaultPingTimeout is how long a PING may go unanswered before the connection is closed.
	DefaultPingTimeout = 10 * time.Second
	// DefaultMaxReceiveBufferPerStream is the per-stream HTTP/2 receive window: the most
	// response data the proxy buffers for one slow HTTP/1.1 reader.
	DefaultMaxReceiveBufferPerStream = 256 << 10
	// DefaultMaxHeaderBytes bounds a request's header block (front side, used by NewServer).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxResponseHeaderBytes bounds an upstream response's header block.
	DefaultMaxResponseHeaderBytes = 1 << 20
	// DefaultViaName is the pseudonym this proxy uses in Via (RFC 9110 §7.6.3).
	DefaultViaName = "muxpool"
	// DefaultResolveInterval is how often upstream host names are looked up again.
	DefaultResolveInterval = 30 * time.Second
	// DefaultMaxStreamsPerClient is the most upstream streams one client connection
	// may hold at once.
	DefaultMaxStreamsPerClient = 16
	// DefaultRequestBodyBuffer is how much of a request body is read before an
	// upstream stream is taken (nginx's client_body_buffer_size, larger).
	DefaultRequestBodyBuffer = 64 << 10
	// DefaultRequestBodyTimeout and DefaultMinRequestBodyRate: a request body's n-th
	// byte is due RequestBodyTimeout + n/MinRequestBodyRate seconds after the body
	// started (Apache mod_reqtimeout's body=20,MinRate=500).
	DefaultRequestBodyTimeout = 20 * time.Second
	DefaultMinRequestBodyRate = 500
	// DefaultResponseBodyBuffer is how far the proxy reads a response body ahead of
	// the client, so that a slow reader frees its upstream stream.
	DefaultResponseBodyBuffer = 64 << 10
	// DefaultWriteIdleTimeout bounds one write to the client (nginx's send_timeout).
	DefaultWriteIdleTimeout = 30 * time.Second
)

// Config configures a Proxy. The zero value of every field except Upstream (or Upstreams) selects a default;
// New rejects a negative count or duration with a *ConfigError naming the field, except where
// the field gives it a meaning (PingInterval, ResponseHeaderTimeout and the fairness rules).
type Config struct {
	// Upstream is where requests go: "h2c://host:port" (HTTP/2 with prior knowledge,
	// RFC 9113 §3.3), "https://host:port" (TLS with ALPN "h2") or "http://host:port"
	// (HTTP/1.1, one request per connection at a time). A path is a prefix joined to
	// every request's path ("h2c://api:80/v1" sends /users as /v1/users). It is the
	// one-host shorthand for Upstreams.
	Upstream string

	// Upstreams lists several upstream hosts, in Upstream's form, all with the same
	// scheme and path. A host name stands for every address it resolves to; each
	// address is a target with its own connections (see the package doc for how requests are
	// spread and unhealthy targets ejected).
	Upstreams []string

	// ResolveInterval is how often host names in Upstream(s) are looked up again, so
	// that a DNS change or a scaled-out service is followed without a restart. A
	// failed lookup keeps the previous addresses. Default 30 s; negative: only once.
	ResolveInterval time.Duration

	// Resolver looks up host names. Nil means net.DefaultResolver.
	Resolver Resolver

	// HealthCheckPath, if set for http:// upstreams, is GET every PingInterval from
	// each target on a connection of its own (active health, as HAProxy's
	// "option httpchk"): an answer other than 2xx or 3xx within PingTimeout counts as
	// a failure of the target, three in a row eject it. It must start with "/".
	// HTTP/2 targets are checked by PING on each connection instead.
	HealthCheckPath string

	// Rewrite, if set, is called for every request after the proxy built the
	// outbound request (URL and path prefix, Host, hop-by-hop fields removed,
	// X-Forwarded-*, Via): it may change Out's path, Host and header fields, as
	// httputil.ReverseProxy.Rewrite does. Out.URL's scheme and host are the proxy's
	// and are restored if changed.
	Rewrite func(*httputil.ProxyRequest)

	// ModifyResponse, if set, is called with every upstream response after the
	// proxy's own changes; an error makes the request fail through ErrorHandler
	// (502), as with httputil.ReverseProxy.ModifyResponse.
	ModifyResponse func(*http.Response) error

	// MaxConns caps the connections to each upstream target, counting ones being
	// dialled. Default 8 for HTTP/2 upstreams (dialled on demand, see
	// DefaultMaxConnsHTTP2) and 6 for HTTP/1.1.
	MaxConns int

	// MaxStreamsPerConn caps concurrent requests per HTTP/2 connection; the effective
	// limit is min(MaxStreamsPerConn, the peer's SETTINGS_MAX_CONCURRENT_STREAMS). An
	// h2c connection carries no request until the peer's first SETTINGS frame has been
	// processed; an https:// one carries one (TLS hides the frames; see the package doc).
	// Ignored for HTTP/1.1 upstreams. Default 100.
	MaxStreamsPerConn int

	// QueueTimeout bounds how long a request waits in the FIFO queue for a stream;
	// then it fails with ErrQueueTimeout (503). Default 15 s.
	QueueTimeout time.Duration

	// MaxQueued bounds waiting requests; one more fails at once with ErrQueueFull
	// (503). Default 4096.
	MaxQueued int

	// DialTimeout bounds establishing one upstream connection. Default 10 s.
	DialTimeout time.Duration

	// ResponseHeaderTimeout, if positive, bounds the wait for upstream response
	// headers after the request was sent; then the request fails with 504. Zero means
	// no limit, which long polling needs. Bodies are never timed.
	ResponseHeaderTimeout time.Duration

	// TLSConfig is used for https:// upstreams. Nil means a default config with the
	// upstream host as ServerName. Its NextProtos are replaced with "h2".
	TLSConfig *tls.Config

	// PingInterval is how long an HTTP/2 upstream connection may stay silent before a
	// PING health check (RFC 9113 §6.7); PingTimeout is how long the PING may stay
	// unanswered before the connection is closed and its requests fail (502).
	// Defaults 30 s and 10 s; a negative PingInterval disables health checks.
	PingInterval time.Duration
	PingTimeout  time.Duration

	// MaxReceiveBufferPerStream is the HTTP/2 receive window per upstream stream, in
	// bytes. Default 256 KiB.
	MaxReceiveBufferPerStream int

	// MaxHeaderBytes bounds a client request's header block in bytes; NewServer uses it
	// for http.Server.MaxHeaderBytes (larger blocks get 431). Default 64 KiB.
	MaxHeaderBytes int

	// MaxResponseHeaderBytes bounds an upstream response's header block. Default 1 MiB.
	MaxResponseHeaderBytes int64

	// MaxRequestBodyBytes, if positive, bounds a request body; a larger one fails
	// with 413. Zero means unlimited.
	MaxRequestBodyBytes int64

	// The fairness rules below keep one client's slowness from holding upstream
	// capacity others need: a client's slowness costs the proxy bounded memory, not
	// upstream streams. A negative value turns a rule off.
	//
	// MaxStreamsPerClient caps the upstream streams one client connection holds at
	// once (an HTTP/1.1 connection carries one request at a time anyway); its other
	// requests wait, in order, within QueueTimeout. Default 16.
	MaxStreamsPerClient int

	// RequestBodyBuffer is how much of a request body, in bytes, is read before the
	// request takes an upstream stream. A body that fits is sent whole (and can be
	// re-sent on another connection when the upstream refused it); a longer one
	// streams from there on. Default 64 KiB.
	RequestBodyBuffer int64

	// RequestBodyTimeout and MinRequestBodyRate (bytes per second) bound a slow
	// upload: the body's n-th byte must arrive within RequestBodyTimeout +
	// n/MinRequestBodyRate of its start, else the request fails with
	// ErrRequestBodyTimeout (408) and the connection closes. Defaults 20 s and 500.
	RequestBodyTimeout time.Duration
	MinRequestBodyRate int64

	// ResponseBodyBuffer is how far, in bytes, the proxy reads a response body ahead
	// of the client: a response that fits frees its upstream stream as soon as the
	// upstream has sent it, however slowly the client reads. Data is passed on as it
	// arrives (streaming is not delayed), except that a body whose Content-Length is
	// at most 32 KiB is read whole before the response is passed on. Default 64 KiB.
	ResponseBodyBuffer int

	// WriteIdleTimeout bounds each write to the client: a client that takes nothing
	// for that long is disconnected and its upstream stream released. Idle time
	// between writes (a quiet SSE stream, a long poll) does not count. Default 30 s.
	WriteIdleTimeout time.Duration

	// ViaName is the pseudonym written in Via (RFC 9110 §7.6.3). Default "muxpool".
	ViaName string

	// Logger receives one Info line per request (upstream conn, stream, queue wait,
	// status, bytes, and for a failed request its error as an error value under "err")
	// and connection events at Debug. Nil disables logging.
	Logger *slog.Logger

	// QueueWaitObserver, if set, is told each request's wait for an upstream stream
	// (see QueueWaitObserver), for a histogram; Stats has only the total and maximum.
	QueueWaitObserver QueueWaitObserver

	// ErrorHandler, if set, writes the response for a request the proxy could not
	// complete, in place of the default plain-text one. err wraps the cause, for
	// errors.Is and errors.As: ErrQueueTimeout, ErrQueueFull, ErrClosed (by default
	// 503 with Retry-After: 1), *DialError (502), ErrResponseHeaderTimeout (504), a
	// *http.MaxBytesError (413), or the transport's error (502; 504 for timeouts). A
	// client that went away (r.Context() done) gets no default response; ErrorHandler
	// is still called. "Connection: close" is already set where the client connection
	// cannot be reused. Like httputil.ReverseProxy.ErrorHandler.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
}

// upstreamMode is the protocol spoken to the upstream.
type upstreamMode int

const (
	modeH2C   upstreamMode = iota // HTTP/2 with prior knowledge over TCP
	modeH2TLS                     // HTTP/2 over TLS (ALPN h2)
	modeH1                        // HTTP/1.1 over TCP
)

// normalized returns cfg with defaults applied, the upstream mode and host:port.
func (cfg Config) normalized() (Config, upstreamMode, upstreamURLs, error) {
	var ups upstreamURLs
	list := cfg.Upstreams
	field := "Upstreams"
	if cfg.Upstream != "" {
		list = append([]string{cfg.Upstream}, list...)
		if len(cfg.Upstreams) == 0 {
			field = "Upstream"
		}
	}
	if len(list) == 0 {
		return cfg, 0, ups, &ConfigError{Field: "Upstream", Err: errors.New("no upstream")}
	}
	var mode upstreamMode
	for i, raw := range list {
		m, hostport, path, err := parseUpstream(raw)
		if err != nil {
			return cfg, 0, ups, &ConfigError{Field: field, Err: err}
		}
		if i > 0 && (m != mode || path != ups.path) {
			return cfg, 0, ups, &ConfigError{Field: field, Err: fmt.Errorf("%q: every upstream must have the same scheme and path", raw)}
		}
		mode, ups.path = m, path
		ups.hosts = append(ups.hosts, hostport)
	}
	if err := cfg.checkSigns(); err != nil {
		return cfg, 0, ups, err
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConnsHTTP2
		if mode == modeH1 {
			cfg.MaxConns = DefaultMaxConnsHTTP1
		}
	}
	if cfg.MaxStreamsPerConn == 0 {
		cfg.MaxStreamsPerConn = DefaultMaxStreamsPerConn
	}
	if mode == modeH1 {
		cfg.MaxStreamsPerConn = 1
	}
	setDur(&cfg.QueueTimeout, DefaultQueueTimeout)
	setDur(&cfg.DialTimeout, DefaultDialTimeout)
	setDur(&cfg.PingInterval, DefaultPingInterval)
	setDur(&cfg.PingTimeout, DefaultPingTimeout)
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxReceiveBufferPerStream <= 0 {
		cfg.MaxReceiveBufferPerStream = DefaultMaxReceiveBufferPerStream
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxResponseHeaderBytes <= 0 {
		cfg.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if cfg.ViaName == "" {
		cfg.ViaName = DefaultViaName
	}
	setInt(&cfg.MaxStreamsPerClient, DefaultMaxStreamsPerClient)
	setInt(&cfg.RequestBodyBuffer, DefaultRequestBodyBuffer)
	setDur(&cfg.RequestBodyTimeout, DefaultRequestBodyTimeout)
	setInt(&cfg.MinRequestBodyRate, DefaultMinRequestBodyRate)
	setInt(&cfg.ResponseBodyBuffer, DefaultResponseBodyBuffer)
	setDur(&cfg.WriteIdleTimeout, DefaultWriteIdleTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDur(&cfg.ResolveInterval, DefaultResolveInterval)
	if cfg.HealthCheckPath != "" && !strings.HasPrefix(cfg.HealthCheckPath, "/") {
		return cfg, 0, ups, &ConfigError{Field: "HealthCheckPath", Err: fmt.Errorf("%q does not start with /", cfg.HealthCheckPath)}
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return cfg, mode, ups, nil
}

// upstreamURLs is what the upstream URLs say once checked: host:port of each, and
// the path prefix they share.
type upstreamURLs struct {
	hosts []string
	path  string
}

// parseUpstream checks one upstream URL: scheme://host[:port][/path], the port
// defaulting to the scheme's.
func parseUpstream(raw string) (mode upstreamMode, hostport, path string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, "", "", err
	}
	var port string
	switch strings.ToLower(u.Scheme) {
	case "h2c":
		mode, port = modeH2C, "80"
	case "https":
		mode, port = modeH2TLS, "443"
	case "http":
		mode, port = modeH1, "80"
	default:
		return 0, "", "", fmt.Errorf("scheme %q is not h2c, https or http", u.Scheme)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return 0, "", "", fmt.Errorf("%q must be scheme://host[:port][/path]", raw)
	}
	hostport = u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), port)
	}
	return mode, hostport, strings.TrimSuffix(u.Path, "/"), nil
}

// checkSigns rejects negative counts and durations, naming the first such field; only
// PingInterval and ResponseHeaderTimeout give a negative value a meaning (no health checks,
// no bound).
func (cfg *Config) checkSigns() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxConns", int64(cfg.MaxConns)},
		{"MaxStreamsPerConn", int64(cfg.MaxStreamsPerConn)},
		{"MaxQueued", int64(cfg.MaxQueued)},
		{"QueueTimeout", int64(cfg.QueueTimeout)},
		{"DialTimeout", int64(cfg.DialTimeout)},
		{"PingTimeout", int64(cfg.PingTimeout)},
		{"MaxReceiveBufferPerStream", int64(cfg.MaxReceiveBufferPerStream)},
		{"MaxHeaderBytes", int64(cfg.MaxHeaderBytes)},
		{"MaxResponseHeaderBytes", int64(cfg.MaxResponseHeaderBytes)},
	} {
		if f.v < 0 {
			return &ConfigError{Field: f.name, Err: errNegative}
		}
	}
	return nil
}

var errNegative = errors.New("negative")

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func setInt[T int | int64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}
