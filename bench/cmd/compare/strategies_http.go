package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/muxpool/muxpool/demux"
	"github.com/muxpool/muxpool/internal/netem"
)

// legClientBackend names where the delay sits for the direct HTTP strategies.
const legClientBackend = "client->backend"

// httpStrategies are the browser-like comparison: one client with six
// HTTP/1.1 connections against one HTTP/2 (h2c) connection to the same
// backend, the relay between client and backend.
func httpStrategies() []strategy {
	return []strategy{
		{group: "http", name: "h1x6", leg: legClientBackend, start: startH1x6},
		{group: "http", name: "h2x1", leg: legClientBackend, multiplexed: true, start: startH2x1},
	}
}

// backend is the HTTP server every HTTP strategy talks to. It serves HTTP/1.1
// and h2c (prior knowledge) on one port and answers every request with
// p.Size bytes after p.Think.
type backend struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func startBackend(p params) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := payload(p.Size)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if !sleepCtx(r.Context(), p.Think) {
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		}),
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
		// The server must not be the limit on streams: the comparison is
		// about the client's connection strategy.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: max(250, p.Streams)},
	}
	b := &backend{srv: srv, ln: ln, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		srv.Serve(ln)
	}()
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) close() {
	b.srv.Close()
	<-b.done
}

// payload is the response body: n bytes of a recognisable pattern.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// linkConfig is the delayed leg's emulated link.
func (p params) linkConfig() netem.Config {
	return netem.Config{Delay: p.RTT / 2, Bandwidth: p.Bandwidth, Loss: p.Loss, Stall: p.Stall, Seed: p.Seed}
}

// get performs one GET with rt and checks the response is p.Size bytes.
func get(ctx context.Context, rt http.RoundTripper, url string, size int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("compare: status %s", resp.Status)
	}
	if n != int64(size) {
		return fmt.Errorf("%w: got %d bytes, want %d", errShortResponse, n, size)
	}
	return nil
}

// directSetup starts a backend behind a relay.
func directSetup(p params) (*backend, *netem.Relay, error) {
	b, err := startBackend(p)
	if err != nil {
		return nil, nil, err
	}
	r, err := netem.Listen(b.addr(), p.linkConfig())
	if err != nil {
		b.close()
		return nil, nil, err
	}
	return b, r, nil
}

func startH1x6(_ context.Context, p params) (*client, error) {
	b, r, err := directSetup(p)
	if err != nil {
		return nil, err
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr := &http.Transport{
		Protocols:           &protos,
		MaxConnsPerHost:     sixConns,
		MaxIdleConnsPerHost: sixConns, // else conns beyond the default 2 idle are closed and redialled
		DisableCompression:  true,
	}
	url := "http://" + r.Addr().String() + "/"
	return &client{
		do:    func(ctx context.Context) error { return get(ctx, tr, url, p.Size) },
		conns: r.Accepted,
		close: func() { tr.CloseIdleConnections(); r.Close(); b.close() },
	}, nil
}

func startH2x1(ctx context.Context, p params) (*client, error) {
	b, r, err := directSetup(p)
	if err != nil {
		return nil, err
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	tr := &http.Transport{Protocols: &protos, DisableCompression: true}
	// One connection, explicitly: Transport's own pool may dial more h2
	// connections under load (see the notes on golang/go#70809).
	cc, err := tr.NewClientConn(ctx, "http", r.Addr().String())
	if err != nil {
		r.Close()
		b.close()
		return nil, err
	}
	url := "http://" + r.Addr().String() + "/"
	sem := make(chan struct{}, p.Streams)
	return &client{
		do: func(ctx context.Context) error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-sem }()
			return get(ctx, cc, url, p.Size)
		},
		conns: r.Accepted,
		close: func() { cc.Close(); r.Close(); b.close() },
	}, nil
}

// legProxyUpstream names where the delay sits for the demux strategies: the
// proxy's upstream hop, the only hop where aggregating many clients onto few
// connections can help.
const legProxyUpstream = "proxy->upstream"

// demuxStrategies put demux between many HTTP/1.1 clients and the backend and
// compare its two upstream modes: a pool of six HTTP/1.1 connections against
// one h2c connection.
func demuxStrategies() []strategy {
	return []strategy{
		{group: "demux", name: "h1pool6", leg: legProxyUpstream, start: startDemux("http", sixConns)},
		{group: "demux", name: "h2cx1", leg: legProxyUpstream, multiplexed: true, start: startDemux("h2c", 1)},
	}
}

// startDemux returns a strategy start function for an upstream of scheme
// ("http" or "h2c") with maxConns connections.
func startDemux(scheme string, maxConns int) func(context.Context, params) (*client, error) {
	return func(_ context.Context, p params) (*client, error) {
		b, r, err := directSetup(p)
		if err != nil {
			return nil, err
		}
		proxy, err := demux.New(demux.Config{
			Upstream:          scheme + "://" + r.Addr().String(),
			MaxConns:          maxConns,
			MaxStreamsPerConn: p.Streams,
			QueueTimeout:      p.requestTimeout(),
		})
		if err != nil {
			r.Close()
			b.close()
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			proxy.Close()
			r.Close()
			b.close()
			return nil, err
		}
		front := demux.NewServer(ln.Addr().String(), proxy)
		served := make(chan struct{})
		go func() { defer close(served); front.Serve(ln) }()

		// Many HTTP/1.1 clients: one connection per concurrent requester.
		var protos http.Protocols
		protos.SetHTTP1(true)
		tr := &http.Transport{
			Protocols:           &protos,
			MaxConnsPerHost:     p.Clients,
			MaxIdleConnsPerHost: p.Clients,
			DisableCompression:  true,
		}
		url := "http://" + ln.Addr().String() + "/"
		return &client{
			do:    func(ctx context.Context) error { return get(ctx, tr, url, p.Size) },
			conns: r.Accepted,
			close: func() {
				tr.CloseIdleConnections()
				front.Close()
				<-served
				proxy.Close()
				r.Close()
				b.close()
			},
		}, nil
	}
}
