package mux

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Lifecycle bits of Stream.state. A stream leaves the session's table once both directions
// are done: FIN sent and FIN received, or RST either way.
const (
	bitSendDone uint32 = 1 << iota // FIN or RST sent, or RST received
	bitRecvDone                    // FIN or RST received, or RST sent
	bitRemoved                     // gone from the session's stream table
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

	state     atomic.Uint32 // bitSendDone | bitRecvDone | bitRemoved
	acked     atomic.Bool   // outbound: the peer ACKed (or sent anything on) the stream
	resetting atomic.Bool   // reset has begun: later resets do nothing

	// Receive half, guarded by mu.
	mu          sync.Mutex
	buf         recvBuffer
	window      uint32 // receive window in bytes: starts at 256 KiB, auto-tuned upward
	outstanding uint32 // window credit the peer still holds
	pending     uint32 // bytes of the frame being read that are not in buf (or Read's p) yet
	reserved    int64  // bytes of the session's memory budget this stream holds
	readTotal   uint64 // bytes Read so far
	epochStart  time.Time
	epochRead   uint64 // readTotal at epochStart (window auto-tuning)
	finRecv     bool
	readClosed  bool  // Close was called: incoming data is answered with RST
	recvErr     error // why reading ended early (reset)
	readReady   chan struct{}
	rdeadline   deadline
	rwaits      int // Reads waiting for data another reads; guarded by s.rt.mu
	closeTimer  *time.Timer

	// Send half, guarded by s.sched.mu.
	sendWindow  int64  // bytes the peer lets us send
	wbuf        []byte // the rest of the current Write
	inflight    int    // frames of wbuf in the batch being written
	written     int    // bytes of the current Write handed to the connection
	sendFlags   uint16 // flags to send: SYN, ACK, FIN, RST
	sendDelta   uint32 // window credit to send
	sendErr     error  // why writing ended early (reset, session end)
	writeCancel error  // set by Close: the pending Write ends with it, unsent bytes dropped
	finQueued   bool   // CloseWrite was called
	inCtrl      bool
	inData      bool
	nextCtrl    *Stream
	nextData    *Stream
	writeDone   chan struct{}

	wmu       sync.Mutex // serializes Write calls
	wdeadline deadline
	openTimer *time.Timer
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
		epochStart:  time.Now(),
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

// sendable reports whether the send loop can put a Data frame of st on the wire now.
// s.sched.mu must be held.
func (st *Stream) sendable() bool {
	return len(st.wbuf) > 0 && st.sendWindow > 0 && st.sendErr == nil
}

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
	st.mu.Lock()
	for {
		if st.buf.len() > 0 {
			if len(p) == 0 {
				st.mu.Unlock()
				return 0, nil
			}
			n := st.buf.read(p)
			delta := st.creditLocked(n)
			if st.buf.len() == 0 {
				st.releaseLocked()
			} else {
				notify(st.readReady) // for another Read waiting on the stream
			}
			st.mu.Unlock()
			if delta > 0 {
				s.sched.grant(st, delta)
			}
			return n, nil
		}
		var err error
		switch {
		case st.recvErr != nil:
			err = st.recvErr
		case st.finRecv:
			err = io.EOF
		case st.readClosed:
			err = errReadAfterClose
		case isClosed(s.done):
			err = s.Err()
		}
		if err != nil {
			st.mu.Unlock()
			notify(st.readReady) // one wake-up per event: pass it on to another waiting Read
			return 0, err
		}
		st.mu.Unlock()
		waiter := st // counted by takeDirect, or by addWaiter as nil
		if len(p) > 0 && s.rt.direct && st.rdeadline.when().IsZero() {
			if h := s.hooks.beforeTakeDirect.Load(); h != nil {
				(*h)(st)
			}
			if s.takeDirect(st) {
				if n := st.readDirect(p); n > 0 {
					return n, nil
				}
				st.mu.Lock()
				continue
			}
		} else {
			s.addWaiter()
			waiter = nil
		}
		select {
		case <-st.readReady:
		case <-st.rdeadline.wait():
			s.endWait(waiter)
			return 0, ErrTimeout
		case <-s.done:
		}
		s.endWait(waiter)
		st.mu.Lock()
	}
}

