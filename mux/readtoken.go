package mux

import (
	"errors"
	"os"
	"time"
)

// The connection is read by whoever holds the session's read token: the receive loop, a
// Stream.Read that finds its buffer empty and reads frames itself (direct read; only when the
// connection has read deadlines, which interrupt it: readToken.direct), or a Stream.Write
// whose send window is used up and reads frames itself until a WindowUpdate opens it (window
// read), each handing other streams' frames on as the receive loop would. A request/response
// stream then gets its reply from the socket in the goroutine that waits for it, and a bulk
// writer its window updates, as on a plain TCP connection: no hand-off from the receive loop,
// which on two CPUs costs a cross-CPU wake-up each way and, for a writer woken by it, pulls
// the writer onto the reader's CPU, where writer and reader then take turns.
//
// Between its reads a stream's Read or Write leaves the token parked: nobody reads, and the
// next Read of any stream, or Write out of window, takes it at once. A parked token is taken
// back by the receive loop once nobody has taken it for leaseTimeout (checked every
// leaseTimeout), or at once when someone waits on the peer without reading it (a Write
// waiting for window that found the token busy or cannot read, a Ping, an Open waiting for
// ACKs, a Read that found the token busy). So frames nobody waits for (a SYN for Accept, the
// peer's pings) wait at most twice leaseTimeout, 1 ms.

// leaseTimeout is how long a token stays parked, untaken, before the receive loop reads again.
const leaseTimeout = 500 * time.Microsecond

// aLongTimeAgo is a read deadline in the past: it interrupts a direct read in progress.
var aLongTimeAgo = time.Unix(1, 0)

// readToken says who reads the connection. Its fields are guarded by s.mu.
type readToken struct {
	loop    bool          // the receive loop reads
	holder  *Stream       // a Read of this stream reads, or its Write (Stream.windowRead)
	kicked  bool          // the connection's read deadline was set in the past to interrupt the holder
	timed   bool          // the connection's read deadline is the holder's own read deadline
	waiters int           // goroutines waiting on the peer through another's reading
	direct  bool          // the connection supports read deadlines, so direct reads are on
	parks   uint64        // times the token was parked (neither loop nor holder reads)
	armed   bool          // timer is pending
	wake    chan struct{} // wakes the receive loop
	timer   *time.Timer   // wakes the receive loop leaseTimeout after a park
}

func (t *readToken) init(direct bool) {
	t.loop = true
	t.direct = direct
	t.wake = make(chan struct{}, 1)
	t.timer = time.AfterFunc(time.Hour, func() { notify(t.wake) })
	t.timer.Stop()
}

// parkLocked leaves the token to the next reader, or wakes the receive loop at once when
// someone waits on the peer. s.mu must be held.
func (t *readToken) parkLocked() {
	t.loop, t.holder = false, nil
	if t.waiters > 0 {
		notify(t.wake)
		return
	}
	t.parks++
	if !t.armed { // armed, it fires within leaseTimeout of the first park, see takeForLoop
		t.armed = true
		t.timer.Reset(leaseTimeout)
	}
}

// takeForLoop returns when the receive loop may read again. After a yield (wait) it first
// waits to be woken. It takes a parked token when someone waits on the peer, when the
// session ended, or when the token stayed parked, not taken by any Read or Write, for a
// whole leaseTimeout; while they keep taking and parking it, it only looks every leaseTimeout
// (counting parks costs them less than a timer reset). s.mu must not be held.
func (s *Session) takeForLoop(wait bool) {
	t := &s.rt
	done := s.done
	s.mu.Lock()
	seen := t.parks
	for {
		if t.loop {
			break // never gave it up
		}
		if t.holder == nil && !wait {
			if t.waiters > 0 || isClosed(s.done) || t.parks == seen && !s.hooks.holdParked.Load() {
				break
			}
			seen = t.parks // Reads and Writes use it: look again later
			t.armed = true
			t.timer.Reset(leaseTimeout)
		}
		wait = false
		s.mu.Unlock()
		select {
		case <-t.wake:
		case <-done:
			done = nil // seen; from now on the holder's release wakes the loop
		}
		s.mu.Lock()
		// Whatever woke the loop, it looks now; a park after this arms the timer again.
		t.armed = false
	}
	t.loop = true
	if t.armed {
		t.timer.Stop() // a stale expiry would end the next park early
		t.armed = false
	}
	s.mu.Unlock()
}

// yieldLocked parks the token, from the receive loop, when the only goroutines waiting on the
// peer are st's reader, just given data, or st's writer, just given window: its next Read
// then reads the connection itself, or its Write once the window is used up again. s.mu must
// be held.
func (s *Session) yieldLocked(st *Stream) bool {
	t := &s.rt
	if !t.direct || t.waiters == 0 || t.waiters != st.rwaits+st.wwaits || isClosed(s.done) {
		return false
	}
	// st's reader or writer is the one waiter, about to wake: it no longer counts, and it
	// finds the token parked.
	t.waiters = 0
	st.rwaits = 0
	st.wwaits = 0
	t.parkLocked()
	notify(st.readReady) // in case its reader already took the data and waits for more
	return true
}

