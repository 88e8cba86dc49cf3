package mux

import (
	"errors"
	"net"
	"time"
)

// The connection writer. The connection is written by whoever holds the scheduler's write
// token (sc.writing, under s.mu): the send loop goroutine, a Stream.Write that finds the token
// free and writes its own frames (and whatever else is queued) inline (only on a net.Conn,
// whose write deadline can cut an inline write short), a Stream.Read that finds it free and
// writes the window credit it freed (sendCreditLocked, likewise), or, once the session has
// ended, drain.
// Writing inline saves two goroutine hand-offs per Write; holding the token keeps a single
// writer at a time, and batches are built the same way either way (fillLocked), so control
// frames still go first and data stays round-robin.
//
// The holder's write is interrupted only explicitly, under s.mu: cutWriteLocked and
// kickInlineLocked move the connection's write deadline and record why (sc.cutting, or a
// stream's deadline in sc.connDeadline), so a timed-out write is known to be a cut for a
// stream's sake, not a peer that stopped reading, without looking at the clock.

// sendLoop writes what others queued while no Write is writing inline. When the session ends
// it writes what the end mode asks for and closes the connection.
func (s *Session) sendLoop() {
	defer s.wg.Done()
	sc := &s.sched
	s.mu.Lock()
	for !isClosed(s.done) {
		if sc.writing || !sc.hasWorkLocked() {
			sc.wantToken = sc.writing
			s.mu.Unlock()
			select {
			case <-sc.wake:
			case <-s.done:
			}
			s.mu.Lock()
			continue
		}
		if h := s.hooks.beforeSendLoopWrite.Load(); h != nil {
			s.mu.Unlock()
			(*h)()
			s.mu.Lock()
			continue
		}
		var err error
		if len(sc.cut) > 0 {
			err = s.writeCutLocked()
		} else {
			err = s.writeOnceLocked(nil)
		}
		if err != nil && err != errInlineCut { // a cut batch's rest is in sc.cut, next
			s.mu.Unlock()
			s.fail(err)
			s.mu.Lock()
			break
		}
	}
	s.mu.Unlock()
	s.drain()
}

// writeCutLocked finishes the batch an inline Write gave up on, so the frame it cut short is
// completed before anything else is written. s.mu must be held; it is released while writing.
func (s *Session) writeCutLocked() error {
	sc := &s.sched
	sc.writing = true
	err := s.flushCutLocked(time.Now().Add(s.cfg.WriteTimeout))
	sc.writing = false
	return err
}

// flushCutLocked writes sc.cut by deadline and lets it go (a cut is rare, and its rest may be
// a whole batch: the session does not keep that much for its life); a failure marks the
// connection broken. The caller holds the write token and s.mu, which is released while
// writing.
func (s *Session) flushCutLocked(deadline time.Time) error {
	sc := &s.sched
	cut := sc.cut
	s.setWriteDeadlineLocked(deadline)
	s.mu.Unlock()
	_, err := s.conn.Write(cut)
	s.mu.Lock()
	sc.cut = nil
	if err != nil {
		sc.broken = true
		return writeError(err)
	}
	return nil
}

// writeInlineLocked lets a Write put st's data on the wire itself while the token is free.
// It writes whole batches (other streams' queued frames ride along) until st's data is out or
// st cannot send. s.mu must be held; it is released while writing.
//
// The connection write is bounded by st's write deadline as well as WriteTimeout, and Reset or
// Close of st cuts it short (kickInline). A write cut short for st's sake is not the
// session's failure: the unwritten rest of the batch is copied to sc.cut, which the send loop
// writes before anything else, and the Write returns with its own error.
func (s *Session) writeInlineLocked(st *Stream) {
	sc := &s.sched
	for s.canWriteInlineLocked() && st.sendable() {
		sc.inline = st
		err := s.writeOnceLocked(st)
		sc.inline = nil
		if err == errInlineCut {
			sc.notify()
			return
		}
		if err != nil {
			s.mu.Unlock()
			s.fail(err)
			s.mu.Lock()
			return
		}
	}
}

// resumeWriteLocked sends what st's send window allows of its pending Write: inline when the
// write token is free, else queued for the token's holder. s.mu must be held; it is released
// while writing.
func (s *Session) resumeWriteLocked(st *Stream) {
	if st.inflight > 0 || !st.sendable() {
		return
	}
	if s.canWriteInlineLocked() {
		s.sched.pushDataLocked(st)
		s.writeInlineLocked(st)
		return
	}
	s.sched.queueDataLocked(st)
}