// readDirect reads the connection for st, which holds the read token and has nothing
// buffered, until st's own data lands in p (it returns the count) or something else ends the
// wait (it returns 0, and Read looks again): data, FIN or RST for st in its buffer, a kick
// (Reset, Close, a new read deadline, the session's end) or a failed read. Frames for other
// streams are handled on the way, as the receive loop would.
func (st *Stream) readDirect(p []byte) int {
	s := st.s
	// Data that came in since Read looked goes first; a read deadline set since then must be
	// watched (SetReadDeadline kicks only a reader that already holds the token).
	if st.readable() || !st.rdeadline.when().IsZero() {
		s.leaveDirect(st)
		return 0
	}
	r := s.recv
	r.own, r.p, r.pn, r.queued = st, p, 0, false
	var err error
	for {
		block := r.pn == 0 && !st.readable()
		var more bool
		if more, err = r.step(block); err != nil || !more {
			break
		}
	}
	n := r.pn
	r.own, r.p, r.pn = nil, nil, 0
	// A kick ends a direct read in the connection read (a timeout) or in a refusal wait
	// (errRefusalWait, resumed by the next reader): neither is the session's failure.
	if err != nil && err != errRefusalWait && !s.kicked(err) && !isClosed(s.done) {
		s.recvFailed(err)
	}
	s.leaveDirect(st)
	return n
}

// readable reports whether Read has something to return without reading the connection.
func (st *Stream) readable() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.buf.len() > 0 || st.finRecv || st.recvErr != nil || st.readClosed ||
		isClosed(st.s.done)
}

// Write sends p as Data frames of at most 64 KiB, as the peer's window allows, interleaved
// with other streams' frames. It returns once every byte was handed to the connection, or with
// the count written so far and ErrStreamClosed (after CloseWrite or Close), ErrStreamReset,
// ErrTimeout (write deadline), or the session's error.
func (st *Stream) Write(p []byte) (int, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	sc := &st.s.sched
	sc.mu.Lock()
	switch {
	case st.sendErr != nil:
		err := st.sendErr
		sc.mu.Unlock()
		return 0, err
	case st.finQueued:
		sc.mu.Unlock()
		return 0, ErrStreamClosed
	case isClosed(st.s.done):
		sc.mu.Unlock()
		return 0, st.s.Err()
	case isClosed(st.wdeadline.wait()):
		sc.mu.Unlock()
		return 0, ErrTimeout
	case len(p) == 0:
		sc.mu.Unlock()
		return 0, nil
	}
	st.wbuf, st.written, st.writeCancel = p, 0, nil
	if st.s.canWriteInlineLocked() {
		sc.pushDataLocked(st)
		st.s.writeInlineLocked(st)
	} else {
		sc.queueDataLocked(st)
	}
	sc.mu.Unlock()

	var cancel error
	for {
		if cancel == nil {
			select {
			case <-st.writeDone:
			default:
				cancel = st.waitWritten()
			}
		} else {
			<-st.writeDone // only frames already being written are waited for
		}
		if h := st.s.hooks.afterWriteWait.Load(); h != nil {
			(*h)(st)
		}
		sc.mu.Lock()
		if st.inflight == 0 && st.written == len(p) {
			// Every byte was handed to the connection: the Write succeeded, whatever
			// happened to the stream since (a reset, Close, a deadline, the session's end).
			st.wbuf = nil
			sc.mu.Unlock()
			return len(p), nil
		}
		if cancel == nil {
			cancel = st.sendErr
		}
		if cancel == nil {
			cancel = st.writeCancel
		}
		if cancel != nil {
			st.wbuf = nil
		}
		if st.inflight > 0 || cancel == nil && len(st.wbuf) > 0 {
			if cancel != nil {
				st.s.cutWriteLocked() // st's frames are being written by another: cut it short
			}
			sc.mu.Unlock()
			continue
		}
		n := st.written
		st.wbuf = nil
		if cancel != nil && st.sendFlags != 0 {
			sc.queueCtrlLocked(st) // a FIN that waited for this data goes alone
		}
		sc.mu.Unlock()
		return n, cancel
	}
}

