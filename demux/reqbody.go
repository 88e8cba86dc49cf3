package demux

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// bodyClock enforces Config.RequestBodyTimeout and MinRequestBodyRate on one request
// body through read deadlines: before each read of the client body, the deadline is
// the time the next byte is due. A nil clock enforces nothing.
type bodyClock struct {
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  float64 // bytes per second
	n     int64   // bytes received
}

func newBodyClock(w http.ResponseWriter, cfg *Config) *bodyClock {
	if cfg.RequestBodyTimeout < 0 || cfg.MinRequestBodyRate < 0 {
		return nil
	}
	return &bodyClock{rc: http.NewResponseController(w), start: time.Now(),
		grace: cfg.RequestBodyTimeout, rate: float64(cfg.MinRequestBodyRate)}
}

// arm sets the read deadline for the next byte.
func (c *bodyClock) arm() {
	if c == nil {
		return
	}
	due := c.grace + time.Duration(float64(c.n)/c.rate*float64(time.Second))
	_ = c.rc.SetReadDeadline(c.start.Add(due))
}

// got records n bytes received and maps a deadline error to ErrRequestBodyTimeout.
func (c *bodyClock) got(n int, err error) error {
	if c == nil {
		return err
	}
	c.n += int64(n)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrRequestBodyTimeout
	}
	return err
}

// bufferBody reads src until EOF or until more than limit bytes have come, under the
// clock. It reports whether the whole body is in buf.
func bufferBody(src io.Reader, limit int64, clock *bodyClock) (buf []byte, whole bool, err error) {
	for int64(len(buf)) <= limit {
		if cap(buf)-len(buf) < 512 {
			grown := make([]byte, len(buf), min(int64(max(2*cap(buf), 4096)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		clock.arm()
		n, err := src.Read(buf[len(buf):cap(buf)])
		err = clock.got(n, err)
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	return buf, false, nil
}

// replayBody is a fully buffered request body: each attempt reads it afresh.
func replayBody(b []byte) io.ReadCloser {
	if len(b) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b))
}

// trackedBody wraps the client's request body: it records whether the upstream
// transport started reading it (a started body cannot be replayed on retry) and the
// first client-side read error.
//
// The transport reads it through a pipe fed by a pump goroutine, started by the first
// Read, so that Close (the transport abandoning the body: the upstream answered or
// reset the stream without reading all of it) ends a Read blocked on a client that
// is still sending, at once. Without it the transport's request writer stays blocked
// on the client, holding the upstream stream, and ReverseProxy's close of the
// response body waits for that writer, so the response is not delivered either. The
// client body itself belongs to the server, which closes (drains or discards) it once
// the handler has returned; finish makes sure the pump is not reading by then.
type trackedBody struct {
	r       io.Reader
	h1      bool       // the client speaks HTTP/1.x
	clock   *bodyClock // used by the pump under mu
	pr      *io.PipeReader
	pw      *io.PipeWriter
	pump    sync.Once
	done    chan struct{} // closed when the pump ends
	started atomic.Bool
	closed  atomic.Bool
	eof     atomic.Bool // the client body was read to its end

	mu      sync.Mutex
	err     error // first client-side read error
	reading bool  // the pump is inside r.Read
	ended   bool  // finish was called: the pump reads no more
}

// errBodyAbandoned is what the transport reads after it closed the body.
var errBodyAbandoned = errors.New("demux: request body closed")

func newTrackedBody(r io.Reader, h1 bool, clock *bodyClock) *trackedBody {
	b := &trackedBody{r: r, h1: h1, clock: clock, done: make(chan struct{})}
	b.pr, b.pw = io.Pipe()
	return b
}

func (b *trackedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyAbandoned
	}
	b.started.Store(true)
	b.pump.Do(func() { go b.run() })
	return b.pr.Read(p)
}

// run copies the client body into the pipe until EOF, a client error, Close or finish.
func (b *trackedBody) run() {
	defer close(b.done)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for {
		b.mu.Lock()
		if b.ended {
			b.mu.Unlock()
			b.pw.CloseWithError(errBodyAbandoned)
			return
		}
		// Armed under mu: finish's interrupt, which takes mu first, always comes later.
		b.clock.arm()
		b.reading = true
		b.mu.Unlock()
		n, err := b.r.Read(*bp)
		b.mu.Lock()
		err = b.clock.got(n, err)
		b.reading = false
		if err != nil && err != io.EOF && !b.closed.Load() && b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
		if err == io.EOF {
			b.eof.Store(true)
		}
		if n > 0 {
			if _, werr := b.pw.Write((*bp)[:n]); werr != nil {
				return // abandoned
			}
		}
		if err != nil {
			b.pw.CloseWithError(err)
			return
		}
	}
}

// Close abandons the body: a pending or later Read returns at once. The pump ends
// when its read of the client body returns. The transport's own Close does not reach
// it, as ReverseProxy hides it behind a no-op Close, so RoundTrip hands the transport
// a transportBody.
func (b *trackedBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.pr.CloseWithError(errBodyAbandoned)
	}
	return nil
}

// finish ends the body when the handler returns: it abandons it and, if the pump is
// blocked reading the client, calls interrupt (which sets a read deadline in the past)
// and waits for the pump to end. Go's HTTP/1.1 server reads the connection itself
// after the handler, and a read still in flight then panics it ("invalid concurrent
// Body.Read call").
func (b *trackedBody) finish(interrupt func()) {
	b.Close()
	b.mu.Lock()
	b.ended = true
	reading := b.reading
	b.mu.Unlock()
	if reading {
		interrupt()
		<-b.done
	}
}

// unfinished reports whether the body of an HTTP/1.x request is not read to its end
// yet (nil-safe). A response sent then carries "Connection: close": with full duplex
// the server no longer drains the rest, and finish may cut it off, so the connection
// cannot carry another request.
func (b *trackedBody) unfinished() bool {
	return b != nil && b.h1 && !b.eof.Load()
}

// transportBody is the outbound body one RoundTrip attempt gives the transport. The
// transport closes it when it is done with the body: after sending all of it, or when
// the stream ended (the upstream answered early, reset it, or the response body was
// closed). A started body is then abandoned; an unstarted one is left alone, as a
// failed attempt closes it too and the request may be retried.
type transportBody struct {
	io.Reader
	tb *trackedBody
}

func (b transportBody) Close() error {
	if b.tb.started.Load() {
		b.tb.Close()
	}
	return nil
}

func (b *trackedBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
