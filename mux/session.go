package mux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// How a session ends: what the send loop still writes before the connection is closed.
type endMode int

const (
	endAbort    endMode = iota // the connection failed: close it at once
	endProtocol                // the peer broke the protocol: send GoAway(code), then close
	endGraceful                // local Close: send GoAway(0) and pending control, half-close, linger
)

// Session is one end of a yamux-protocol connection carrying many streams. It is a
// net.Listener: Accept returns the streams the peer opens. All methods are safe for
// concurrent use.
//
// A session runs three goroutines: a receive loop that reads frames (when no Read reads them
// itself: a Read with nothing buffered reads the connection in its own goroutine), a send
// loop that writes them (when no Write writes its own), and a keepalive goroutine when
// enabled (doc.go, "Design").
// They end when the session ends: Close, a protocol violation by the peer, a connection
// error, or a keepalive timeout. Done and Err report it.
type Session struct {
	conn      net.Conn // the connection, or an io.ReadWriteCloser in an rwcConn
	deadlines bool     // conn is a net.Conn: inline writes and cut writes are on
	cfg       Config
	client    bool
	log       *slog.Logger

	// mu guards the session's protocol state (the core, see doc.go): the fields below through
	// tuneProbe (among them the scheduler, the read token, the ping table and the memory
	// budget) and every stream's fields but its wmu and deadlines. Nobody reads or writes the connection while
	// holding it; the only connection calls made under it are SetReadDeadline and
	// SetWriteDeadline, the drivers' interrupts, which do not block.
	mu           sync.Mutex
	streams      map[uint32]*Stream
	nextID       uint32 // next ID this side opens
	incoming     int    // live streams the peer opened
	unacked      int    // streams this side opened that the peer has not ACKed
	ackWait      chan struct{}
	localGoAway  bool
	remoteGoAway bool
	goAwayIdle   chan struct{} // made by idleAfterGoAway; closed once localGoAway is set and streams is empty
	sched        scheduler
	rt           readToken
	mem          memBudget
	pings        pingTable
	rtt          time.Duration // smoothed round-trip time; 0 until measured
	minRTT       time.Duration // smallest round-trip time seen; 0 until measured
	tuneProbe    bool          // an auto-tuning RTT probe is out

	acceptCh chan *Stream // sent to only by the read token's holder, under mu
	recv     *receiver    // the read token's holder's parser (readtoken.go)

	now      func() time.Time // the core's clock: time.Now, or a test's
	lastRecv atomic.Int64     // time.Now().UnixNano() of the last read that got bytes (keepalive)
	stats    counters         // atomics, read only by Stats
	hooks    testHooks

	endOnce  sync.Once
	endedAt  time.Time // when the session ended; drain's deadline counts from it
	mode     endMode
	err      error         // why the session ended; set before done is closed
	done     chan struct{} // closed when the session ends
	flushed  chan struct{} // closed when the send loop has written its last frame
	recvDone chan struct{} // closed when the receive loop has returned
	wg       sync.WaitGroup
}

// testHooks let a test stop a goroutine at a chosen point to force an interleaving. They are
// nil outside tests; each costs one atomic load where it is consulted.
type testHooks struct {
	beforeSendLoopWrite atomic.Pointer[func()]        // the send loop, before it writes a batch (s.mu not held)
	afterWriteWait      atomic.Pointer[func(*Stream)] // a Write, after waiting for its frames and before it looks at the outcome
	beforeTakeDirect    atomic.Pointer[func(*Stream)] // a Read, once per call, before it tries to take the read token (s.mu not held)
	inRefusalWait       atomic.Pointer[func(*Stream)] // the reader waiting for room for a refusal (its stream for a direct reader, else nil), before each wait
	holdParked          atomic.Bool                   // the receive loop parks the read token after each frame when nobody waits on the peer, and does not take it back when its lease runs out
	afterConnRead       atomic.Pointer[func(int)]     // the reader (receive loop or a direct Read), after each connection read that returned bytes, with their count
}