// takeDirectLocked gives st's Read the token if it is parked. Otherwise the Read is counted as
// a waiter (st.rwaits) and must wait for its data; it calls endWaitLocked after. s.mu must be
// held.
func (s *Session) takeDirectLocked(st *Stream) bool {
	t := &s.rt
	if !t.loop && t.holder == nil && !isClosed(s.done) {
		t.holder = st
		return true
	}
	t.waiters++
	st.rwaits++
	return false
}

// takeForWindowLocked gives st's Write, whose send window is used up, the token if it is
// parked (a window read). s.mu must be held.
func (s *Session) takeForWindowLocked(st *Stream) bool {
	t := &s.rt
	if !t.direct || t.loop || t.holder != nil || isClosed(s.done) {
		return false
	}
	t.holder = st
	st.windowRead = true
	return true
}

// parkForTestLocked parks the token from the receive loop when nobody waits on the peer, for
// the holdParked test hook; it reports whether it did. s.mu must be held.
func (s *Session) parkForTestLocked() bool {
	t := &s.rt
	if t.waiters > 0 || isClosed(s.done) {
		return false
	}
	t.parkLocked()
	return true
}

// leaveDirectLocked parks the token after st's direct read or window read. s.mu must be held.
func (s *Session) leaveDirectLocked(st *Stream) {
	st.windowRead = false
	t := &s.rt
	if t.timed {
		// The next reader reads without st's deadline. A kick still pending keeps its
		// deadline in the past: the next read fails at once and clears it (interrupted).
		t.timed = false
		if !t.kicked {
			s.conn.SetReadDeadline(time.Time{})
		}
	}
	if t.holder == st {
		if isClosed(s.done) {
			t.holder = nil
			notify(t.wake)
		} else {
			t.parkLocked()
		}
	}
}

// addWaiter counts a goroutine waiting on the peer without reading; a parked token goes
// back to the receive loop. endWait undoes it. s.mu must not be held.
func (s *Session) addWaiter() {
	s.mu.Lock()
	s.addWaiterLocked()
	s.mu.Unlock()
}

// addWaiterLocked is addWaiter with s.mu held.
func (s *Session) addWaiterLocked() {
	t := &s.rt
	t.waiters++
	if !t.loop && t.holder == nil {
		notify(t.wake)
	}
}

// addWriteWaiterLocked counts st's Write as a waiter on the peer (addWaiterLocked), by stream,
// so that the receive loop can leave it the token (yieldLocked). s.mu must be held.
func (s *Session) addWriteWaiterLocked(st *Stream) {
	st.wwaits++
	s.addWaiterLocked()
}

// endWriteWaitLocked ends a wait counted by addWriteWaiterLocked, unless a yield already took
// it off. s.mu must be held.
func (s *Session) endWriteWaitLocked(st *Stream) {
	if st.wwaits > 0 {
		st.wwaits--
		s.rt.waiters--
	}
}

// endWait ends a wait counted by addWaiter. s.mu must not be held.
func (s *Session) endWait(st *Stream) {
	s.mu.Lock()
	s.endWaitLocked(st)
	s.mu.Unlock()
}

// endWaitLocked ends a wait counted by takeDirectLocked (st) or addWaiterLocked (nil). s.mu
// must be held.
func (s *Session) endWaitLocked(st *Stream) {
	t := &s.rt
	switch {
	case st == nil:
		t.waiters--
	case st.rwaits > 0: // unless a yield already took it off
		t.waiters--
		st.rwaits--
	}
}

// kickReaderLocked interrupts st's direct read in progress (any stream's, if st is nil): its
// connection read fails with a timeout, and it gives the token up. s.mu must be held.
func (s *Session) kickReaderLocked(st *Stream) {
	t := &s.rt
	if t.holder != nil && (st == nil || t.holder == st) {
		if !t.kicked {
			t.kicked = true
			s.conn.SetReadDeadline(aLongTimeAgo)
		}
		notify(t.holder.readReady) // a direct read waiting on something else than the connection
	}
	if st == nil {
		notify(t.wake)
	}
}

// timeDirectLocked puts d, the deadline of the Read or Write holding the token, on the
// connection, so its direct or window read ends when it passes; false if it has passed
// already. s.mu must be held.
func (s *Session) timeDirectLocked(d time.Time) bool {
	if d.IsZero() {
		return true
	}
	if !time.Now().Before(d) {
		return false
	}
	s.rt.timed = true
	s.conn.SetReadDeadline(d)
	return true
}

// interrupted reports whether err is the timeout of a read the session interrupted on
// purpose (a kick, or a direct reader's own deadline), and if so clears the connection's read
// deadline. Any other error is the connection's. s.mu must not be held.
func (s *Session) interrupted(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.rt
	if !t.kicked && !t.timed {
		return false
	}
	t.kicked, t.timed = false, false
	s.conn.SetReadDeadline(time.Time{})
	return true
}
