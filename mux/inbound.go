package mux

import "math"

// The core's inbound half: what a received frame does to the session's state. It does no I/O,
// blocks on nothing and runs under s.mu; the connection reader (recv.go) reads the bytes and
// calls it once per frame header (onHeaderLocked), per piece of payload (onChunkLocked,
// onDirectLocked), and once per frame end (onFrameEndLocked). Its answers to the peer are
// intents queued on the scheduler (pongs, RSTs, window updates); its wake-ups are
// notifications on the waiting goroutines' channels.

// rxPlan is what the core decided about a frame header, for the reader to carry out.
type rxPlan struct {
	dst      *Stream // the stream whose buffer the payload goes to; nil with n > 0: discard it
	n        uint32  // payload bytes that follow the header
	tail     *Stream // the stream the frame's FIN and RST apply to once its payload is read
	flags    uint16
	accepted bool      // tail is a new stream for Accept
	refuse   uint32    // a refused SYN whose RST waits for room in the refusal queue
	answered *pingWait // this side's ping just answered: the reader tells RTTObserver, then wakes its Ping
	end      error     // the session must end: a *ProtocolError or the peer's *GoAwayError
}

// onHeaderLocked acts on a frame header (already validated), for the read token's holder own
// (nil: the receive loop). s.mu must be held.
func (s *Session) onHeaderLocked(h *header, own *Stream) (p rxPlan) {
	if isClosed(s.done) {
		// Ending: keep the framing in sync while lingering, act on nothing.
		if h.typ() == typeData {
			p.n = h.length()
		}
		return p
	}
	switch h.typ() {
	case typePing:
		switch {
		case h.flags()&flagSYN != 0:
			if !s.sched.pongLocked(h.length()) {
				s.stats.pongsDropped.Add(1)
			}
		case h.flags()&flagACK != 0:
			p.answered = s.pingAnsweredLocked(h.length())
		}
		return p
	case typeGoAway:
		if code := h.length(); code != GoAwayNormal {
			p.end = &GoAwayError{Code: code, Remote: true}
			return p
		}
		s.remoteGoAway = true
		close(s.ackWait) // Open waiters re-check and fail with ErrRemoteGoAway
		s.ackWait = make(chan struct{})
		return p
	}
	return s.onStreamHeaderLocked(h, own)
}

// onStreamHeaderLocked handles a Data or WindowUpdate header: SYN, ACK, payload or credit,
// then (onFrameEndLocked) FIN and RST, in that order. s.mu must be held.
func (s *Session) onStreamHeaderLocked(h *header, own *Stream) (p rxPlan) {
	id, flags, length := h.streamID(), h.flags(), h.length()
	isData := h.typ() == typeData
	if isData {
		s.stats.bytesReceived.Add(uint64(length))
		p.n = length
	}

	var st *Stream
	if flags&flagSYN != 0 {
		var refused bool
		st, refused, p.end = s.incomingLocked(id)
		if p.end != nil {
			return p
		}
		if refused {
			if !s.sched.refuseLocked(id) {
				p.refuse = id // the reader waits for room before it reads anything more
			}
			return p
		}
		p.accepted = true
	} else if own != nil && id == own.id {
		st = own // a direct reader's own stream: no table lookup
		if st.removed {
			st = nil
		}
	} else {
		st = s.streams[id]
	}
	if st == nil {
		// Closed or never opened: keep the framing, ignore the rest (as hashicorp/yamux does).
		return p
	}
	if flags&flagRST == 0 {
		s.ackedStreamLocked(st) // ACK, or any frame from the peer on the stream, settles the open
	}

	switch {
	case flags&flagRST != 0:
		// Length on an RST is not credit (go-yamux v5 puts an error code there), and data
		// riding on it is moot: the stream is gone.
	case isData:
		p.dst = s.onDataLocked(st, length)
	case length > 0:
		s.onCreditLocked(st, length)
	}
	p.tail, p.flags = st, flags
	return p
}

