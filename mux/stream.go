package mux

import (
	"io"
	"net"
	"sync"
	"time"
)

// Stream is one bidirectional, flow-controlled byte stream of a Session. It is a net.Conn:
// Read, Write, Close and the deadline methods may be called from several goroutines; Writes
// are serialized, and each returns once all its bytes were handed to the connection.
//
// io.EOF from Read means the peer sent FIN and every byte before it was read. Any other end is
// an error: ErrStreamReset (a *StreamError), ErrStreamClosed, ErrTimeout, or the session's
// error (which matches ErrSessionClosed).
type Stream struct {
	id       uint32
	s        *Session
	outbound bool // opened by this side

	// Everything from here to wmu is guarded by s.mu (see doc.go).
	send    sendState
	recv    recvState
	cause   error // why the stream was reset; set once, with send = sendReset and recv = recvReset
	acked   bool  // outbound: the peer ACKed (or sent anything on) the stream
	removed bool  // gone from the session's stream table

	// Receive half.
	buf         recvBuffer
	window      uint32 // receive window in bytes: starts at 256 KiB, auto-tuned upward
	outstanding uint32 // window credit the peer still holds
	pending     uint32 // bytes of the frame being read that are not in buf (or Read's p) yet
	reserved    int64  // bytes of the session's memory budget this stream holds
	readTotal   uint64 // bytes Read so far
	epochStart  time.Time
	epochRead   uint64        // readTotal at epochStart (window auto-tuning)
	tuneGrown   uint32        // bytes the window grew at the last judgement, on probation; 0 for none
	prevRate    float64       // read rate (bytes/ns) of the last epoch measured; 0 before the first after start-up
	tuneRate    float64       // the rate a growth must beat by growthPays: the faster of the two epochs before it
	tuneAfter   time.Time     // a growth that did not pay: no new one before this
	tuneFrom    time.Time     // a growth is judged on the first epoch starting after this, a round trip after it
	rwaits      int           // this stream's Reads counted as waiters on the peer (readtoken.go)
	creditOwed  bool          // a Read freed window credit that it writes itself (sendCreditLocked)
	wwaits      int           // this stream's Write counted as a waiter on the peer (readtoken.go)
	windowRead  bool          // this stream's Write holds the read token, reading until its send window opens
	readReady   chan struct{} // capacity 1: "look again", for a Read
	closeTimer  *time.Timer   // after Close: StreamCloseTimeout for the peer's FIN

	// Send half.
	sendWindow  int64  // bytes the peer lets us send
	wbuf        []byte // the rest of the current Write
	inflight    int    // frames of wbuf in the batch being written
	written     int    // bytes of the current Write handed to the connection
	sendFlags   uint16 // flags to send: SYN, ACK, FIN, RST
	sendDelta   uint32 // window credit to send
	writeCancel error  // set by Close: the pending Write ends with it, unsent bytes dropped
	inCtrl      bool
	inData      bool
	nextCtrl    *Stream
	nextData    *Stream
	writeDone   chan struct{} // capacity 1: "look again", for the Write
	openTimer   *time.Timer   // outbound: StreamOpenTimeout for the peer's ACK

	wmu       sync.Mutex // serializes Write calls; taken before s.mu
	rdeadline deadline   // own lock, a leaf: taken under s.mu or alone
	wdeadline deadline
}

func newStream(s *Session, id uint32, outbound bool) *Stream {
	return &Stream{
		id:          id,
		s:           s,
		outbound:    outbound,
		window:      initialWindow,
		outstanding: initialWindow,
		reserved:    initialWindow,
		sendWindow:  initialWindow,
		readReady:   make(chan struct{}, 1),
		writeDone:   make(chan struct{}, 1),
		rdeadline:   newDeadline(),
		wdeadline:   newDeadline(),
		epochStart:  s.now(),
	}
}

// ID returns the stream ID: odd when the client side opened it, even for the server side
// (spec.md "StreamID field").
func (st *Stream) ID() uint32 { return st.id }

