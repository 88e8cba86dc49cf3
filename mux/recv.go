package mux

import (
	"bufio"
	"errors"
	"io"
	"math"
	"time"
)

// readBufferSize is the session's read buffer in bytes: frame headers and small payloads are
// parsed from it; payloads at least this large are read straight into stream chunks (or a
// direct reader's buffer) once it is empty. It is held for the session's life (a blocked
// connection read needs somewhere to put its bytes), so it is kept small.
const readBufferSize = 4 << 10

// recvLoop reads the connection whenever no stream's Read does (see readtoken.go). It never
// blocks on the application: data goes into stream buffers within the granted window, a full
// accept backlog means RST, and replies are queued for the send loop (a pong that finds the
// queue full is dropped). The one wait on sending is for refusals: when refuseBacklog RSTs
// are queued it waits, at most WriteTimeout, for the send loop to take them (waitRefusal).
func (s *Session) recvLoop() {
	defer s.wg.Done()
	defer close(s.recvDone)
	r := s.recv
	var err error
	for {
		s.takeForLoop(err == errYielded)
		err = r.loop()
		if err == errYielded || s.kicked(err) {
			continue
		}
		if isClosed(s.done) {
			return // the session already ended; this is its connection closing
		}
		s.recvFailed(err)
		return
	}
}

// recvFailed ends the session after a failed read: a *ProtocolError, the peer hanging up
// after its GoAway (an orderly end on its side), or the connection's error.
func (s *Session) recvFailed(err error) {
	if _, ok := err.(*ProtocolError); ok {
		s.fail(err)
	} else if errors.Is(err, io.EOF) && s.remoteGoAwaySeen() {
		s.fail(errClosedAfterGoAway)
	} else {
		s.fail(connLost(err))
	}
}

// errYielded ends the receive loop's reading when it parked the read token for a reader.
var errYielded = errors.New("mux: read token parked")

// loop reads frames for the receive loop until an error, or until, with nothing buffered,
// the one goroutine waiting on the peer is a reader just given data: the token is then parked
// for that reader to read its next data itself. With the holdParked test hook it also parks
// the token after any frame when nobody waits on the peer.
func (r *receiver) loop() error {
	stepped := false // a frame header or payload was handled in this call
	for {
		if r.last != nil && !r.inFrame && r.br.Buffered() < headerSize {
			st := r.last
			r.last = nil
			if r.s.yield(st) {
				return errYielded
			}
		}
		if stepped && !r.inFrame && r.br.Buffered() < headerSize && r.s.hooks.holdParked.Load() && r.s.parkForTest() {
			return errYielded
		}
		if _, err := r.step(true); err != nil {
			return err
		}
		stepped = true
	}
}