// Client starts the client side of a session over conn: it opens odd stream IDs. A nil cfg
// means DefaultConfig(). It returns an error wrapping ErrInvalidConfig if cfg.Validate fails;
// conn is then left open. The session owns conn from then on and closes it when it ends.
//
// conn is a net.Conn (TCP, Unix, TLS, ...) or, as hashicorp/yamux allows, any other
// io.ReadWriteCloser. A net.Conn's deadlines give the fast paths: a Read or Write that finds
// the connection idle reads or writes it itself, and a Write that gives up (its deadline,
// Reset, Close) cuts a connection write short instead of waiting for it. Without deadlines the
// receive and send loops do all reading and writing, a Write that gives up still waits for the
// connection write carrying its frames, and a connection write that outlasts WriteTimeout
// closes conn (the session ends with ErrWriteTimeout). Addresses come from conn's LocalAddr
// and RemoteAddr methods when it has them.
func Client(conn io.ReadWriteCloser, cfg *Config) (*Session, error) {
	return newSession(conn, cfg, true)
}

// Server starts the server side of a session over conn: it opens even stream IDs. Otherwise
// it is Client.
func Server(conn io.ReadWriteCloser, cfg *Config) (*Session, error) {
	return newSession(conn, cfg, false)
}

func newSession(rwc io.ReadWriteCloser, c *Config, client bool) (*Session, error) {
	if c != nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	cfg := c.withDefaults()
	conn, deadlines := asConn(rwc)
	limitUnsent(conn, unsentLimit)
	conn = serialize(conn)
	s := newCore(cfg, client)
	s.conn, s.deadlines = conn, deadlines
	s.rt.init(conn.SetReadDeadline(time.Time{}) == nil)
	s.recv = &receiver{s: s, br: bufio.NewReaderSize(aliveReader{s}, readBufferSize)}
	s.sched.batch = newBatch(conn)
	s.wg.Add(2)
	go s.recvLoop()
	go s.sendLoop()
	if cfg.EnableKeepAlive {
		s.wg.Add(1)
		go s.keepalive()
	}
	s.mu.Lock()
	s.probeRTTLocked(startupProbes - 1)
	s.mu.Unlock()
	return s, nil
}

// newCore returns a session's core with no connection and no drivers: frames go in through
// the on*Locked methods and come out of sched.fillLocked. newSession adds the drivers; tests
// drive the core alone.
func newCore(cfg Config, client bool) *Session {
	s := &Session{
		cfg:      cfg,
		client:   client,
		log:      cfg.Logger,
		streams:  make(map[uint32]*Stream),
		nextID:   2,
		ackWait:  make(chan struct{}),
		acceptCh: make(chan *Stream, cfg.AcceptBacklog),
		done:     make(chan struct{}),
		flushed:  make(chan struct{}),
		recvDone: make(chan struct{}),
		now:      time.Now,
	}
	if client {
		s.nextID = 1
	}
	s.sched.init()
	s.mem.limit = int64(cfg.MaxSessionMemory)
	s.pings.init()
	s.lastRecv.Store(time.Now().UnixNano())
	return s
}

// Open opens a new stream. It does not wait for the peer's ACK (0-RTT): data can be written at
// once, and if the peer refuses the stream, reads and writes fail with ErrStreamReset. It
// waits, bounded by ctx, only while AcceptBacklog streams are already waiting for their ACK.
// Errors: ErrSessionClosed (or the session's error), ErrLocalGoAway, ErrRemoteGoAway,
// ErrStreamsExhausted, ErrMemoryBudget, or ctx's error (also when ctx is done on entry, as
// net.Dialer does: nothing is sent then).
func (s *Session) Open(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		switch {
		case isClosed(s.done):
			s.mu.Unlock()
			return nil, s.Err()
		case s.localGoAway:
			s.mu.Unlock()
			return nil, ErrLocalGoAway
		case s.remoteGoAway:
			s.mu.Unlock()
			return nil, ErrRemoteGoAway
		case s.nextID >= 1<<32-2:
			s.mu.Unlock()
			return nil, ErrStreamsExhausted
		}
		if s.unacked >= s.cfg.AcceptBacklog {
			wait := s.ackWait
			s.addWaiterLocked() // ACKs must be read
			s.mu.Unlock()
			var err error
			select {
			case <-wait:
			case <-ctx.Done():
				err = ctx.Err()
			case <-s.done:
			}
			s.endWait(nil)
			if err != nil {
				return nil, err
			}
			continue
		}
		if !s.mem.reserve(initialWindow) {
			s.mu.Unlock()
			return nil, ErrMemoryBudget
		}
		st := newStream(s, s.nextID, true)
		s.nextID += 2
		s.streams[st.id] = st
		s.unacked++
		st.openTimer = time.AfterFunc(s.cfg.StreamOpenTimeout, func() { s.openTimedOut(st) })
		st.sendFlags |= flagSYN
		s.sched.queueCtrlLocked(st)
		s.mu.Unlock()
		s.stats.streamsOpened.Add(1)
		return st, nil
	}
}