// Session returns the session that carries the stream.
func (st *Stream) Session() *Session { return st.s }

// LocalAddr returns the local address of the session's connection.
func (st *Stream) LocalAddr() net.Addr { return st.s.conn.LocalAddr() }

// RemoteAddr returns the remote address of the session's connection.
func (st *Stream) RemoteAddr() net.Addr { return st.s.conn.RemoteAddr() }

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Read reads received bytes into p. It blocks until data arrives, the peer sends FIN (io.EOF
// once the buffer is drained), the stream is reset (ErrStreamReset), the read deadline passes
// (ErrTimeout), or the session ends (its error). Reading frees receive window, which is
// credited back to the peer in WindowUpdate frames.
func (st *Stream) Read(p []byte) (int, error) {
	if isClosed(st.rdeadline.wait()) {
		return 0, ErrTimeout
	}
	s := st.s
	hooked := false // the beforeTakeDirect test hook ran
	s.mu.Lock()
	for {
		if st.buf.len() > 0 {
			n := 0
			if len(p) > 0 {
				n = st.readBufferedLocked(p)
			}
			s.sendCreditLocked(st)
			s.mu.Unlock()
			return n, nil
		}
		if err := st.readErrLocked(); err != nil {
			s.mu.Unlock()
			notify(st.readReady) // one wake-up per event: pass it on to another waiting Read
			return 0, err
		}
		if d := st.rdeadline.when(); !d.IsZero() && !time.Now().Before(d) {
			s.mu.Unlock()
			return 0, ErrTimeout
		}
		// The deadline is looked at under s.mu, in the same critical section that takes the
		// read token: SetReadDeadline sets it before it kicks the holder under s.mu, so a
		// deadline set now is either seen by the direct read (which puts it on the
		// connection) or kicks it.
		waiter := st // counted by takeDirectLocked, or by addWaiterLocked as nil
		if len(p) > 0 && s.rt.direct {
			if h := s.hooks.beforeTakeDirect.Load(); h != nil && !hooked {
				hooked = true
				s.mu.Unlock()
				(*h)(st)
				s.mu.Lock()
				continue // look at everything again
			}
			if s.takeDirectLocked(st) {
				s.mu.Unlock()
				n := s.readDirect(st, p)
				s.mu.Lock()
				s.sendCreditLocked(st)
				if n > 0 {
					s.mu.Unlock()
					return n, nil
				}
				continue
			}
		} else {
			s.addWaiterLocked()
			waiter = nil
		}
		s.mu.Unlock()
		var timedOut bool
		select {
		case <-st.readReady:
		case <-st.rdeadline.wait():
			timedOut = true
		case <-s.done:
		}
		s.mu.Lock()
		s.endWaitLocked(waiter)
		if timedOut {
			s.mu.Unlock()
			return 0, ErrTimeout
		}
	}
}

// readBufferedLocked copies buffered bytes into p, decides the window credit they free and
// passes a remaining wake-up on to another Read. s.mu must be held.
func (st *Stream) readBufferedLocked(p []byte) int {
	n := st.buf.read(p)
	if delta := st.s.creditLocked(st, n); delta > 0 {
		st.s.sched.owedLocked(st, delta)
	}
	if st.buf.len() == 0 {
		st.s.releaseMemLocked(st)
	} else {
		notify(st.readReady) // for another Read waiting on the stream
	}
	return n
}

// sendCreditLocked writes the window credit st's Read freed (owedLocked) when st is the
// session's only stream and the write token is free, as an inline Write writes its data: the
// peer's writer, which may be waiting for it, gets it without a hand-off to the send loop.
// Otherwise, or on a connection without deadlines, the send loop writes it: with other
// streams on the session, a Read holding the write token makes their Writes hand theirs to
// the send loop instead (measured: with a second stream exchanging 64-byte messages, credits
// written by the bulk stream's Read cost the bulk stream a tenth of its throughput). Like the
// send loop's writes, this one is bounded by WriteTimeout (hashicorp/yamux's Read likewise
// waits until its window update is written). s.mu must be held; it is released while
// writing.
func (s *Session) sendCreditLocked(st *Stream) {
	if !st.creditOwed {
		return
	}
	st.creditOwed = false
	if len(s.streams) > 1 || !s.canWriteInlineLocked() {
		s.sched.notify()
		return
	}
	if err := s.writeOnceLocked(nil); err != nil && err != errInlineCut {
		s.mu.Unlock()
		s.fail(err)
		s.mu.Lock()
	}
}

// readErrLocked returns what a Read that finds nothing buffered returns at once, or nil if it
// must wait. s.mu must be held.
func (st *Stream) readErrLocked() error {
	switch st.recv {
	case recvReset:
		return st.cause
	case recvFIN:
		return io.EOF
	case recvClosed, recvClosedDone:
		return errReadAfterClose
	}
	if isClosed(st.s.done) {
		return st.s.Err()
	}
	return nil
}

// readableLocked reports whether Read has something to return without reading the
// connection: data, or its error. s.mu must be held.
func (st *Stream) readableLocked() bool {
	return st.buf.len() > 0 || st.readErrLocked() != nil
}

// Write sends p as Data frames of at most 64 KiB, as the peer's window allows, interleaved
// with other streams' frames. It returns once every byte was handed to the connection, or with
// the count written so far and ErrStreamClosed (after CloseWrite or Close), ErrStreamReset,
// ErrTimeout (write deadline), or the session's error.
func (st *Stream) Write(p []byte) (int, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	s := st.s
	s.mu.Lock()
	var err error
	switch {
	case st.closedLocally():
		err = ErrStreamClosed // also when a reset followed the Close
	case st.send == sendReset:
		err = st.cause
	case st.send != sendOpen:
		err = ErrStreamClosed
	case isClosed(s.done):
		err = s.Err()
	case isClosed(st.wdeadline.wait()):
		err = ErrTimeout
	}
	if err != nil || len(p) == 0 {
		s.mu.Unlock()
		return 0, err
	}
	st.wbuf, st.written, st.writeCancel = p, 0, nil

	var cancel error
	for {
		if cancel == nil && s.readForWindowLocked(st) {
			continue // the window opened, and what it allows was sent: look again
		}
		if cancel == nil {
			s.resumeWriteLocked(st) // the first time round, this sends p as the window allows
			select {
			case <-st.writeDone:
			default:
				s.mu.Unlock()
				cancel = st.waitWritten()
				s.mu.Lock()
			}
		} else {
			s.mu.Unlock()
			<-st.writeDone // only frames already being written are waited for
			s.mu.Lock()
		}
		if h := s.hooks.afterWriteWait.Load(); h != nil {
			s.mu.Unlock()
			(*h)(st)
			s.mu.Lock()
		}
		if st.inflight == 0 && st.written == len(p) {
			// Every byte was handed to the connection: the Write succeeded, whatever
			// happened to the stream since (a reset, Close, a deadline, the session's end).
			st.wbuf = nil
			s.mu.Unlock()
			return len(p), nil
		}
		if cancel == nil && st.send == sendReset {
			cancel = st.cause
		}
		if cancel == nil {
			cancel = st.writeCancel
		}
		if cancel != nil {
			st.wbuf = nil
		}
		if st.inflight > 0 || cancel == nil && len(st.wbuf) > 0 {
			if cancel != nil {
				s.cutWriteLocked() // st's frames are being written by another: cut it short
			}
			continue
		}
		n := st.written
		st.wbuf = nil
		if cancel != nil && st.sendFlags != 0 {
			s.sched.queueCtrlLocked(st) // a FIN that waited for this data goes alone
		}
		s.mu.Unlock()
		return n, cancel
	}
}

// waitWritten waits, without s.mu, for the send side's progress on the pending Write,
// counted as a waiter on the peer (window updates must be read). It returns why the Write
// ends early, or nil.
func (st *Stream) waitWritten() error {
	s := st.s
	s.mu.Lock()
	s.addWriteWaiterLocked(st)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.endWriteWaitLocked(st)
		s.mu.Unlock()
	}()
	select {
	case <-st.writeDone:
		return nil
	case <-st.wdeadline.wait():
		return ErrTimeout
	case <-s.done:
		if s.mode == endGraceful {
			// Close writes the data queued before it (as the window allows) ahead of its
			// GoAway; the Write reports what went out.
			<-s.flushed
		}
		return s.Err()
	}
}

