package netem

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the relay's dial to its target.
const dialTimeout = 5 * time.Second

// Relay accepts TCP connections on 127.0.0.1 and forwards each to its target
// through an emulated link (see Config). It is safe for concurrent use.
type Relay struct {
	target string
	cfg    Config
	ln     net.Listener
	up     *link // accepted side -> target
	down   *link // target -> accepted side

	ctx    context.Context // cancelled by Close; bounds dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	accepted atomic.Int64
	seq      atomic.Uint64 // per-connection loss stream

	mu     sync.Mutex
	conns  map[*relayConn]struct{}
	closed bool
}

// Listen starts a relay on 127.0.0.1 with an OS-chosen port that forwards
// every accepted connection to target (host:port). It returns an error
// wrapping ErrInvalidConfig for a bad cfg, or the listen error.
func Listen(target string, cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		target: target, cfg: cfg, ln: ln,
		up:   &link{bandwidth: cfg.Bandwidth, delay: cfg.Delay},
		down: &link{bandwidth: cfg.Bandwidth, delay: cfg.Delay},
		ctx:  ctx, cancel: cancel,
		conns: make(map[*relayConn]struct{}),
	}
	r.wg.Add(1)
	go r.acceptLoop()
	return r, nil
}

// NewRelay is Listen under the name some callers expect.
func NewRelay(target string, cfg Config) (*Relay, error) { return Listen(target, cfg) }

// Addr is the address clients dial to reach the target through the relay.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Accepted is how many TCP connections the relay has accepted so far: the
// number of connections the client side opened across the emulated link.
func (r *Relay) Accepted() int64 { return r.accepted.Load() }

// Active is how many relayed connections are open now.
func (r *Relay) Active() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Close stops accepting, drops every relayed connection (queued bytes are
// discarded) and returns once all the relay's goroutines have exited. It is
// safe to call more than once; later calls return nil.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	conns := make([]*relayConn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()

	err := r.ln.Close()
	r.cancel()
	for _, c := range conns {
		c.abort()
	}
	r.wg.Wait()
	return err
}

func (r *Relay) acceptLoop() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (e.g. EMFILE): back off briefly rather
			// than spin.
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		r.accepted.Add(1)
		r.wg.Add(1)
		go r.serve(c)
	}
}

// relayConn is one relayed connection: two pipes sharing an abort signal.
type relayConn struct {
	client, server net.Conn
	up, down       *pipe
	done           chan struct{}
	once           sync.Once
}

func (c *relayConn) abort() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
		c.up.abort()
		c.down.abort()
	})
}

func (r *Relay) serve(client net.Conn) {
	defer r.wg.Done()
	d := net.Dialer{Timeout: dialTimeout}
	server, err := d.DialContext(r.ctx, "tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	done := make(chan struct{})
	n := r.seq.Add(1)
	c := &relayConn{client: client, server: server, done: done}
	c.up = newPipe(client, server, r.up, r.cfg, rand.New(rand.NewPCG(r.cfg.Seed, 2*n)), done)
	c.down = newPipe(server, client, r.down, r.cfg, rand.New(rand.NewPCG(r.cfg.Seed, 2*n+1)), done)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, f := range []func() bool{c.up.read, c.up.write, c.down.read, c.down.write} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !f() {
				c.abort() // an error on either side ends both directions
			}
		}()
	}
	wg.Wait()
	c.abort() // both directions ended cleanly: release the sockets

	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}