// AcceptStream returns the next stream the peer opened, sending its ACK. It blocks until one
// arrives, ctx ends (ctx's error), or the session ends (its error).
func (s *Session) AcceptStream(ctx context.Context) (*Stream, error) {
	// Streams already in the backlog come first, even after the session ended: their data
	// (often complete, FIN included) is still readable.
	select {
	case st := <-s.acceptCh:
		return s.accepted(st), nil
	default:
	}
	select {
	case st := <-s.acceptCh:
		return s.accepted(st), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, s.Err()
	}
}

func (s *Session) accepted(st *Stream) *Stream {
	s.mu.Lock()
	if st.send != sendReset { // a stream reset while in the backlog gets no ACK: it is gone
		st.sendFlags |= flagACK
		s.sched.queueCtrlLocked(st)
	}
	s.mu.Unlock()
	s.stats.streamsAccepted.Add(1)
	return st
}

// Accept returns the next stream the peer opened as a net.Conn, so a *Session serves as a
// net.Listener (for http.Server.Serve, for example). It is AcceptStream without a deadline;
// after Close its error matches net.ErrClosed.
func (s *Session) Accept() (net.Conn, error) {
	st, err := s.AcceptStream(context.Background())
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Addr returns the local address of the session's connection (net.Listener).
func (s *Session) Addr() net.Addr { return s.conn.LocalAddr() }

// LocalAddr returns the local address of the session's connection.
func (s *Session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the remote address of the session's connection.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// NumStreams returns how many streams are alive in the session's table: opened or accepted
// and not yet closed in both directions or reset.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// GoAway tells the peer that this side accepts no new streams (GoAway frame, code 0, spec.md
// "GoAway") and stops opening its own: Open then fails with ErrLocalGoAway and incoming SYNs
// are refused with RST. Existing streams go on; close the session once NumStreams reaches 0.
// It returns the session's error if the session has ended.
func (s *Session) GoAway() error {
	s.mu.Lock()
	if isClosed(s.done) {
		s.mu.Unlock()
		return s.Err()
	}
	if !s.localGoAway {
		s.localGoAway = true
		s.sched.goAwayLocked(GoAwayNormal)
	}
	close(s.ackWait)
	s.ackWait = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Close ends the session. Frames queued before it go out before its GoAway (code 0): the
// control frames already queued (window updates, FINs, RSTs), then the data of Writes still
// in progress as far as the peer's window admits (a FIN that CloseWrite queued behind that
// data rides on its last frame). Then it half-closes the connection and closes it once the
// peer closes its side or WriteTimeout passes. Blocked calls on the session and its streams
// return ErrSessionClosed (a Write in progress first waits for those last frames and reports
// what they carried; if they carried all its bytes it returns no error). Bytes for which
// Write already returned are delivered before the connection closes. Close returns once the
// last frame is written (bounded by WriteTimeout); calling it again returns nil.
func (s *Session) Close() error {
	s.end(ErrSessionClosed, endGraceful)
	<-s.flushed
	return nil
}

// Done returns a channel that is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it is running. Every such error matches
// ErrSessionClosed with errors.Is; a more specific cause (a *ProtocolError, a *GoAwayError,
// ErrKeepAliveTimeout, ErrWriteTimeout, the connection's error) is wrapped alongside it.
// When the peer closed the connection after its GoAway (an orderly close, as Close does)
// the cause is ErrRemoteGoAway; a connection that ended otherwise, mid-frame or without
// GoAway, gives io.ErrUnexpectedEOF (never io.EOF, which Read keeps for the peer's FIN).
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// end makes the session end with err once; later calls do nothing. The send loop finishes the
// work mode asks for and closes the connection.
func (s *Session) end(err error, mode endMode) {
	s.endOnce.Do(func() {
		if err != ErrSessionClosed {
			err = fmt.Errorf("%w: %w", ErrSessionClosed, err)
		}
		s.mu.Lock()
		s.err = err
		s.mode = mode
		s.endedAt = time.Now()
		switch mode {
		case endGraceful:
			// Queued before done is closed, so the drain that done starts finds it pending;
			// drain writes it after the frames queued before Close.
			s.sched.goAwayLocked(GoAwayNormal)
		case endProtocol:
			var pe *ProtocolError
			if errors.As(err, &pe) {
				s.sched.goAwayLocked(pe.Code)
			}
		}
		close(s.done)
		s.kickReaderLocked(nil)
		s.sched.notify()
		open := len(s.streams)
		s.mu.Unlock()
		if mode == endAbort {
			s.conn.Close() // unblocks both loops
		}
		switch {
		case mode == endGraceful:
		case errors.Is(err, ErrRemoteGoAway), errors.Is(err, io.ErrUnexpectedEOF) && open == 0:
			// The peer closed the connection after GoAway, or with no stream open (as
			// hashicorp/yamux's Close does, without GoAway): an orderly end on its side.
			s.log.Debug("mux: session closed by peer", "remote", s.conn.RemoteAddr())
		default:
			s.log.Warn("mux: session ended", "remote", s.conn.RemoteAddr(), "err", err)
		}
	})
}

func (s *Session) remoteGoAwaySeen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remoteGoAway
}

// fail ends the session because of an error seen by one of its drivers: a *ProtocolError is
// answered with GoAway carrying its code; a *GoAwayError (the peer's) and connection errors
// close the connection at once. s.mu must not be held.
func (s *Session) fail(err error) {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		s.end(err, endProtocol)
		return
	}
	s.end(err, endAbort)
}

// connLost converts a read or write error of the connection into the session's error.
func connLost(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("connection lost: %w", err)
}

// idleAfterGoAway returns a channel that is closed once GoAway has been called and no stream
// is left in the table. After GoAway the table only shrinks: Open fails and incoming SYNs are
// refused without entering it.
func (s *Session) idleAfterGoAway() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.goAwayIdle == nil {
		s.goAwayIdle = make(chan struct{})
	}
	s.checkGoAwayIdleLocked()
	return s.goAwayIdle
}

