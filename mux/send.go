package mux

import (
	"errors"
	"net"
	"time"
)

// The connection is written by whoever holds the scheduler's write token (sc.writing): the
// send loop goroutine, or a Stream.Write that finds the token free and writes its own frames
// (and whatever else is queued) inline. Writing inline saves two goroutine hand-offs per
// Write; holding the token keeps a single writer at a time, and batches are built the same
// way either way, so control frames still go first and data stays round-robin.

// sendLoop writes what others queued while no Write is writing inline. When the session ends
// it writes what the end mode asks for and closes the connection.
func (s *Session) sendLoop() {
	defer s.wg.Done()
	sc := &s.sched
	sc.mu.Lock()
	for !isClosed(s.done) {
		if sc.writing || !sc.hasWorkLocked() {
			sc.wantToken = sc.writing
			sc.mu.Unlock()
			select {
			case <-sc.wake:
			case <-s.done:
			}
			sc.mu.Lock()
			continue
		}
		if err := s.writeOnceLocked(); err != nil {
			sc.mu.Unlock()
			s.fail(err)
			sc.mu.Lock()
			break
		}
	}
	sc.mu.Unlock()
	s.drain()
}

// writeInlineLocked lets a Write put st's data on the wire itself while the token is free.
// It writes whole batches (other streams' queued frames ride along) until st's data is out or
// st cannot send. sc.mu must be held; it is released while writing.
func (s *Session) writeInlineLocked(st *Stream) {
	sc := &s.sched
	for !sc.writing && !sc.stopped && st.sendable() && !isClosed(s.done) {
		if err := s.writeOnceLocked(); err != nil {
			sc.mu.Unlock()
			s.fail(err)
			sc.mu.Lock()
			return
		}
	}
}

// writeOnceLocked takes the token, writes one batch and gives the token back. sc.mu must be
// held; it is released during the write.
func (s *Session) writeOnceLocked() error {
	sc := &s.sched
	sc.writing = true
	b := sc.batch
	sc.fillLocked(b, false)
	sc.mu.Unlock()
	err := s.writeBatch(b)
	sc.mu.Lock()
	if err != nil {
		sc.broken = true
	}
	sc.completeLocked(b)
	sc.mu.Unlock()
	s.finishSent(b)
	sc.mu.Lock()
	sc.writing = false
	if sc.wantToken || sc.hasWorkLocked() || isClosed(s.done) {
		// Hand the token (and what is left) to the send loop, or to drain. Without work and
		// without a waiter nobody is woken, which keeps inline writes free of hand-offs.
		sc.wantToken = false
		sc.notify()
	}
	return err
}

// writeBatch writes b with the WriteTimeout deadline and counts it.
func (s *Session) writeBatch(b *batch) error {
	if b.size == 0 {
		return nil
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if err := b.write(s.conn); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ErrWriteTimeout
		}
		return connLost(err)
	}
	s.stats.framesSent.Add(b.frames)
	s.stats.bytesSent.Add(b.payload)
	return nil
}

// finishSent marks the streams whose FIN or RST went out in b.
func (s *Session) finishSent(b *batch) {
	for _, st := range b.finished {
		st.finish(bitSendDone)
	}
	clear(b.finished)
	b.finished = b.finished[:0]
}

// drain runs after the session ended: for a graceful or protocol end it writes the pending
// control frames (GoAway first), then it stops the scheduler and closes the connection, after
// lingering for the peer's close on a graceful end so unread input cannot turn the close into
// a TCP reset that destroys data still in flight.
func (s *Session) drain() {
	sc := &s.sched
	sc.mu.Lock()
	for sc.writing { // an inline Write is finishing its batch
		sc.wantToken = true
		sc.mu.Unlock()
		<-sc.wake
		sc.mu.Lock()
	}
	sc.writing = true // for good
	b := sc.batch
	// After a failed write a frame may be cut short: anything written now would be read as
	// the rest of its payload, so nothing is.
	if s.mode != endAbort && !sc.broken {
		deadline := s.endedAt.Add(s.cfg.WriteTimeout)
		for sc.goAway || len(sc.pongs) > 0 || len(sc.refused) > 0 || sc.ctrl.head != nil {
			sc.fillLocked(b, true)
			sc.mu.Unlock()
			s.conn.SetWriteDeadline(deadline)
			err := b.write(s.conn)
			s.finishSent(b)
			sc.mu.Lock()
			if err != nil {
				sc.broken = true
				break
			}
		}
	}
	broken := sc.broken
	sc.stopped = true
	sc.mu.Unlock()
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
