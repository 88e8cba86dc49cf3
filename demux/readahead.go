package demux

import (
	"errors"
	"io"
	"sync"
	"time"
)

// Bounds on draining an abandoned HTTP/1.1 response so its connection can be reused.
const (
	drainMax   = 256 << 10       // bytes
	drainGrace = 2 * time.Second // from the client's abandoning it
)

// readAhead reads a response body ahead of the client (Config.ResponseBodyBuffer), so
// that the upstream stream is released when the upstream has sent everything, not
// when a slow client has read it. One goroutine (run) reads the upstream body into
// pooled 32 KiB chunks, at most maxChunks of them; the handler's goroutine reads the
// chunks (Read) as they come, so streaming is not delayed. When the upstream body
// ends, run closes it, which releases the stream.
//
// A client that goes away closes the readAhead: an HTTP/2 upstream stream is then
// reset at once; an HTTP/1.1 response (drain) is read on to its end, up to drainMax
// bytes and drainGrace, so that its connection stays reusable (a reset would cost a
// new connection per cancelled request).
//
// mu guards the chunk list, err and closed; run reads from src without it.
type readAhead struct {
	src       io.ReadCloser
	maxChunks int
	drain     bool

	mu     sync.Mutex
	cond   sync.Cond // signalled when a chunk is added or taken, on err and on close
	chunks []raChunk
	err    error // the upstream body's end: io.EOF or its error
	closed bool
}

type raChunk struct {
	buf  *[]byte // from copyBufs
	r, w int     // unread bytes are (*buf)[r:w]
}

// smallBody is the largest declared response length read whole before the response
// is passed on (readSmall): one pooled buffer, no goroutine.
const smallBody = 32 << 10

// readSmall reads a response body of declared length n <= smallBody to its end (so
// that trailers arrive) and closes src, releasing the upstream stream; the returned
// body serves the bytes and hands the buffer back on Close. A read error is
// returned after the bytes that came before it.
func readSmall(src io.ReadCloser, n int) io.ReadCloser {
	bp := copyBufs.Get().(*[]byte)
	got, err := io.ReadFull(src, (*bp)[:n])
	if err == nil {
		var one [1]byte
		var k int
		k, err = src.Read(one[:])
		if k > 0 {
			err = errors.New("demux: response body longer than its Content-Length")
		}
	}
	if err == io.EOF {
		err = nil
	}
	src.Close()
	return &smallResponse{b: (*bp)[:got], bp: bp, err: err}
}

// smallResponse is a response body read whole by readSmall.
type smallResponse struct {
	b   []byte
	bp  *[]byte // nil after Close
	err error   // returned after b; nil means io.EOF
	mu  sync.Mutex
}

func (r *smallResponse) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.b) == 0 || r.bp == nil {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *smallResponse) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bp != nil {
		copyBufs.Put(r.bp)
		r.bp, r.b = nil, nil
	}
	return nil
}

// errResponseAbandoned is what Read returns after Close.
var errResponseAbandoned = errors.New("demux: response body closed")

func newReadAhead(src io.ReadCloser, limit int, drain bool) *readAhead {
	ra := &readAhead{src: src, maxChunks: max(1, limit/(32<<10)), drain: drain}
	ra.cond.L = &ra.mu
	go ra.run()
	return ra
}

func (ra *readAhead) run() {
	var abandoned time.Time
	drained := 0
	for {
		ra.mu.Lock()
		for len(ra.chunks) >= ra.maxChunks && !ra.closed {
			ra.cond.Wait()
		}
		closed := ra.closed
		ra.mu.Unlock()
		if closed {
			if !ra.drain || drained >= drainMax || (!abandoned.IsZero() && time.Since(abandoned) > drainGrace) {
				ra.src.Close()
				return
			}
			if abandoned.IsZero() {
				abandoned = time.Now()
				t := time.AfterFunc(drainGrace, func() { ra.src.Close() })
				defer t.Stop()
			}
		}
		bp := copyBufs.Get().(*[]byte)
		n, err := ra.src.Read(*bp)
		ra.mu.Lock()
		if ra.closed {
			drained += n
			copyBufs.Put(bp)
		} else {
			ra.addLocked(bp, n)
		}
		if err != nil {
			ra.err = err
		}
		ra.cond.Broadcast()
		ra.mu.Unlock()
		if err != nil {
			ra.src.Close()
			return
		}
	}
}

// addLocked queues n bytes read into bp; a small read joins the last chunk when it
// fits, so that many small reads (SSE events) do not pin many buffers.
func (ra *readAhead) addLocked(bp *[]byte, n int) {
	if n == 0 {
		copyBufs.Put(bp)
		return
	}
	if k := len(ra.chunks); k > 0 {
		last := &ra.chunks[k-1]
		if n <= len(*last.buf)-last.w {
			last.w += copy((*last.buf)[last.w:], (*bp)[:n])
			copyBufs.Put(bp)
			return
		}
	}
	ra.chunks = append(ra.chunks, raChunk{buf: bp, w: n})
}

// Read returns read-ahead bytes, waiting for some; at the end it returns the upstream
// body's own error (io.EOF when complete).
func (ra *readAhead) Read(p []byte) (int, error) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for len(ra.chunks) == 0 && ra.err == nil && !ra.closed {
		ra.cond.Wait()
	}
	if ra.closed {
		return 0, errResponseAbandoned
	}
	if len(ra.chunks) == 0 {
		return 0, ra.err
	}
	c := &ra.chunks[0]
	n := copy(p, (*c.buf)[c.r:c.w])
	if c.r += n; c.r == c.w {
		copyBufs.Put(c.buf)
		ra.chunks[0] = raChunk{}
		ra.chunks = ra.chunks[1:]
		ra.cond.Broadcast()
	}
	return n, nil
}

// Close abandons the rest of the body (see readAhead). It does not wait for run.
func (ra *readAhead) Close() error {
	ra.mu.Lock()
	if !ra.closed {
		ra.closed = true
		for _, c := range ra.chunks {
			copyBufs.Put(c.buf)
		}
		ra.chunks = nil
		ra.cond.Broadcast()
	}
	ra.mu.Unlock()
	if !ra.drain {
		ra.src.Close() // ends a Read in progress in run at once
	}
	return nil
}