// checkGoAwayIdleLocked closes goAwayIdle if it exists and its condition holds. s.mu must be held.
func (s *Session) checkGoAwayIdleLocked() {
	if s.goAwayIdle != nil && s.localGoAway && len(s.streams) == 0 && !isClosed(s.goAwayIdle) {
		close(s.goAwayIdle)
	}
}

// ackedLocked counts one outbound stream as no longer waiting for its ACK. s.mu must be held.
func (s *Session) ackedLocked() {
	s.unacked--
	if s.unacked == s.cfg.AcceptBacklog-1 {
		close(s.ackWait)
		s.ackWait = make(chan struct{})
	}
}

// Stats returns a snapshot of the session's counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	open, rtt, reserved := len(s.streams), s.rtt, s.mem.used
	s.mu.Unlock()
	return Stats{
		Streams:         open,
		StreamsOpened:   s.stats.streamsOpened.Load(),
		StreamsAccepted: s.stats.streamsAccepted.Load(),
		StreamsRefused:  s.stats.streamsRefused.Load(),
		FramesSent:      s.stats.framesSent.Load(),
		FramesReceived:  s.stats.framesReceived.Load(),
		BytesSent:       s.stats.bytesSent.Load(),
		BytesReceived:   s.stats.bytesReceived.Load(),
		ResetsReceived:  s.stats.resetsReceived.Load(),
		PongsDropped:    s.stats.pongsDropped.Load(),
		WindowGrowths:   s.stats.windowGrowths.Load(),
		RTT:             rtt,
		MemoryReserved:  reserved,
		MemoryLimit:     s.mem.limit,
	}
}

// Wait blocks until the session's goroutines have all returned and its connection is closed.
// Call it after Close to be sure nothing is left running.
func (s *Session) Wait() { s.wg.Wait() }
