// Package demux is an HTTP/1.1-to-HTTP/2 front proxy: many client connections in
// front, a bounded pool of upstream connections behind, each request one HTTP/2
// stream (RFC 9113) or, for an http:// upstream, one turn on a pooled HTTP/1.1
// connection (the inverse mode: HTTP/2 clients in front, a bounded HTTP/1.1 pool
// behind).
//
// # Serving
//
// Serve a Proxy with NewServer: its Server reads every HTTP/1.1 connection, plain or
// TLS, through one parser that refuses ambiguous framing (Content-Length with
// Transfer-Encoding, Transfer-Encoding in HTTP/1.0, obs-fold, bare CR or LF; RFC 9112
// §6.1) with 400 and closes the connection, so that nothing of such a request, and
// nothing sent behind it, reaches the upstream. It also bounds header size and time
// and ends HTTP/2 rapid-reset floods with GOAWAY. Handing a Proxy to an http.Server
// of your own gives up the framing check: net/http accepts such a request by dropping
// Content-Length and keeps the connection open.
//
// # Upstream
//
// Config.Upstreams lists the upstream hosts (Config.Upstream is the one-host
// shorthand); a host name stands for every address it resolves to, looked up again
// every Config.ResolveInterval. Each address is a target with its own connections.
// A request takes a free stream on one of two targets picked at random, the one with
// fewer streams in use (power of two choices); requests that find every stream busy
// wait in one FIFO queue (Config.QueueTimeout, then 503). A connection never carries
// more than min(Config.MaxStreamsPerConn, the peer's SETTINGS_MAX_CONCURRENT_STREAMS)
// requests; another is dialled, up to Config.MaxConns per target, when every open
// one is full, or on machines with more cores when every one carries its share.
// Before the peer's first SETTINGS frame (RFC 9113 §3.4) an h2c connection carries
// none: the pool watches the frame headers the client reads. Under TLS the frames are
// hidden, so an https:// connection carries one request until its first response, or
// until net/http's view of the limit moves off its assumed 100 (at most 2 s).
//
// A target that fails three times in a row (dial errors, lost connections, GOAWAY,
// REFUSED_STREAM, or Config.HealthCheckPath's checks) is ejected for a backoff of 1 s
// doubling to 30 s, and requests go elsewhere; when every target is ejected a request
// fails at once with 502. HTTP/2 connections are checked with PING.
//
// # Fairness
//
// A client's slowness costs the proxy bounded memory, not upstream capacity, as
// nginx's and HAProxy's buffering does: a request body is read (up to
// Config.RequestBodyBuffer, at Config.MinRequestBodyRate) before it takes an
// upstream stream; a response is read ahead of the client (Config.ResponseBodyBuffer)
// so that the stream is released when the upstream is done; a write the client does
// not take within Config.WriteIdleTimeout ends the request; one client connection
// holds at most Config.MaxStreamsPerClient streams. Streaming (SSE, long polls, large
// transfers) is never cut off for taking long, only for stalling.
//
// # Goroutines, state and locks
//
//   - net/http runs the handler (Proxy.ServeHTTP) on a goroutine per HTTP/1.1
//     connection or per HTTP/2 stream; the request's own state (reqInfo) belongs to
//     it. A request may add a body pump (trackedBody.run, only for a body longer than
//     RequestBodyBuffer) and a response reader (readAhead.run); each has one mutex
//     guarding what it shares with the handler.
//   - A frontConn's parsing state belongs to whichever net/http goroutine calls Read
//     (one at a time; its mutex makes that safe). A tlsListener runs one accept loop
//     and one goroutine per TLS handshake.
//   - The upstream pool (upstream) has one mutex over the targets, their connections
//     and health, and the wait queue; goroutines dial, learn an https:// connection's
//     stream limit, close connections, resolve host names (one, while names are
//     configured) and run HealthCheckPath's checks (one, when set); net/http's client
//     read loops call the frame events and state hook. Each h2c connection writes
//     through a batchConn, whose flusher goroutine (one at a time, while bytes are
//     queued) has its own mutex.
//   - Per client connection: the reset budget (connGuard) and the stream share
//     (clientShares) each have their own mutex.
//
// Lock order: no package mutex is held while another is taken. upstream.mu is never
// held while calling a ClientConn method that can run its state hook; waiters are
// woken only after it is released. trackedBody's mutex is held while setting a read
// deadline through net/http, which takes none of this package's locks.
//
// Header handling and body streaming use net/http/httputil.ReverseProxy, except for
// GET and HEAD requests without a body or upgrade to an HTTP/2 upstream, which
// forwardPlain forwards with the same steps and fewer copies; upstream connections
// are net/http ClientConns.
package demux
