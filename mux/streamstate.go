package mux

import "time"

// sendState is where a stream's sending direction is. Transitions, all under s.mu:
//
//	sendOpen --CloseWrite/Close--> sendFINQueued --FIN written--> sendFINSent
//	any --Reset, RST received, a violation, a timeout--> sendReset
type sendState uint8

const (
	sendOpen      sendState = iota // Writes are accepted
	sendFINQueued                  // CloseWrite was called: FIN goes out after the data written before it
	sendFINSent                    // the FIN was written; nothing more is sent but an RST
	sendReset                      // the stream was reset: Writes fail with cause
)

// recvState is where a stream's receiving direction is. Transitions, all under s.mu:
//
//	recvOpen --FIN received--> recvFIN --Close--> recvClosedDone
//	recvOpen --Close--> recvClosed --FIN received, or a reset--> recvClosedDone
//	recvOpen, recvFIN --Reset, RST received, a violation, a timeout--> recvReset
type recvState uint8

const (
	recvOpen       recvState = iota // data may arrive and is buffered for Read
	recvFIN                         // the peer's FIN arrived: Read drains the buffer, then io.EOF
	recvClosed                      // Close was called: buffer dropped, arriving data answered with RST, FIN awaited
	recvClosedDone                  // Close was called and nothing more arrives: the peer's FIN came, or a reset
	recvReset                       // the stream was reset: Reads fail with cause
)

// sendDone reports whether nothing more will be sent on the stream but a pending RST.
func (st *Stream) sendDone() bool { return st.send == sendFINSent || st.send == sendReset }

// closedLocally reports whether Close was called on the stream.
func (st *Stream) closedLocally() bool { return st.recv == recvClosed || st.recv == recvClosedDone }

// recvDone reports whether nothing more will be received on the stream.
func (st *Stream) recvDone() bool { return st.recv != recvOpen && st.recv != recvClosed }

// resetLocked ends both directions with cause; sendRST queues an RST for the peer. Blocked
// Reads and Writes wake and fail with cause; buffered data is dropped. A stream already reset,
// or already gone from the table (both directions ended normally), is left alone. s.mu must
// be held.
func (s *Session) resetLocked(st *Stream, cause error, sendRST bool) {
	if st.removed || st.cause != nil {
		return
	}
	st.cause = cause
	st.send = sendReset
	if st.closedLocally() {
		st.recv = recvClosedDone // Reads keep saying Close stopped them
	} else {
		st.recv = recvReset
	}
	st.wbuf = nil
	s.kickInlineLocked(st, true)
	if sendRST {
		st.sendFlags |= flagRST
		s.sched.queueCtrlLocked(st)
	}
	notify(st.writeDone)
	st.buf.release()
	s.kickReaderLocked(st)
	notify(st.readReady)
	stopTimer(st.closeTimer)
	stopTimer(st.openTimer)
	s.maybeRemoveLocked(st)
}

// closeReadLocked is the receiving half of Close: buffered data is dropped, Reads fail, and
// unless the peer's FIN already came, the close timer starts and the window the peer does not
// hold is given back, so a peer Write blocked on a used-up window sends its next bytes and gets
// an RST within a round trip instead of waiting for the timer. Nothing is buffered any more
// (arriving data is dropped), so that credit costs no memory. s.mu must be held.
func (s *Session) closeReadLocked(st *Stream) {
	switch st.recv {
	case recvOpen:
		st.recv = recvClosed
	case recvFIN:
		st.recv = recvClosedDone
	default:
		return
	}
	st.buf.release()
	s.releaseMemLocked(st)
	s.kickReaderLocked(st)
	notify(st.readReady)
	if st.recv == recvClosed && !isClosed(s.done) {
		st.closeTimer = time.AfterFunc(s.cfg.StreamCloseTimeout, func() { s.closeTimedOut(st) })
		if credit := st.window - min(st.window, st.outstanding+st.pending); credit > 0 {
			st.outstanding += credit
			s.sched.grantLocked(st, credit)
		}
	}
	s.maybeRemoveLocked(st)
}

// finReceivedLocked records the peer's FIN. s.mu must be held.
func (s *Session) finReceivedLocked(st *Stream) {
	switch st.recv {
	case recvOpen:
		st.recv = recvFIN
	case recvClosed:
		st.recv = recvClosedDone
	default:
		return // a second FIN, or one after a reset: nothing to do
	}
	stopTimer(st.closeTimer)
	notify(st.readReady)
	s.maybeRemoveLocked(st)
}

// finSentLocked records that st's FIN was written. s.mu must be held.
func (s *Session) finSentLocked(st *Stream) {
	if st.send == sendFINQueued {
		st.send = sendFINSent
		s.maybeRemoveLocked(st)
	}
}

// ackedStreamLocked records that the peer ACKed (or sent anything on) an outbound stream.
// s.mu must be held.
func (s *Session) ackedStreamLocked(st *Stream) {
	if !st.outbound || st.acked {
		return
	}
	st.acked = true
	s.ackedLocked()
	stopTimer(st.openTimer)
}

// maybeRemoveLocked drops st from the stream table once both directions are done. s.mu must
// be held.
func (s *Session) maybeRemoveLocked(st *Stream) {
	if st.removed || !st.sendDone() || !st.recvDone() {
		return
	}
	st.removed = true
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
		if !st.outbound {
			s.incoming--
		}
	}
	s.ackedStreamLocked(st) // an outbound stream that ends unACKed no longer holds a slot
	s.checkGoAwayIdleLocked()
	s.releaseMemLocked(st)
}

// releaseMemLocked returns the stream's memory reservation to the session once nothing more
// can be buffered: reading was closed or reset, or the stream left the table and its buffer is
// drained. s.mu must be held.
func (s *Session) releaseMemLocked(st *Stream) {
	if st.reserved == 0 {
		return
	}
	closed := st.recv == recvClosed || st.recv == recvClosedDone || st.recv == recvReset
	if !closed && !(st.removed && st.buf.len() == 0) {
		return
	}
	s.mem.release(st.reserved)
	st.reserved = 0
}

// The stream timers. Each fires in a goroutine of the runtime's and only takes s.mu and calls
// the core, so a test can call the same functions to stand for time passing.

// openTimedOut resets an outbound stream the peer has not ACKed within StreamOpenTimeout.
func (s *Session) openTimedOut(st *Stream) {
	s.mu.Lock()
	if !st.acked {
		s.resetLocked(st, errResetOpenTimeout, true)
	}
	s.mu.Unlock()
}

// closeTimedOut resets a stream whose peer sent no FIN within StreamCloseTimeout of Close.
func (s *Session) closeTimedOut(st *Stream) {
	s.mu.Lock()
	if st.recv == recvClosed {
		s.resetLocked(st, errResetCloseTimer, true)
	}
	s.mu.Unlock()
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
