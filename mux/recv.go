package mux

import (
	"bufio"
	"errors"
	"io"
	"time"
)

// The connection reader: whoever holds the read token (readtoken.go) reads frames with the
// session's receiver and hands each to the core (inbound.go). It never blocks on the
// application: data goes into stream buffers within the granted window, a full accept backlog
// means RST, and replies are queued for the writer (a pong that finds the queue full is
// dropped). The one wait on the writer is for refusals: when refuseBacklog RSTs are queued
// it waits, at most WriteTimeout, for the writer to take them (waitRefusal), which slows a
// peer that opens streams past the limits down to the pace at which it reads the refusals.

// readBufferSize is the session's read buffer in bytes: frame headers and small payloads are
// parsed from it; payloads at least this large are read straight into stream chunks (or a
// direct reader's buffer) once it is empty. It is held for the session's life (a blocked
// connection read needs somewhere to put its bytes), so it is kept small.
const readBufferSize = 4 << 10

// recvLoop reads the connection whenever no stream's Read does.
func (s *Session) recvLoop() {
	defer s.wg.Done()
	defer close(s.recvDone)
	r := s.recv
	var err error
	for {
		s.takeForLoop(err == errYielded)
		err = r.loop()
		if err == errYielded || s.interrupted(err) {
			continue
		}
		if isClosed(s.done) {
			return // the session already ended; this is its connection closing
		}
		s.recvFailed(err)
		return
	}
}

// recvFailed ends the session after a failed read: a *ProtocolError, the peer's *GoAwayError,
// the peer hanging up after its GoAway (an orderly end on its side), or the connection's error.
func (s *Session) recvFailed(err error) {
	var ge *GoAwayError
	switch {
	case errors.As(err, &ge):
		s.end(err, endAbort)
	case errors.Is(err, io.EOF) && s.remoteGoAwaySeen():
		s.fail(errClosedAfterGoAway)
	default:
		if _, ok := err.(*ProtocolError); !ok {
			err = connLost(err)
		}
		s.fail(err)
	}
}

// errYielded ends the receive loop's reading when it parked the read token for a reader.
var errYielded = errors.New("mux: read token parked")

// loop reads frames for the receive loop until an error, or until, with nothing buffered,
// the one goroutine waiting on the peer is a reader just given data: the token is then parked
// for that reader to read its next data itself. With the holdParked test hook it also parks
// the token after any frame when nobody waits on the peer.
func (r *receiver) loop() error {
	s := r.s
	stepped := false // a frame header or payload was handled in this call
	for {
		idle := !r.inFrame && r.br.Buffered() < headerSize
		if idle && r.last != nil {
			st := r.last
			r.last = nil
			s.mu.Lock()
			yielded := s.yieldLocked(st)
			s.mu.Unlock()
			if yielded {
				return errYielded
			}
		}
		if idle && stepped && s.hooks.holdParked.Load() {
			s.mu.Lock()
			parked := s.parkForTestLocked()
			s.mu.Unlock()
			if parked {
				return errYielded
			}
		}
		if _, err := r.step(true); err != nil {
			return err
		}
		stepped = true
	}
}

// receiver parses the incoming bytes into frames and hands them to the core. It is used by the
// holder of the read token only, and keeps its place across holders: a direct read
// interrupted in the middle of a frame leaves the rest of it to the next one.
type receiver struct {
	s   *Session
	br  *bufio.Reader
	hdr header

	// The frame whose payload is being read: left bytes still to come, for plan.dst (nil: to
	// be discarded), c the chunk being filled; then plan's FIN, RST and Accept are acted on.
	inFrame bool
	plan    rxPlan
	left    uint32
	c       *chunk

	// A direct read: own's data goes straight into p, pn bytes so far, until some of it had
	// to go to own's buffer instead (queued): after that, only there, to keep the order.
	own    *Stream
	p      []byte
	pn     int
	queued bool

	last *Stream // the stream that last got data, for the receive loop's yield

	// A refused SYN whose RST waits for room in the refusal queue, and when waiting ends the
	// session: the wait is resumed before anything more is read.
	refusing  uint32
	refuseDue time.Time
}

