package main

import (
	"context"
	"io"
	"net"
	"sync"

	"github.com/muxpool/muxpool/internal/netem"
	"github.com/muxpool/muxpool/mux"
)

// legMux names where the delay sits for the mux strategies.
const legMux = "client->server"

// requestSize is the raw request of the mux workload: a small fixed-size
// message, like an RPC header.
const requestSize = 64

// muxStrategies compare six TCP connections, each carrying one request at a
// time, with one TCP connection carrying a mux stream per request.
func muxStrategies() []strategy {
	return []strategy{
		{group: "mux", name: "tcpx6", leg: legMux, start: startTCPx6},
		{group: "mux", name: "muxx1", leg: legMux, multiplexed: true, start: startMuxx1},
	}
}

// tcpServer accepts connections and runs serve on each until closed.
type tcpServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startTCPServer(serve func(net.Conn)) (*tcpServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &tcpServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				serve(c)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	return s, nil
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

func (s *tcpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// answer reads one request from rw, thinks, and writes the response. It
// reports whether rw is still usable.
func answer(ctx context.Context, rw io.ReadWriter, p params, body []byte) bool {
	var req [requestSize]byte
	if _, err := io.ReadFull(rw, req[:]); err != nil {
		return false
	}
	if !sleepCtx(ctx, p.Think) {
		return false
	}
	_, err := rw.Write(body)
	return err == nil
}

// ask writes one request on rw and reads the p.Size-byte response.
func ask(rw io.ReadWriter, buf []byte) error {
	var req [requestSize]byte
	if _, err := rw.Write(req[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(rw, buf)
	return err
}

// serverSetup starts a TCP server behind a relay; ctx ends with close.
func serverSetup(p params, serve func(ctx context.Context, c net.Conn)) (*tcpServer, *netem.Relay, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := startTCPServer(func(c net.Conn) { serve(ctx, c) })
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	r, err := netem.Listen(s.addr(), p.linkConfig())
	if err != nil {
		cancel()
		s.close()
		return nil, nil, nil, err
	}
	return s, r, func() { cancel(); r.Close(); s.close() }, nil
}

func startTCPx6(ctx context.Context, p params) (*client, error) {
	body := payload(p.Size)
	_, r, stop, err := serverSetup(p, func(ctx context.Context, c net.Conn) {
		for answer(ctx, c, p, body) {
		}
	})
	if err != nil {
		return nil, err
	}
	// A fixed pool of six connections, one request at a time on each.
	n := min(p.Clients, sixConns)
	pool := make(chan net.Conn, n)
	var all []net.Conn
	closeAll := func() {
		for _, c := range all {
			c.Close()
		}
		stop()
	}
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", r.Addr().String())
		if err != nil {
			closeAll()
			return nil, err
		}
		all = append(all, c)
		pool <- c
	}
	return &client{
		do: func(ctx context.Context) error {
			var c net.Conn
			select {
			case c = <-pool:
			case <-ctx.Done():
				return ctx.Err()
			}
			buf := make([]byte, p.Size)
			if dl, ok := ctx.Deadline(); ok {
				c.SetDeadline(dl)
			}
			err := ask(c, buf)
			pool <- c // a failed conn stays broken; later requests fail too, which the table shows
			return err
		},
		conns: r.Accepted,
		close: closeAll,
	}, nil
}

func startMuxx1(ctx context.Context, p params) (*client, error) {
	body := payload(p.Size)
	_, r, stop, err := serverSetup(p, func(ctx context.Context, c net.Conn) {
		sess, err := mux.Server(c, nil)
		if err != nil {
			return
		}
		defer sess.Close()
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			st, err := sess.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer st.Close()
				answer(ctx, st, p, body)
			}()
		}
	})
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr().String())
	if err != nil {
		stop()
		return nil, err
	}
	sess, err := mux.Client(conn, nil)
	if err != nil {
		conn.Close()
		stop()
		return nil, err
	}
	sem := make(chan struct{}, p.Streams)
	return &client{
		do: func(ctx context.Context) error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-sem }()
			st, err := sess.Open(ctx) // one stream per request
			if err != nil {
				return err
			}
			defer st.Close()
			if dl, ok := ctx.Deadline(); ok {
				st.SetDeadline(dl)
			}
			return ask(st, make([]byte, p.Size))
		},
		conns: r.Accepted,
		close: func() { sess.Close(); conn.Close(); stop() },
	}, nil
}
