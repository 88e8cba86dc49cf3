package netem

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// readSize is the largest chunk read from a socket at once.
const readSize = 32 << 10

// chunk is bytes read from the sender, released to the receiver at due.
type chunk struct {
	buf *[readSize]byte // from bufPool
	n   int             // bytes used in buf
	due time.Time
}

// pipe carries one direction of one relayed connection. A reader goroutine
// stamps and queues chunks; a writer goroutine releases them in order when
// due. Splitting the two is what keeps the delay from capping throughput.
type pipe struct {
	src, dst net.Conn
	link     *link
	loss     float64
	stall    time.Duration
	limit    int             // max queued bytes
	rng      *rand.Rand      // used by the reader only
	done     <-chan struct{} // closed when the connection is aborted

	mu      sync.Mutex
	cond    sync.Cond
	q       []chunk
	queued  int  // bytes in q
	eof     bool // the reader saw EOF; the writer half-closes after draining
	aborted bool
}

func newPipe(src, dst net.Conn, l *link, cfg Config, rng *rand.Rand, done <-chan struct{}) *pipe {
	p := &pipe{src: src, dst: dst, link: l, loss: cfg.Loss, stall: cfg.Stall,
		limit: cfg.QueueBytes, rng: rng, done: done}
	p.cond.L = &p.mu
	return p
}

// abort wakes both goroutines so they return.
func (p *pipe) abort() {
	p.mu.Lock()
	p.aborted = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// bufPool recycles read buffers: a chunk owns its buffer from read until
// the writer has sent it.
var bufPool = sync.Pool{New: func() any { return new([readSize]byte) }}

// read runs until src ends. It reports whether it ended cleanly (EOF).
func (p *pipe) read() bool {
	for {
		buf := bufPool.Get().(*[readSize]byte)
		n, err := p.src.Read(buf[:])
		if n == 0 {
			bufPool.Put(buf)
		} else if !p.enqueue(buf, n) {
			bufPool.Put(buf)
			return false
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return false
			}
			p.mu.Lock()
			p.eof = true
			p.cond.Broadcast()
			p.mu.Unlock()
			return true
		}
	}
}

// enqueue waits for room, then queues buf[:n], taking ownership of buf. It
// reports false, leaving buf to the caller, once the pipe is aborted.
func (p *pipe) enqueue(buf *[readSize]byte, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.queued > 0 && p.queued+n > p.limit && !p.aborted {
		p.cond.Wait()
	}
	if p.aborted {
		return false
	}
	// Stamp after waiting for room: time spent blocked is back-pressure on
	// the sender, not time on the wire.
	due := p.link.due(time.Now(), n)
	if p.lost(n) {
		due = due.Add(p.stall)
	}
	p.q = append(p.q, chunk{buf: buf, n: n, due: due})
	p.queued += n
	p.cond.Broadcast()
	return true
}

// lost draws whether any segment of an n-byte chunk is lost.
func (p *pipe) lost(n int) bool {
	if p.loss == 0 {
		return false
	}
	for range (n + segmentSize - 1) / segmentSize {
		if p.rng.Float64() < p.loss {
			return true
		}
	}
	return false
}

// write releases queued chunks in order when due. It reports whether it ended
// cleanly: the reader's EOF forwarded as a half-close after the last byte.
func (p *pipe) write() bool {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for len(p.q) == 0 && !p.eof && !p.aborted {
			p.cond.Wait()
		}
		if p.aborted {
			p.mu.Unlock()
			return false
		}
		if len(p.q) == 0 { // eof, drained
			p.mu.Unlock()
			return closeWrite(p.dst) == nil
		}
		c := p.q[0]
		p.mu.Unlock()

		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.done:
				return false
			}
		}
		if _, err := p.dst.Write(c.buf[:c.n]); err != nil {
			return false
		}

		p.mu.Lock()
		p.q[0] = chunk{}
		p.q = p.q[1:]
		p.queued -= c.n
		bufPool.Put(c.buf)
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// closeWrite half-closes c when it supports it, so a peer's EOF travels
// through the relay while the other direction goes on.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