// CloseWrite half-closes the stream: a FIN goes out after every byte already written, and
// reading goes on until the peer's FIN. Later Writes fail with ErrStreamClosed. Calling it
// again is a no-op. It returns the session's error if the session has ended.
func (st *Stream) CloseWrite() error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.closeWriteLocked()
}

func (st *Stream) closeWriteLocked() error {
	if st.send != sendOpen {
		return nil
	}
	if isClosed(st.s.done) {
		return st.s.Err()
	}
	st.send = sendFINQueued
	st.sendFlags |= flagFIN
	st.s.sched.queueCtrlLocked(st)
	return nil
}

// Close half-closes the sending direction (CloseWrite) and stops reading: buffered data is
// dropped, blocked and later Reads and Writes return ErrStreamClosed (a blocked Write's unsent
// bytes are dropped), and data the peer sends afterwards is answered with RST so its writer
// learns promptly. Unless the peer's FIN already came, the window the peer does not hold is
// given back with the FIN, so a peer Write blocked on a used-up window sends its next bytes
// and gets that RST. If the peer's FIN does not arrive within StreamCloseTimeout, the stream
// is reset and forgotten. Close is idempotent.
//
// Unlike hashicorp/yamux's Close, which only half-closes, this Close ends reading too: to send
// a request, signal its end and read the reply, call CloseWrite, not Close. A Read after
// Close fails with an error that says so (it matches ErrStreamClosed).
func (st *Stream) Close() error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	// A Write still waiting (for window, typically) ends now with ErrStreamClosed, as net.Conn's
	// Close promises; its unsent rest is dropped and the FIN follows what is already on the wire.
	if len(st.wbuf) > 0 {
		st.wbuf = nil
		st.writeCancel = ErrStreamClosed
		notify(st.writeDone)
		s.kickInlineLocked(st, true)
	}
	err := st.closeWriteLocked()
	s.closeReadLocked(st)
	return err
}

