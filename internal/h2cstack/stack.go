// Package h2cstack runs, for the examples, a backend served over h2c with the demux proxy in
// front of it, both on loopback: clients speak HTTP/1.1 to the proxy, which carries every
// request as a stream of one HTTP/2 connection to the backend.
package h2cstack

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

// Stack is a running backend and the proxy in front of it.
type Stack struct {
	URL     string       // the proxy's base URL, for clients
	Backend string       // the backend's address
	Proxy   *demux.Proxy // the proxy, for its Stats

	backend *http.Server
	front   *demux.Server
	errc    chan error
}

// Start serves h over h2c (prior knowledge only) on backendAddr and the proxy, with one
// upstream connection, on listenAddr; ":0" ports pick free ones. With logw non-nil the proxy
// writes its access log there. Errors are the listeners' or demux.New's.
func Start(h http.Handler, backendAddr, listenAddr string, logw io.Writer) (*Stack, error) {
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
	s := &Stack{URL: "http://" + fl.Addr().String(), Backend: bl.Addr().String(), Proxy: p,
		backend: backend, front: front, errc: make(chan error, 2)}
	go func() { s.errc <- backend.Serve(bl) }()
	go func() { s.errc <- front.Serve(fl) }()
	return s, nil
}

// Close shuts the proxy and then the backend down gracefully, bounded by ctx; requests still
// running when ctx ends are cut off, so end held requests and event streams first. It
// returns the servers' errors other than http.ErrServerClosed.
func (s *Stack) Close(ctx context.Context) error {
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
