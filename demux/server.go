package demux

import (
	"net/http"
	"time"
)

// Front-side timeouts set by NewServer.
const (
	// DefaultReadHeaderTimeout cuts off clients that send their header block slowly.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes idle keep-alive client connections.
	DefaultIdleTimeout = 120 * time.Second
)

// NewServer returns an http.Server serving p on addr (host:port) with defaults safe
// for an Internet-facing front: ReadHeaderTimeout 10 s, IdleTimeout 120 s,
// MaxHeaderBytes from p's Config (64 KiB by default; larger header blocks get 431),
// and Protocols HTTP/1.1 + HTTP/2 over TLS + HTTP/2 with prior knowledge (h2c,
// RFC 9113 §3.3; "Upgrade: h2c" is never honoured). ReadTimeout and WriteTimeout stay
// zero so streaming responses (SSE) and long polls are not cut off. ConnContext
// and ConnState install a per-connection budget of client stream resets (100 a second)
// that makes an HTTP/2 rapid-reset flood (CVE-2023-39325) end with GOAWAY: past it, a
// reset request keeps its handler slot for up to 10 s, so the server's own stream limit
// ends the connection. When replacing either, call the previous value from the new one.
// The caller may adjust any field before serving. Serve it on a GuardListener so that
// requests with ambiguous framing (Content-Length with Transfer-Encoding) get 400
// instead of being normalised:
//
//	srv := demux.NewServer(addr, p)
//	ln, err := net.Listen("tcp", addr)
//	...
//	err = srv.Serve(demux.GuardListener(ln, srv.MaxHeaderBytes))
func NewServer(addr string, p *Proxy) *http.Server {
	gs := new(guards)
	srv := &http.Server{
		Addr:              addr,
		Handler:           p,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    p.cfg.MaxHeaderBytes,
		Protocols:         new(http.Protocols),
		ConnContext:       gs.connContext,
		ConnState:         gs.connState,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 250,
		},
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	return srv
}