// step reads and handles one frame header or one piece of payload. Unless block is set it
// only uses bytes already buffered, and reports false when there are none to use. Errors
// are the connection's, a *ProtocolError, or the peer's *GoAwayError.
func (r *receiver) step(block bool) (bool, error) {
	if !r.refuseDue.IsZero() {
		if !block {
			return false, nil
		}
		if err := r.waitRefusal(); err != nil {
			return false, err
		}
	}
	if r.inFrame {
		if !block && r.br.Buffered() == 0 {
			return false, nil
		}
		return true, r.payload(block)
	}
	if !block && r.br.Buffered() < headerSize {
		return false, nil
	}
	b, err := r.br.Peek(headerSize)
	if err != nil {
		return false, err
	}
	copy(r.hdr[:], b)
	r.br.Discard(headerSize)
	return true, r.frame()
}

// frame hands the header just read to the core and carries out its plan.
func (r *receiver) frame() error {
	s := r.s
	s.stats.framesReceived.Add(1)
	if err := r.hdr.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	p := s.onHeaderLocked(&r.hdr, r.own)
	if p.end == nil && p.n == 0 {
		s.onFrameEndLocked(&p)
	}
	s.mu.Unlock()
	if w := p.answered; w != nil {
		if o := s.cfg.RTTObserver; o != nil {
			o.ObserveRTT(w.rtt)
		}
		close(w.done)
	}
	if p.end != nil {
		return p.end
	}
	if p.n > 0 {
		r.inFrame, r.plan, r.left = true, p, p.n
	}
	if p.refuse != 0 {
		r.refusing, r.refuseDue = p.refuse, time.Now().Add(s.cfg.WriteTimeout)
		return r.waitRefusal()
	}
	return nil
}