// canWriteInlineLocked reports whether a Write may take the free write token: only on a
// connection with deadlines, which an inline write needs to be cut short. s.mu must be held.
func (s *Session) canWriteInlineLocked() bool {
	sc := &s.sched
	return s.deadlines && !sc.writing && !sc.stopped && len(sc.cut) == 0 && !isClosed(s.done)
}

// errInlineCut reports a batch write cut short for a stream's sake: by the deadline, Reset or
// Close of the stream writing inline, or by cutWriteLocked.
var errInlineCut = errors.New("mux: inline write cut short")

// cutWriteLocked cuts the connection write in progress short for a Write that gave up
// (deadline, Reset, Close) while its frames are in a batch someone else is writing: the
// send loop, or another stream's inline Write. Without it that Write would wait for the
// batch, which on a peer that stopped reading is WriteTimeout (as it does on a connection
// without deadlines, where nothing is cut). As for an inline cut, the
// unwritten rest of the batch is copied to sc.cut and written first, later; the Write
// returns at once with its bytes counted up to there. s.mu must be held.
func (s *Session) cutWriteLocked() {
	sc := &s.sched
	if !s.deadlines || !sc.writing || isClosed(s.done) || sc.cutting {
		return // no deadlines to cut with, not writing, or cut already
	}
	sc.cutting = true
	s.setWriteDeadlineLocked(aLongTimeAgo)
}

// kickInlineLocked interrupts st's inline connection write, if one is in progress: now cuts it
// at once (Reset, Close), otherwise the connection's deadline follows st's current write
// deadline (a timeout before the session's WriteTimeout deadline is then st's). s.mu must be
// held.
func (s *Session) kickInlineLocked(st *Stream, now bool) {
	sc := &s.sched
	if sc.inline != st || sc.cutting {
		return
	}
	if now {
		sc.cutting = true
		s.setWriteDeadlineLocked(aLongTimeAgo)
		return
	}
	s.setWriteDeadlineLocked(st.inlineDeadline(sc.inlineDeadline))
}

// setWriteDeadlineLocked sets the connection's write deadline and remembers it. s.mu must be
// held.
func (s *Session) setWriteDeadlineLocked(t time.Time) {
	s.conn.SetWriteDeadline(t)
	s.sched.connDeadline = t
}

// sessionDeadlineLocked returns the WriteTimeout deadline for a batch written now. The one
// already set on the connection is kept while it is at most a tenth of WriteTimeout older than
// a fresh one would be: moving a connection deadline costs a runtime timer update, a measurable
// part of a small write. s.mu must be held.
func (s *Session) sessionDeadlineLocked() time.Time {
	sc := &s.sched
	fresh := time.Now().Add(s.cfg.WriteTimeout)
	if fresh.Sub(sc.sessionDeadline) > s.cfg.WriteTimeout/10 {
		sc.sessionDeadline = fresh
	}
	return sc.sessionDeadline
}

// inlineDeadline is the deadline of a connection write st makes inline: the session's
// WriteTimeout deadline, or st's write deadline if that is earlier.
func (st *Stream) inlineDeadline(session time.Time) time.Time {
	if d := st.wdeadline.when(); !d.IsZero() && d.Before(session) {
		return d
	}
	return session
}

// writeOnceLocked takes the token, writes one batch and gives the token back. s.mu must be
// held; it is released during the write.
//
// inline is the stream whose Write is writing, or nil for the send loop.
func (s *Session) writeOnceLocked(inline *Stream) error {
	sc := &s.sched
	sc.writing = true
	sc.cutting = false
	b := sc.batch
	sc.fillLocked(b, false)
	sessionDeadline := s.sessionDeadlineLocked()
	deadline := sessionDeadline
	if inline != nil {
		sc.inlineDeadline = sessionDeadline
		deadline = inline.inlineDeadline(sessionDeadline)
	}
	// Set under s.mu, so a kick (kickInlineLocked) that comes after cannot be overwritten.
	if !deadline.Equal(sc.connDeadline) {
		s.setWriteDeadlineLocked(deadline)
	}
	s.mu.Unlock()
	err := s.writeBatch(b)
	s.mu.Lock()
	// A timeout is a cut for a stream's sake, not the peer, when someone cut the write
	// (Reset, Close, a Write that gave up: sc.cutting) or the deadline in force was a
	// stream's write deadline, earlier than WriteTimeout's: the rest is in sc.cut.
	if err != nil && errors.Is(err, ErrWriteTimeout) &&
		(sc.cutting || sc.connDeadline.Before(sessionDeadline)) {
		err = errInlineCut
	} else if err != nil {
		sc.broken = true
		sc.cut = nil
	}
	sc.cutting = false
	sc.completeLocked(b)
	b.giveBack()
	s.finishSentLocked(b)
	sc.writing = false
	if sc.wantToken || sc.hasWorkLocked() || isClosed(s.done) {
		// Hand the token (and what is left) to the send loop, or to drain. Without work and
		// without a waiter nobody is woken, which keeps inline writes free of hand-offs.
		sc.wantToken = false
		sc.notify()
	}
	return err
}