// Reset aborts both directions at once: an RST goes to the peer, buffered data is dropped, and
// blocked and later Reads and Writes fail with ErrStreamReset. It returns nil, also when the
// stream has already ended.
func (st *Stream) Reset() error {
	s := st.s
	s.mu.Lock()
	s.resetLocked(st, errResetLocal, true)
	s.mu.Unlock()
	return nil
}

// SetDeadline sets the read and write deadlines, as net.Conn does. The zero time means none.
func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline makes pending and later Reads fail with ErrTimeout once t passes.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.rdeadline.set(t)
	if !t.IsZero() {
		s := st.s
		s.mu.Lock()
		s.kickReaderLocked(st) // a direct read in progress reads again, under the new deadline
		s.mu.Unlock()
	}
	return nil
}

// SetWriteDeadline makes pending and later Writes fail with ErrTimeout once t passes; a Write
// that times out may have written part of its bytes, and reports how many.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.wdeadline.set(t)
	s := st.s
	s.mu.Lock()
	s.kickInlineLocked(st, false) // a Write blocked in the connection write sees it too
	if st.windowRead {
		s.kickReaderLocked(st) // a Write reading for window reads again, under the new deadline
	}
	s.mu.Unlock()
	return nil
}

var _ net.Conn = (*Stream)(nil)