// waitWritten waits for the send side's progress on the pending Write, counted as a waiter
// on the peer (window updates must be read). It returns why the Write ends early, or nil.
func (st *Stream) waitWritten() error {
	s := st.s
	s.addWaiter()
	defer s.endWait(nil)
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
	sc := &st.s.sched
	sc.mu.Lock()
	if st.finQueued || st.sendErr != nil {
		sc.mu.Unlock()
		return nil
	}
	if isClosed(st.s.done) {
		sc.mu.Unlock()
		return st.s.Err()
	}
	st.finQueued = true
	st.sendFlags |= flagFIN
	sc.queueCtrlLocked(st)
	sc.mu.Unlock()
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
	// A Write still waiting (for window, typically) ends now with ErrStreamClosed, as net.Conn's
	// Close promises; its unsent rest is dropped and the FIN follows what is already on the wire.
	sc := &st.s.sched
	sc.mu.Lock()
	if len(st.wbuf) > 0 {
		st.wbuf = nil
		st.writeCancel = ErrStreamClosed
		notify(st.writeDone)
		st.s.kickInlineLocked(st, true)
	}
	sc.mu.Unlock()
	err := st.CloseWrite()
	st.mu.Lock()
	if st.readClosed {
		st.mu.Unlock()
		return nil
	}
	st.readClosed = true
	st.buf.release()
	st.releaseLocked()
	st.s.kickReader(st)
	waitFIN := !st.finRecv && st.recvErr == nil
	var credit uint32
	if waitFIN && !isClosed(st.s.done) {
		st.closeTimer = time.AfterFunc(st.s.cfg.StreamCloseTimeout, func() {
			st.reset(errResetCloseTimer, true)
		})
		// Give the peer back all the window it does not hold: a writer blocked on a used-up
		// window then sends its next bytes, which are answered with RST, so its Write fails
		// within a round trip instead of waiting for the close timer. Nothing is buffered
		// any more (arriving data is dropped), so the credit costs no memory.
		credit = st.window - min(st.window, st.outstanding+st.pending)
		st.outstanding += credit
	}
	st.mu.Unlock()
	if credit > 0 {
		st.s.sched.grant(st, credit)
	}
	notify(st.readReady)
	return err
}

// Reset aborts both directions at once: an RST goes to the peer, buffered data is dropped, and
// blocked and later Reads and Writes fail with ErrStreamReset. It returns nil, also when the
// stream has already ended.
func (st *Stream) Reset() error {
	st.reset(errResetLocal, true)
	return nil
}

// reset ends both halves with cause; sendRST tells the peer. Later calls do nothing. The send
// half is ended first, so a goroutine whose Read already returned the reset cannot get a
// Write through after it.
func (st *Stream) reset(cause error, sendRST bool) {
	if st.state.Load()&bitRemoved != 0 || !st.resetting.CompareAndSwap(false, true) {
		return
	}
	sc := &st.s.sched
	sc.mu.Lock()
	if st.sendErr == nil {
		st.sendErr = cause
	}
	st.wbuf = nil
	st.s.kickInlineLocked(st, true)
	if sendRST {
		st.sendFlags |= flagRST
		sc.queueCtrlLocked(st)
	}
	sc.mu.Unlock()
	notify(st.writeDone)

	st.mu.Lock()
	st.recvErr = cause
	st.buf.release()
	st.s.kickReader(st)
	if st.closeTimer != nil {
		st.closeTimer.Stop()
	}
	st.mu.Unlock()
	notify(st.readReady)
	if st.openTimer != nil {
		st.openTimer.Stop()
	}
	st.finish(bitSendDone | bitRecvDone)
}

// finish records that a direction is done; the caller that completes both removes the stream
// from the session's table.
func (st *Stream) finish(bits uint32) {
	old := st.state.Or(bits)
	both := bitSendDone | bitRecvDone
	if old&both != both && (old|bits)&both == both {
		if st.state.Or(bitRemoved)&bitRemoved == 0 {
			st.s.removeStream(st)
			st.mu.Lock()
			st.releaseLocked()
			st.mu.Unlock()
		}
	}
}

// releaseLocked returns the stream's memory reservation to the session once nothing more can
// arrive and nothing is buffered. st.mu must be held.
func (st *Stream) releaseLocked() {
	if st.reserved == 0 || st.buf.len() > 0 && !st.readClosed && st.recvErr == nil {
		return
	}
	if st.state.Load()&bitRemoved == 0 && !st.readClosed {
		return
	}
	st.s.mem.release(st.reserved)
	st.reserved = 0
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
		st.s.kickReader(st) // a direct read does not watch the deadline: it reads again
	}
	return nil
}

// SetWriteDeadline makes pending and later Writes fail with ErrTimeout once t passes; a Write
// that times out may have written part of its bytes, and reports how many.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.wdeadline.set(t)
	sc := &st.s.sched
	sc.mu.Lock()
	st.s.kickInlineLocked(st, false) // a Write blocked in the connection write sees it too
	sc.mu.Unlock()
	return nil
}

var _ net.Conn = (*Stream)(nil)