// receiver parses the incoming bytes into frames and acts on them. It is used by the holder
// of the read token only, and keeps its place across holders: a direct read interrupted in
// the middle of a frame leaves the rest of it to the next one.
type receiver struct {
	s   *Session
	br  *bufio.Reader
	hdr header

	// The frame whose payload is being read: left bytes still to come, for dst (nil: to be
	// discarded), c the chunk being filled. Then tail, with flags, gets the frame's FIN or
	// RST, and is handed to Accept if accepted.
	inFrame  bool
	left     uint32
	dst      *Stream
	c        *chunk
	tail     *Stream
	flags    uint16
	accepted bool

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
// are the connection's or a *ProtocolError.
func (r *receiver) step(block bool) (bool, error) {
	if r.refuseDue != (time.Time{}) {
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

// frame handles the header just read.
func (r *receiver) frame() error {
	s := r.s
	s.stats.framesReceived.Add(1)
	h := &r.hdr
	if err := h.validate(); err != nil {
		return err
	}
	if isClosed(s.done) {
		// Ending: keep the framing in sync while lingering, act on nothing.
		if h.typ() == typeData {
			r.expect(nil, h.length())
		}
		return nil
	}
	switch h.typ() {
	case typePing:
		return r.ping(h)
	case typeGoAway:
		return r.goAway(h)
	}
	return r.streamFrame(h)
}

// expect starts reading a payload of n bytes for st (nil: discard it).
func (r *receiver) expect(st *Stream, n uint32) {
	if n > 0 {
		r.inFrame, r.dst, r.left = true, st, n
	}
}

// payload reads the next piece of the frame's payload; the frame's FIN and RST follow the last.
func (r *receiver) payload(block bool) error {
	want := int(r.left)
	if !block {
		want = min(want, r.br.Buffered())
	}
	var k int
	var err error
	switch st := r.dst; {
	case st == nil:
		k, err = r.br.Discard(min(want, largeChunk))
		r.left -= uint32(k)
	case st == r.own && r.pn < len(r.p) && r.c == nil && !r.queued:
		k, err = r.br.Read(r.p[r.pn:min(len(r.p), r.pn+want)])
		r.left -= uint32(k)
		if k > 0 {
			r.deliverDirect(k)
		}
	default:
		if r.c == nil {
			r.c = getChunk(int(r.left))
		}
		c := r.c
		k, err = r.br.Read(c.b[c.w:min(len(c.b), c.w+want)])
		r.left -= uint32(k)
		c.w += k
		if c.w == len(c.b) || r.left == 0 {
			r.c = nil
			r.deliver(st, c)
		}
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if r.left == 0 {
		r.inFrame, r.dst = false, nil
		r.finish()
	}
	return nil
}

// deliver appends a filled chunk to st's buffer.
func (r *receiver) deliver(st *Stream, c *chunk) {
	st.mu.Lock()
	st.pending -= uint32(c.w - c.r)
	if st.recvErr != nil || st.readClosed {
		st.mu.Unlock()
		putChunk(c)
		return
	}
	st.buf.add(c)
	st.mu.Unlock()
	notify(st.readReady)
	r.last = st
	if st == r.own {
		r.queued = true
	}
}

// deliverDirect accounts k bytes read straight into the direct reader's buffer.
func (r *receiver) deliverDirect(k int) {
	st := r.own
	st.mu.Lock()
	st.pending -= uint32(k)
	if st.recvErr != nil || st.readClosed {
		st.mu.Unlock()
		return // dropped, as buffered data is
	}
	r.pn += k
	delta := st.creditLocked(k)
	st.mu.Unlock()
	if delta > 0 {
		r.s.sched.grant(st, delta)
	}
}

// aliveReader is the connection as the receiver reads it: every read that returns bytes is
// a sign of life for keepalive, also inside a long frame, since a peer may send one frame as
// large as the window it was granted (16 MiB).
type aliveReader struct{ s *Session }

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.s.conn.Read(p)
	if n > 0 && a.s.cfg.EnableKeepAlive {
		a.s.lastRecv.Store(time.Now().UnixNano())
	}
	return n, err
}

func (r *receiver) ping(h *header) error {
	switch {
	case h.flags()&flagSYN != 0:
		if !r.s.sched.pong(h.length()) {
			r.s.stats.pongsDropped.Add(1)
		}
	case h.flags()&flagACK != 0:
		r.s.pings.answered(r.s, h.length())
	}
	return nil
}

func (r *receiver) goAway(h *header) error {
	code := h.length()
	if code == GoAwayNormal {
		s := r.s
		s.mu.Lock()
		s.remoteGoAway = true
		close(s.ackWait) // Open waiters re-check and fail with ErrRemoteGoAway
		s.ackWait = make(chan struct{})
		s.mu.Unlock()
		return nil
	}
	r.s.end(&GoAwayError{Code: code, Remote: true}, endAbort)
	return nil
}

// streamFrame handles a Data or WindowUpdate frame: SYN, ACK, payload or credit, FIN, RST,
// in that order.
func (r *receiver) streamFrame(h *header) error {
	s := r.s
	id, flags, length := h.streamID(), h.flags(), h.length()
	isData := h.typ() == typeData
	if isData {
		s.stats.bytesReceived.Add(uint64(length))
	}

	var st *Stream
	var accepted bool
	if flags&flagSYN != 0 {
		var err error
		st, err = r.incoming(id)
		if err != nil && err != errRefusalWait {
			return err
		}
		if st == nil { // refused
			if isData {
				r.expect(nil, length)
			}
			return err // errRefusalWait: the RST is queued before anything more is read
		}
		accepted = true
	} else if r.own != nil && id == r.own.id {
		st = r.own // a direct reader's own stream: no table lookup (a reset one discards)
	} else {
		st = s.lookup(id)
	}
	if st == nil {
		// Closed or never opened: keep the framing, ignore the rest (as hashicorp/yamux does).
		if isData {
			r.expect(nil, length)
		}
		return nil
	}

	if st.outbound && !st.acked.Load() && flags&flagRST == 0 {
		// ACK, or any frame from the peer on the stream, settles the open.
		if st.acked.CompareAndSwap(false, true) {
			s.mu.Lock()
			s.ackedLocked()
			s.mu.Unlock()
			if st.openTimer != nil {
				st.openTimer.Stop()
			}
		}
	}

	switch {
	case flags&flagRST != 0:
		// Length on an RST is not credit (go-yamux v5 puts an error code there), and data
		// riding on it is moot: the stream is gone.
		if isData {
			r.expect(nil, length)
		}
	case isData:
		r.data(st, length)
	case length > 0:
		r.credit(st, length)
	}
	r.tail, r.flags, r.accepted = st, flags, accepted
	if !r.inFrame {
		r.finish()
	}
	return nil
}

// finish acts on the frame's FIN and RST once its payload is read, and hands a new stream to
// Accept.
func (r *receiver) finish() {
	st, flags := r.tail, r.flags
	if st == nil {
		return
	}
	r.tail = nil
	if flags&flagFIN != 0 {
		st.mu.Lock()
		already := st.finRecv || st.recvErr != nil
		st.finRecv = true
		if st.closeTimer != nil {
			st.closeTimer.Stop()
		}
		st.mu.Unlock()
		if !already {
			notify(st.readReady)
			st.finish(bitRecvDone)
		}
	}
	if flags&flagRST != 0 {
		r.s.stats.resetsReceived.Add(1)
		st.reset(errResetByPeer, false)
	}
	if r.accepted {
		r.accepted = false
		r.s.acceptCh <- st // room was checked in incoming; only the token holder sends
	}
}

// incoming handles a SYN: it returns the new stream, nil if the stream was refused with RST,
// or a *ProtocolError for a duplicate or wrong-parity ID.
func (r *receiver) incoming(id uint32) (*Stream, error) {
	s := r.s
	if (id%2 == 1) == s.client {
		return nil, protocolErrorf("SYN for stream %d, an ID of this side's parity", id)
	}
	s.mu.Lock()
	if _, dup := s.streams[id]; dup {
		s.mu.Unlock()
		return nil, protocolErrorf("duplicate SYN for live stream %d", id)
	}
	refuse := s.localGoAway || s.incoming >= s.cfg.MaxIncomingStreams ||
		len(s.acceptCh) == cap(s.acceptCh) || !s.mem.reserve(initialWindow)
	var st *Stream
	if !refuse {
		st = newStream(s, id, false)
		s.streams[id] = st
		s.incoming++
	}
	s.mu.Unlock()
	if refuse {
		s.stats.streamsRefused.Add(1)
		return nil, r.refuse(id)
	}
	return st, nil
}

// refuse queues an RST for id. While the refusal queue is full the receiver waits for the
// send loop to drain it: a peer that opens streams past the limits is slowed down to the pace
// at which it reads the refusals. If that takes longer than WriteTimeout the peer is not
// reading, and the session ends with a *ProtocolError.
func (r *receiver) refuse(id uint32) error {
	if r.s.sched.refuse(id) {
		return nil
	}
	r.refusing, r.refuseDue = id, time.Now().Add(r.s.cfg.WriteTimeout)
	return r.waitRefusal()
}

// errRefusalWait interrupts a direct read waiting for room for a refusal (its stream was
// reset or closed, or got a read deadline); the next reader resumes the wait.
var errRefusalWait = errors.New("mux: refusal wait interrupted")

// waitRefusal waits for room for the pending refusal, until refuseDue.
func (r *receiver) waitRefusal() error {
	s := r.s
	var kick chan struct{} // a direct reader's own stream: Reset, Close, a read deadline
	if r.own != nil {
		kick = r.own.readReady
	}
	t := time.NewTimer(time.Until(r.refuseDue))
	defer t.Stop()
	for !s.sched.refuse(r.refusing) {
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
		}
	}
	r.refuseDue = time.Time{}
	return nil
}

// data starts reading a Data payload of n bytes into st's buffer, within the window granted
// to the peer. Data beyond the window, after the peer's FIN, or after a local Close resets
// the stream (the payload is discarded, so the connection stays in sync).
func (r *receiver) data(st *Stream, n uint32) {
	if n == 0 {
		return
	}
	st.mu.Lock()
	var cause error
	switch {
	case st.recvErr != nil:
	case n > st.outstanding:
		cause = errResetFlowControl
	case st.finRecv:
		cause = errResetAfterFIN
	case st.readClosed:
		cause = errResetCloseWait
	}
	ok := st.recvErr == nil && cause == nil
	if ok {
		st.outstanding -= n
		st.pending = n
	}
	st.mu.Unlock()
	if !ok {
		if cause != nil {
			st.reset(cause, true)
		}
		r.expect(nil, n)
		return
	}
	r.expect(st, n)
}

// credit adds a WindowUpdate's delta to st's send window. A window pushed past 2^32-1 bytes
// cannot come from a correct peer (windows are at most that large), so the stream is reset.
func (r *receiver) credit(st *Stream, delta uint32) {
	sc := &r.s.sched
	sc.mu.Lock()
	w := st.sendWindow + int64(delta)
	if w > math.MaxUint32 {
		sc.mu.Unlock()
		st.reset(errResetWindowWrap, true)
		return
	}
	st.sendWindow = w
	sc.queueDataLocked(st)
	sc.mu.Unlock()
}