// writeBatch writes b (the connection's write deadline is already set) and counts it. What a
// failed write left unwritten is kept in sc.cut (only the token holder touches it).
func (s *Session) writeBatch(b *batch) error {
	if b.size == 0 {
		return nil
	}
	var err error
	s.sched.cut, err = b.writeRest(s.conn, nil)
	if err != nil {
		return writeError(err)
	}
	s.stats.framesSent.Add(b.frames)
	s.stats.bytesSent.Add(b.payload)
	return nil
}

// writeError converts a connection write error into the session's error.
func writeError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrWriteTimeout
	}
	return connLost(err)
}

// finishSentLocked records the FINs that went out in b. s.mu must be held.
func (s *Session) finishSentLocked(b *batch) {
	for _, st := range b.finished {
		s.finSentLocked(st)
	}
	clear(b.finished)
	b.finished = b.finished[:0]
}

// drain runs after the session ended. For a graceful or protocol end it writes, in order,
// the rest of a batch cut short, the pending control frames (window updates, SYN/ACK, FIN,
// RST, pongs, refusals), on a graceful end the data of pending Writes that the peer's window
// admits (a FIN queued behind data rides on its last frame), and only then the GoAway: frames
// queued before Close go out before the GoAway, which peers such as go-yamux take as the end.
// Then it stops the scheduler and closes the connection, after lingering for the peer's close
// on a graceful end so unread input cannot turn the close into a TCP reset that destroys data
// still in flight.
func (s *Session) drain() {
	sc := &s.sched
	s.mu.Lock()
	for sc.writing { // an inline Write is finishing its batch
		sc.wantToken = true
		s.mu.Unlock()
		<-sc.wake
		s.mu.Lock()
	}
	sc.writing = true // for good
	b := sc.batch
	// After a failed write a frame may be cut short: anything written now would be read as
	// the rest of its payload, so nothing is.
	if s.mode != endAbort && !sc.broken {
		deadline := s.endedAt.Add(s.cfg.WriteTimeout)
		if len(sc.cut) > 0 { // finish a frame an inline Write cut short
			s.flushCutLocked(deadline)
		}
		goAway := sc.goAway
		sc.goAway = false // last, below
		withData := s.mode == endGraceful
		for !sc.broken && (len(sc.pongs) > 0 || len(sc.refused) > 0 || sc.ctrl.head != nil ||
			withData && sc.data.head != nil) {
			if err := s.drainBatchLocked(b, !withData, deadline); err != nil {
				break
			}
		}
		if goAway && !sc.broken {
			sc.goAway = true
			s.drainBatchLocked(b, true, deadline)
		}
	}
	broken := sc.broken
	sc.stopped = true
	s.mu.Unlock()
	close(s.flushed)

	if s.mode == endGraceful && !broken {
		if cw, ok := s.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			t := time.NewTimer(s.cfg.WriteTimeout)
			select {
			case <-s.recvDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	s.conn.Close()
}

// drainBatchLocked writes one batch for drain by deadline and completes it; a failure marks
// the connection broken. s.mu must be held; it is released while writing.
func (s *Session) drainBatchLocked(b *batch, ctrlOnly bool, deadline time.Time) error {
	sc := &s.sched
	sc.fillLocked(b, ctrlOnly)
	s.setWriteDeadlineLocked(deadline)
	s.mu.Unlock()
	err := b.write(s.conn)
	s.mu.Lock()
	sc.completeLocked(b)
	b.giveBack()
	s.finishSentLocked(b)
	if err != nil {
		sc.broken = true
	}
	return err
}
