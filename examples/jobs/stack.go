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

// stack is a backend served over h2c with the demux proxy in front of it, both on
// loopback: clients speak HTTP/1.1 to the proxy, which carries every request as a
// stream of one HTTP/2 connection to the backend.
type stack struct {
	URL     string // the proxy's base URL, for clients
	Backend string // the backend's address
	Proxy   *demux.Proxy

	backend, front *http.Server
	errc           chan error
}

// startStack serves h over h2c on backendAddr and the proxy on listenAddr (":0" ports
// pick free ones). With logw non-nil, the proxy writes its access log there.
func startStack(h http.Handler, backendAddr, listenAddr string, logw io.Writer) (*stack, error) {
	bl, err := net.Listen("tcp", backendAddr)
	if err != nil {
		return nil, err
	}
	backend := &http.Server{Handler: h, Protocols: new(http.Protocols), ReadHeaderTimeout: 10 * time.Second}
	backend.Protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge only
	var log *slog.Logger
	if logw != nil {
		log = slog.New(slog.NewTextHandler(logw, nil))
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
	front := demux.NewServer(fl.Addr().String(), p)
	s := &stack{URL: "http://" + fl.Addr().String(), Backend: bl.Addr().String(), Proxy: p,
		backend: backend, front: front, errc: make(chan error, 2)}
	go func() { s.errc <- backend.Serve(bl) }()
	go func() { s.errc <- front.Serve(demux.GuardListener(fl, front.MaxHeaderBytes)) }()
	return s, nil
}

// Close shuts the proxy and then the backend down gracefully, bounded by ctx; requests
// still running when ctx ends are cut off. Held requests should be released first.
func (s *stack) Close(ctx context.Context) error {
	err := s.front.Shutdown(ctx)
	if err != nil {
		s.front.Close()
	}
	s.Proxy.Close()
	if berr := s.backend.Shutdown(ctx); berr != nil {
		s.backend.Close()
		err = errors.Join(err, berr)
	}
	for range 2 {
		if serr := <-s.errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return err
}

// http1Client returns a client that speaks only HTTP/1.1, like a legacy client in front
// of the proxy.
func http1Client() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: 8}
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr}
}
