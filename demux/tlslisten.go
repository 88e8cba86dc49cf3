package demux

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// tlsListener terminates TLS for ServeTLS. net/http serves HTTP/2 only on a *tls.Conn
// and sets Request.TLS on any connection with a ConnectionState method, so each
// connection is handed over after its handshake: as the *tls.Conn when ALPN chose
// "h2", otherwise wrapped for the framing check (frontTLSConn). Handshakes run in
// their own goroutines so a slow client cannot hold up the accept loop.
//
// Goroutines: one accept loop (run), one per handshake in progress. Close stops the
// loop, closes the listener and every connection still in its handshake, and waits
// for them all.
type tlsListener struct {
	ln      net.Listener
	cfg     *tls.Config
	s       *Server
	timeout time.Duration // bound on one handshake

	conns   chan net.Conn // handshaken connections for Accept
	stopped chan struct{} // closed when run ends; err says why
	err     error
	done    chan struct{} // closed by Close
	close   sync.Once
	wg      sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // in their handshake
}

func newTLSListener(ln net.Listener, cfg *tls.Config, s *Server) *tlsListener {
	timeout := s.ReadHeaderTimeout
	if timeout <= 0 {
		timeout = DefaultReadHeaderTimeout
	}
	l := &tlsListener{
		ln: ln, cfg: cfg, s: s, timeout: timeout,
		conns:   make(chan net.Conn),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
		pending: map[net.Conn]struct{}{},
	}
	l.wg.Add(1)
	go l.run()
	return l
}

// Accept returns the next connection whose handshake succeeded, or the underlying
// listener's error once its accept loop has stopped.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.stopped:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes every connection still in its handshake.
func (l *tlsListener) Close() error {
	var err error
	l.close.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.mu.Lock()
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

// Addr returns the underlying listener's address.
func (l *tlsListener) Addr() net.Addr { return l.ln.Addr() }

func (l *tlsListener) run() {
	defer l.wg.Done()
	defer close(l.stopped)
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			// Like http.Server.Serve: back off on a temporary error (EMFILE), up to 1 s.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-l.done:
				}
			}
			l.err = err
			return
		}
		backoff = 0
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			c.Close()
			return
		default:
		}
		l.pending[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		out = l.s.newFrontConn(tc, tc)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}
