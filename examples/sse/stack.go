package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/muxpool/muxpool/demux"
)

// stack is the event backend served over h2c with the demux proxy in front, both on
// loopback. HTTP/1.1 clients talk to the proxy; each event stream is one stream of the
// proxy's single HTTP/2 connection to the backend.
type stack struct {
	URL     string // the proxy's base URL
	Backend string // the backend's address
	Proxy   *demux.Proxy

	servers []*http.Server // front first, then backend
	errc    chan error
}

// startStack serves h over h2c on backendAddr and the proxy on listenAddr; ":0" ports
// pick free ones. With logw non-nil the proxy writes its access log there.
func startStack(h http.Handler, backendAddr, listenAddr string, logw io.Writer) (*stack, error) {
	var log *slog.Logger
	if logw != nil {
		log = slog.New(slog.NewTextHandler(logw, nil))
	}
	bl, err := net.Listen("tcp", backendAddr)
	if err != nil {
		return nil, err
	}
	p, err := demux.New(demux.Config{Upstream: "h2c://" + bl.Addr().String(), MaxConns: 1, Logger: log})
	if err != nil {
		bl.Close()
		return nil, err
	}
	fl, err := net.Listen("tcp", listenAddr)
	if err != nil {
		bl.Close()
		p.Close()
		return nil, err
	}
	backend := &http.Server{Handler: h, Protocols: new(http.Protocols), ReadHeaderTimeout: 10 * time.Second}
	backend.Protocols.SetUnencryptedHTTP2(true)
	front := demux.NewServer(fl.Addr().String(), p)
	s := &stack{URL: "http://" + fl.Addr().String(), Backend: bl.Addr().String(), Proxy: p,
		servers: []*http.Server{front, backend}, errc: make(chan error, 2)}
	go func() { s.errc <- front.Serve(demux.GuardListener(fl, front.MaxHeaderBytes)) }()
	go func() { s.errc <- backend.Serve(bl) }()
	return s, nil
}

// Close shuts the proxy, then the backend, down gracefully, bounded by ctx; end the
// event streams first.
func (s *stack) Close(ctx context.Context) error {
	var err error
	for i, srv := range s.servers {
		if serr := srv.Shutdown(ctx); serr != nil {
			srv.Close()
			err = errors.Join(err, serr)
		}
		if i == 0 {
			s.Proxy.Close()
		}
	}
	for range s.servers {
		if serr := <-s.errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return err
}

// http1Client returns a client that speaks only HTTP/1.1 (an EventSource in an old
// browser, say).
func http1Client() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr}
}