// incomingLocked handles a SYN: the new stream, or refused (an RST is due), or a
// *ProtocolError for a duplicate or wrong-parity ID. s.mu must be held.
func (s *Session) incomingLocked(id uint32) (st *Stream, refused bool, err error) {
	if (id%2 == 1) == s.client {
		return nil, false, protocolErrorf("SYN for stream %d, an ID of this side's parity", id)
	}
	if _, dup := s.streams[id]; dup {
		return nil, false, protocolErrorf("duplicate SYN for live stream %d", id)
	}
	if s.localGoAway || s.incoming >= s.cfg.MaxIncomingStreams ||
		len(s.acceptCh) == cap(s.acceptCh) || !s.mem.reserve(initialWindow) {
		s.stats.streamsRefused.Add(1)
		return nil, true, nil
	}
	st = newStream(s, id, false)
	s.streams[id] = st
	s.incoming++
	return st, false, nil
}

// onDataLocked admits a Data payload of n bytes for st within the window granted to the peer
// and returns st, or nil if the payload is to be discarded. Data beyond the window, after the
// peer's FIN, or after a local Close resets the stream (the payload is discarded, so the
// connection stays in sync). s.mu must be held.
func (s *Session) onDataLocked(st *Stream, n uint32) *Stream {
	if n == 0 {
		return nil
	}
	var cause error
	switch {
	case st.cause != nil:
		return nil // reset: discarded
	case n > st.outstanding:
		cause = errResetFlowControl
	case st.recv == recvFIN || st.recv == recvClosedDone:
		cause = errResetAfterFIN
	case st.recv == recvClosed:
		cause = errResetCloseWait
	}
	if cause != nil {
		s.resetLocked(st, cause, true)
		return nil
	}
	st.outstanding -= n
	st.pending = n
	return st
}

// onCreditLocked adds a WindowUpdate's delta to st's send window. A window pushed past 2^32-1
// bytes cannot come from a correct peer (windows are at most that large), so the stream is
// reset. s.mu must be held.
func (s *Session) onCreditLocked(st *Stream, delta uint32) {
	w := st.sendWindow + int64(delta)
	if w > math.MaxUint32 {
		s.resetLocked(st, errResetWindowWrap, true)
		return
	}
	st.sendWindow = w
	switch {
	case st.windowRead:
		// Its Write reads for window itself, and sends once it has some.
	case st.wwaits > 0 && st.inflight == 0 && s.deadlines:
		// Its Write waits: it sends itself, inline, and the receive loop may leave it the
		// read token (yieldLocked), so that it reads its next window updates itself.
		s.recv.last = st
		notify(st.writeDone)
	default:
		s.sched.queueDataLocked(st)
	}
}

// onChunkLocked appends a filled chunk of st's payload to its buffer (or drops it if reading
// was closed or reset meanwhile) and wakes its Read. It reports whether the chunk was kept.
// s.mu must be held.
func (s *Session) onChunkLocked(st *Stream, c *chunk) bool {
	st.pending -= uint32(c.w - c.r)
	if st.recv != recvOpen {
		putChunk(c)
		return false
	}
	st.buf.add(c)
	notify(st.readReady)
	return true
}

// onDirectLocked accounts k bytes of st's payload read straight into its direct reader's
// buffer; false if reading was closed or reset meanwhile (the bytes are dropped, as buffered
// data is). s.mu must be held.
func (s *Session) onDirectLocked(st *Stream, k int) bool {
	st.pending -= uint32(k)
	if st.recv != recvOpen {
		return false
	}
	if delta := s.creditLocked(st, k); delta > 0 {
		s.sched.owedLocked(st, delta) // the direct Read writes it (sendCreditLocked)
	}
	return true
}

// onFrameEndLocked acts on the frame's FIN and RST once its payload is read, and hands a new
// stream to Accept. s.mu must be held.
func (s *Session) onFrameEndLocked(p *rxPlan) {
	st := p.tail
	if st == nil {
		return
	}
	if p.flags&flagFIN != 0 {
		s.finReceivedLocked(st)
	}
	if p.flags&flagRST != 0 {
		s.stats.resetsReceived.Add(1)
		s.resetLocked(st, errResetByPeer, false)
	}
	if p.accepted {
		select {
		case s.acceptCh <- st: // room was checked in incomingLocked; only the token holder sends
		default:
			s.resetLocked(st, errResetLocal, true) // cannot happen: refuse rather than block
		}
	}
}
