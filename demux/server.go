package demux

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Front-side limits set by NewServer.
const (
	// DefaultReadHeaderTimeout cuts off clients that send their header block slowly.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes idle keep-alive client connections.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxConcurrentStreams is the most requests one HTTP/2 client connection
	// may have in progress (SETTINGS_MAX_CONCURRENT_STREAMS, RFC 9113 §6.5.2), as
	// Apache's H2MaxSessionStreams and about nginx's 128.
	DefaultMaxConcurrentStreams = 100
)

// Server is the safe way to serve a Proxy: an http.Server (every field may be tuned
// before serving) whose Serve, ServeTLS, ListenAndServe and ListenAndServeTLS read
// every HTTP/1.1 connection, plain or TLS, through one parser that refuses ambiguous
// framing before net/http sees it: Content-Length with Transfer-Encoding in any
// spelling or order, Transfer-Encoding in HTTP/1.0, obs-folded fields, bare CR or LF
// (RFC 9112 §2.2, §5.2, §6.1, §6.3). Such a request gets 400 and its connection
// closes; nothing of it, and nothing sent behind it on that connection, reaches the
// handler. HTTP/2 (TLS with ALPN "h2", or h2c with prior knowledge) is framed by
// HTTP/2 itself and passes untouched. Under TLS, Request.TLS is set on every
// protocol, so the upstream receives X-Forwarded-Proto: https.
//
// Calling http.Server's own Serve on the embedded value, or serving a Proxy from an
// http.Server of your own, gives up this check: net/http accepts such a request by
// dropping Content-Length, and keeps the connection open.
//
// Shutdown and Close are http.Server's: they also close the listeners Serve wraps.
type Server struct {
	*http.Server

	hooks sync.Once
}

// NewServer returns a Server for h on addr (host:port): h is a Proxy, or any handler
// wrapping one (middleware), which keeps every protection: the framing check is the
// Server's, the fairness rules the Proxy's. Its defaults are safe for an
// Internet-facing front: ReadHeaderTimeout 10 s, IdleTimeout 120 s, MaxHeaderBytes
// from h's Config when h is a *Proxy (else, as by default, 64 KiB; larger header
// blocks get 431), at most 100
// concurrent streams per HTTP/2 connection, and Protocols HTTP/1.1 + HTTP/2 over TLS
// + HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3; "Upgrade: h2c" is never
// honoured). ReadTimeout and WriteTimeout stay zero so streaming responses (SSE) and
// long polls are not cut off; the Proxy bounds slow request bodies and stalled
// response writes itself (Config.MinRequestBodyRate, Config.WriteIdleTimeout).
//
// Serving also bounds HTTP/2 rapid-reset floods (CVE-2023-39325): a client connection
// that cancels more than 100 requests a second keeps each further cancelled request's
// handler slot for up to 10 s, so the server's own stream limit ends it with GOAWAY.
// This runs from ConnContext and ConnState, installed around any you set, at the
// first Serve. Handler is h; it may be replaced before serving.
func NewServer(addr string, h http.Handler) *Server {
	maxHeader := DefaultMaxHeaderBytes
	if p, ok := h.(*Proxy); ok {
		maxHeader = p.cfg.MaxHeaderBytes
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    maxHeader,
		Protocols:         new(http.Protocols),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: DefaultMaxConcurrentStreams,
		},
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	return &Server{Server: srv}
}

// Serve accepts connections on ln and serves them, HTTP/1.1 through the framing check
// (see Server). It returns http.ErrServerClosed after Shutdown or Close, or ln's
// Accept error.
func (s *Server) Serve(ln net.Listener) error {
	s.prepare()
	return s.Server.Serve(&frontListener{Listener: ln, s: s})
}

// ServeTLS is Serve over TLS: certFile and keyFile (PEM) are loaded unless
// TLSConfig already has a certificate and both are empty. ALPN offers "h2" and
// "http/1.1" as Protocols allows; TLSConfig is replaced by the effective config.
// Handshakes run in their own goroutines, each bounded by ReadHeaderTimeout (10 s if
// zero).
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	cfg, err := s.tlsConfig(certFile, keyFile)
	if err != nil {
		return err
	}
	s.prepare()
	return s.Server.Serve(newTLSListener(ln, cfg, s))
}

// ListenAndServe listens on TCP Addr (":http" if empty) and calls Serve.
func (s *Server) ListenAndServe() error {
	ln, err := s.listen(":http")
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// ListenAndServeTLS listens on TCP Addr (":https" if empty) and calls ServeTLS.
func (s *Server) ListenAndServeTLS(certFile, keyFile string) error {
	ln, err := s.listen(":https")
	if err != nil {
		return err
	}
	return s.ServeTLS(ln, certFile, keyFile)
}

func (s *Server) listen(def string) (net.Listener, error) {
	addr := s.Addr
	if addr == "" {
		addr = def
	}
	return net.Listen("tcp", addr)
}

// prepare installs the per-connection reset budget around the caller's ConnContext
// and ConnState, once.
func (s *Server) prepare() {
	s.hooks.Do(func() {
		gs := new(guards)
		userCtx, userState := s.ConnContext, s.ConnState
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			ctx = gs.connContext(ctx, c)
			if userCtx != nil {
				ctx = userCtx(ctx, c)
			}
			return ctx
		}
		s.ConnState = func(c net.Conn, st http.ConnState) {
			gs.connState(c, st)
			if userState != nil {
				userState(c, st)
			}
		}
	})
}

// maxHead is the longest request head the framing check passes on, in bytes: what
// net/http itself accepts (MaxHeaderBytes plus 4096 for the request line).
func (s *Server) maxHead() int {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	return n + 4096
}

// h2c reports whether the server takes HTTP/2 with prior knowledge.
func (s *Server) h2c() bool {
	return s.Protocols != nil && s.Protocols.UnencryptedHTTP2()
}

// tlsConfig builds the TLS config for ServeTLS and stores it in TLSConfig, as
// net/http's own ServeTLS would use it: ALPN "h2" and "http/1.1" as Protocols allow.
func (s *Server) tlsConfig(certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{}
	if s.TLSConfig != nil {
		cfg = s.TLSConfig.Clone()
	}
	h1, h2 := true, true
	if s.Protocols != nil {
		h1, h2 = s.Protocols.HTTP1(), s.Protocols.HTTP2()
	}
	protos := slices.DeleteFunc(slices.Clone(cfg.NextProtos), func(p string) bool {
		return (p == "h2" && !h2) || (p == "http/1.1" && !h1)
	})
	if h2 && !slices.Contains(protos, "h2") {
		protos = append(protos, "h2")
	}
	if h1 && !slices.Contains(protos, "http/1.1") {
		protos = append(protos, "http/1.1")
	}
	cfg.NextProtos = protos
	hasCert := len(cfg.Certificates) > 0 || cfg.GetCertificate != nil || cfg.GetConfigForClient != nil
	if !hasCert || certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	s.TLSConfig = cfg
	return cfg, nil
}

// newFrontConn wraps an accepted plain connection, or a TLS one that negotiated
// HTTP/1.1, for the framing check.
func (s *Server) newFrontConn(c net.Conn, tc *tls.Conn) net.Conn {
	fc := &frontConn{Conn: c, maxHead: s.maxHead(), h2c: tc == nil && s.h2c()}
	if tc != nil {
		return frontTLSConn{frontConn: fc, tc: tc}
	}
	return fc
}

// frontListener hands Serve every accepted connection wrapped for the framing check.
type frontListener struct {
	net.Listener
	s *Server
}

func (l *frontListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.s.newFrontConn(c, nil), nil
}
