package mux

import (
	"bufio"
	"io"
	"math"
	"time"
)

// readBufferSize is the receive loop's read buffer in bytes: frame headers and small payloads
// are parsed from it; large payloads are read straight into stream chunks.
const readBufferSize = 32 << 10

// recvLoop is the only reader of the connection. It never blocks on the application or on
// sending: data goes into stream buffers within the granted window, replies and refusals are
// queued for the send loop, and a full accept backlog means RST.
func (s *Session) recvLoop() {
	defer s.wg.Done()
	defer close(s.recvDone)
	r := &receiver{s: s, br: bufio.NewReaderSize(s.conn, readBufferSize)}
	for {
		err := r.next()
		if err == nil {
			continue
		}
		if isClosed(s.done) {
			return // the session already ended; this is its connection closing
		}
		if _, ok := err.(*ProtocolError); ok {
			s.fail(err)
		} else {
			s.fail(connLost(err))
		}
		return
	}
}

// receiver is the receive loop's state.
type receiver struct {
	s      *Session
	br     *bufio.Reader
	hdr    header
	chunks []*chunk // payload read for one frame, handed to a stream
}

// next reads and handles one frame. Errors are the connection's or a *ProtocolError.
func (r *receiver) next() error {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return err
	}
	s := r.s
	r.alive()
	s.stats.framesReceived.Add(1)
	h := &r.hdr
	if err := h.validate(); err != nil {
		return err
	}
	if isClosed(s.done) {
		// Ending: keep the framing in sync while lingering, act on nothing.
		if h.typ() == typeData {
			return r.discard(h.length())
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

// discard skips a payload of n bytes, in pieces, each of which counts as a sign of life.
func (r *receiver) discard(n uint32) error {
	for left := int(n); left > 0; {
		k, err := r.br.Discard(min(left, largeChunk))
		left -= k
		r.alive()
		if err != nil {
			return err
		}
	}
	return nil
}

// alive records that bytes arrived: keepalive counts any progress, also inside a long frame,
// since a peer may send one frame as large as the window it was granted (16 MiB).
func (r *receiver) alive() { r.s.lastRecv.Store(time.Now().UnixNano()) }

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
		if err != nil {
			return err
		}
		if st == nil { // refused
			if isData {
				return r.discard(length)
			}
			return nil
		}
		accepted = true
	} else {
		st = s.lookup(id)
	}
	if st == nil {
		// Closed or never opened: keep the framing, ignore the rest (as hashicorp/yamux does).
		if isData {
			return r.discard(length)
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
			if err := r.discard(length); err != nil {
				return err
			}
		}
	case isData:
		if err := r.data(st, length); err != nil {
			return err
		}
	case length > 0:
		r.credit(st, length)
	}

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
		s.stats.resetsReceived.Add(1)
		st.reset(errResetByPeer, false)
	}
	if accepted {
		s.acceptCh <- st // room was checked in incoming; only this loop sends
	}
	return nil
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

// refuse queues an RST for id. While the refusal queue is full the receive loop waits for the
// send loop to drain it: a peer that opens streams past the limits is slowed down to the pace
// at which it reads the refusals. If that takes longer than WriteTimeout the peer is not
// reading, and the session ends with a *ProtocolError.
func (r *receiver) refuse(id uint32) error {
	s := r.s
	if s.sched.refuse(id) {
		return nil
	}
	t := time.NewTimer(s.cfg.WriteTimeout)
	defer t.Stop()
	for !s.sched.refuse(id) {
		select {
		case <-s.sched.drained:
		case <-t.C:
			return protocolErrorf("peer opened streams past the limits and does not read the refusals")
		case <-s.done:
			return nil
		}
	}
	return nil
}

// data reads a Data payload of n bytes into st's buffer, within the window granted to the
// peer. Data beyond the window, after the peer's FIN, or after a local Close resets the stream
// (the payload is discarded, so the connection stays in sync).
func (r *receiver) data(st *Stream, n uint32) error {
	if n == 0 {
		return nil
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
	}
	st.mu.Unlock()
	if !ok {
		if cause != nil {
			st.reset(cause, true)
		}
		return r.discard(n)
	}

	// Read outside the stream's lock: a slow sender must not block the stream's reader.
	for left := int(n); left > 0; {
		c := getChunk(left)
		k := min(left, len(c.b))
		if err := r.readFull(c.b[:k]); err != nil {
			putChunk(c)
			r.releaseChunks()
			return err
		}
		c.w = k
		r.chunks = append(r.chunks, c)
		left -= k
	}

	st.mu.Lock()
	if st.recvErr != nil || st.readClosed {
		st.mu.Unlock()
		r.releaseChunks()
		return nil
	}
	st.buf.append(r.chunks)
	st.mu.Unlock()
	r.chunks = r.chunks[:0]
	notify(st.readReady)
	return nil
}

// readFull is io.ReadFull that marks the session alive after every read that made progress.
func (r *receiver) readFull(p []byte) error {
	for got := 0; got < len(p); {
		n, err := r.br.Read(p[got:])
		got += n
		if n > 0 {
			r.alive()
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (r *receiver) releaseChunks() {
	for i, c := range r.chunks {
		putChunk(c)
		r.chunks[i] = nil
	}
	r.chunks = r.chunks[:0]
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