// payload reads the next piece of the frame's payload; the frame's FIN and RST follow the last.
func (r *receiver) payload(block bool) error {
	s := r.s
	want := int(r.left)
	if !block {
		want = min(want, r.br.Buffered())
	}
	var k int
	var err error
	var c *chunk // a chunk to hand over
	direct := 0  // bytes read into the direct reader's p
	switch st := r.plan.dst; {
	case st == nil:
		k, err = r.br.Discard(min(want, largeChunk))
	case st == r.own && r.c == nil && !r.queued && len(r.p)-r.pn >= min(int(r.left), largeChunk):
		// Straight into the reader's p only when p takes the rest of the frame, or at least
		// as much as a chunk would: a small p (io.Copy's 8 KiB, a bufio.Reader's 4 KiB)
		// would otherwise cost a connection read per p where a chunk costs one per 64 KiB.
		k, err = r.br.Read(r.p[r.pn:min(len(r.p), r.pn+want)])
		direct = k
	default:
		if r.c == nil {
			r.c = getChunk(int(r.left))
		}
		k, err = r.br.Read(r.c.b[r.c.w:min(len(r.c.b), r.c.w+want)])
		r.c.w += k
		if r.c.w == len(r.c.b) || r.left == uint32(k) {
			c, r.c = r.c, nil
		}
	}
	r.left -= uint32(k)
	if direct > 0 || c != nil || r.left == 0 {
		st := r.plan.dst
		s.mu.Lock()
		switch {
		case direct > 0:
			if s.onDirectLocked(st, direct) {
				r.pn += direct
			}
		case c != nil:
			if s.onChunkLocked(st, c) {
				r.last = st
				if st == r.own {
					r.queued = true
				}
			}
		}
		if r.left == 0 {
			s.onFrameEndLocked(&r.plan)
		}
		s.mu.Unlock()
		if r.left == 0 {
			r.inFrame, r.plan = false, rxPlan{}
		}
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// readDirect reads the connection for st, which holds the read token and has nothing
// buffered, until st's own data lands in p (it returns the count) or something else ends the
// wait (it returns 0, and Read looks again): data, FIN or RST for st in its buffer, a kick
// (Reset, Close, a new read deadline, the session's end) or a failed read. Frames for other
// streams are handled on the way, as the receive loop would. s.mu must not be held.
func (s *Session) readDirect(st *Stream, p []byte) int {
	// Data that came in since Read looked goes first. Read looked at the deadline when it
	// took the token, under s.mu, so one set since has kicked this read.
	s.mu.Lock()
	if st.readableLocked() || !s.timeDirectLocked(st.rdeadline.when()) {
		s.leaveDirectLocked(st)
		s.mu.Unlock()
		return 0
	}
	s.mu.Unlock()
	r := s.recv
	r.own, r.p, r.pn, r.queued = st, p, 0, false
	// Block in the connection only while nothing has come for st.
	s.readAsHolder(func() bool {
		if r.pn > 0 {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return !st.readableLocked()
	})
	n := r.pn
	r.own, r.p, r.pn = nil, nil, 0
	s.mu.Lock()
	s.leaveDirectLocked(st)
	s.mu.Unlock()
	return n
}

// readAsHolder reads frames for a Read or Write holding the read token: it blocks in the
// connection while wait reports true, and then handles only what is already buffered. A kick
// or the holder's deadline ends a read in the connection (a timeout), a kick also a refusal
// wait (errRefusalWait, resumed by the next reader): neither is the session's failure; any
// other error ends the session. s.mu must not be held.
func (s *Session) readAsHolder(wait func() bool) {
	r := s.recv
	var err error
	for {
		var more bool
		if more, err = r.step(wait()); err != nil || !more {
			break
		}
	}
	if err != nil && err != errRefusalWait && !s.interrupted(err) && !isClosed(s.done) {
		s.recvFailed(err)
	}
}

// readForWindowLocked lets st's Write, whose send window is used up, read the connection
// itself while the read token is parked (a window read), until a WindowUpdate opens the
// window or something ends the wait: Close or Reset of st, its write deadline (on the
// connection while it reads), the session's end, a kick. Frames for other streams, and data
// for st, are handled on the way as the receive loop would. Then it sends what the window
// allows. It reports whether it read; the Write then looks at the stream again. s.mu must be
// held; it is released while reading.
func (s *Session) readForWindowLocked(st *Stream) bool {
	if st.inflight > 0 || !st.waitsForWindowLocked() || !s.takeForWindowLocked(st) {
		return false
	}
	if !s.timeDirectLocked(st.wdeadline.when()) {
		s.leaveDirectLocked(st)
		return false // the Write's wait sees the deadline
	}
	s.mu.Unlock()
	// Block in the connection only while st's window stays used up.
	s.readAsHolder(func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return st.waitsForWindowLocked() && !isClosed(s.done)
	})
	s.mu.Lock()
	s.leaveDirectLocked(st)
	s.resumeWriteLocked(st)
	return true
}

// waitsForWindowLocked reports whether st's pending Write, still wanted, has bytes left and
// no send window for them. s.mu must be held.
func (st *Stream) waitsForWindowLocked() bool {
	return st.sendWindow <= 0 && len(st.wbuf) > 0 && st.send == sendOpen && st.writeCancel == nil
}

// aliveReader is the connection as the receiver reads it: every read that returns bytes is
// a sign of life for keepalive, also inside a long frame, since a peer may send one frame as
// large as the window it was granted (16 MiB).
type aliveReader struct{ s *Session }

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.s.conn.Read(p)
	if n > 0 {
		if a.s.cfg.EnableKeepAlive {
			a.s.lastRecv.Store(time.Now().UnixNano())
		}
		if h := a.s.hooks.afterConnRead.Load(); h != nil {
			(*h)(n)
		}
	}
	return n, err
}

// errRefusalWait interrupts a direct read waiting for room for a refusal (its stream was
// reset or closed, or got a read deadline); the next reader resumes the wait.
var errRefusalWait = errors.New("mux: refusal wait interrupted")

// waitRefusal waits for room for the pending refusal, until refuseDue; past it, the peer is
// not reading, and the session ends with a *ProtocolError.
func (r *receiver) waitRefusal() error {
	s := r.s
	var kick, expired chan struct{} // a direct reader's own stream: Reset, Close, its read deadline
	if r.own != nil {
		kick, expired = r.own.readReady, r.own.rdeadline.wait()
	}
	t := time.NewTimer(time.Until(r.refuseDue))
	defer t.Stop()
	for {
		s.mu.Lock()
		queued := s.sched.refuseLocked(r.refusing)
		s.mu.Unlock()
		if queued {
			break
		}
		if h := s.hooks.inRefusalWait.Load(); h != nil {
			(*h)(r.own)
		}
		select {
		case <-s.sched.drained:
		case <-t.C:
			return protocolErrorf("peer opened streams past the limits and does not read the refusals")
		case <-s.done:
			r.refuseDue = time.Time{}
			return nil
		case <-kick:
			return errRefusalWait
		case <-expired:
			return errRefusalWait
		}
	}
	r.refuseDue = time.Time{}
	return nil
}
