package mux

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests in this file attack a Session from a raw TCP peer that writes hand-built frames
// and parses what comes back, so every reaction (RST, GoAway code, session error) is checked
// on the wire and not only through the API.

// rawFrame is one frame as the raw peer read it.
type rawFrame struct {
	ver     uint8
	typ     frameType
	flags   uint16
	id      uint32
	length  uint32
	payload []byte
}

// rawHeader encodes one frame header by hand (not with the package's encoder, so an encoder
// bug cannot hide itself): version, type, flags u16, stream ID u32, length u32, big-endian.
func rawHeader(ver, typ uint8, flags uint16, id, length uint32) []byte {
	b := make([]byte, 12)
	b[0], b[1] = ver, typ
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], length)
	return b
}

// rawPeer is the hostile end of a TCP connection whose other end runs a Session.
type rawPeer struct {
	t    testing.TB
	conn net.Conn

	autoPong  bool          // answer the session's pings (set before start)
	pongDelay time.Duration // answer them this late, as over a link with that round trip
	slow      bool          // read at about 800 KB/s (8 KiB per 10 ms)
	autoGrant bool          // give back window credit for every Data payload read

	frames  chan rawFrame // frames read, for expect; dropped (and counted) when full
	dropped atomic.Int64
	pongs   atomic.Int64 // Ping ACK frames read
	rsts    atomic.Int64 // RST frames read
	total   atomic.Int64 // frames read
	readErr chan error   // the reader's final error
	started bool
}

// hostileConfig is testConfig with no keepalive, no logging and short timeouts.
func hostileConfig() *Config {
	c := testConfig()
	c.EnableKeepAlive = false
	c.WriteTimeout = 2 * time.Second
	c.StreamOpenTimeout = 2 * time.Second
	c.StreamCloseTimeout = 2 * time.Second
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// hostileServer starts a Server session over loopback TCP whose client end is a raw peer
// (which therefore opens odd stream IDs). Both are closed when the test ends.
func hostileServer(t testing.TB, cfg *Config) (*Session, *rawPeer) {
	t.Helper()
	return hostileSession(t, cfg, false, nil)
}

// hostileSession starts a session (server unless client) over loopback TCP; tune may adjust
// the two TCP ends (socket buffer sizes) before the session starts.
func hostileSession(t testing.TB, cfg *Config, client bool, tune func(peer, sess *net.TCPConn)) (*Session, *rawPeer) {
	t.Helper()
	pc, sc := tcpPair(t)
	if tune != nil {
		tune(pc.(*net.TCPConn), sc.(*net.TCPConn))
	}
	if cfg == nil {
		cfg = hostileConfig()
	}
	var s *Session
	var err error
	if client {
		s, err = Client(sc, cfg)
	} else {
		s, err = Server(sc, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, conn: pc, frames: make(chan rawFrame, 1<<14), readErr: make(chan error, 1)}
	t.Cleanup(func() {
		pc.Close()
		s.Close()
		s.Wait()
		if p.started {
			<-p.readErr
		}
	})
	return s, p
}

// start runs the peer's reader: it parses every frame the session sends.
func (p *rawPeer) start() {
	p.started = true
	go func() {
		var src io.Reader = p.conn
		if p.slow {
			src = &slowReader{r: p.conn}
		}
		br := bufio.NewReaderSize(src, 8<<10)
		var hdr [12]byte
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				p.readErr <- err
				return
			}
			f := rawFrame{
				ver:    hdr[0],
				typ:    frameType(hdr[1]),
				flags:  binary.BigEndian.Uint16(hdr[2:]),
				id:     binary.BigEndian.Uint32(hdr[4:]),
				length: binary.BigEndian.Uint32(hdr[8:]),
			}
			if f.typ == typeData && f.length > 0 {
				f.payload = make([]byte, f.length)
				if _, err := io.ReadFull(br, f.payload); err != nil {
					p.readErr <- err
					return
				}
			}
			p.total.Add(1)
			if p.autoGrant && f.typ == typeData && f.length > 0 && f.flags&flagRST == 0 {
				p.conn.Write(rawHeader(0, uint8(typeWindowUpdate), 0, f.id, f.length))
			}
			if f.typ == typePing && f.flags&flagACK != 0 {
				p.pongs.Add(1) // counted, not queued: a flood's replies would crowd out the rest
				continue
			}
			if f.flags&flagRST != 0 {
				p.rsts.Add(1)
			}
			if p.autoPong && f.typ == typePing && f.flags&flagSYN != 0 {
				pong := rawHeader(0, uint8(typePing), flagACK, 0, f.length)
				if p.pongDelay > 0 {
					time.AfterFunc(p.pongDelay, func() { p.conn.Write(pong) })
				} else {
					p.conn.Write(pong)
				}
			}
			select {
			case p.frames <- f:
			default:
				p.dropped.Add(1)
			}
		}
	}()
}

// slowReader reads at most 8 KiB per 10 ms.
type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 8<<10)])
}

// send writes raw bytes to the session, failing the test if the write does not complete
// within 5 s (which would mean the session's receive loop stopped reading).
func (p *rawPeer) send(b ...[]byte) {
	p.t.Helper()
	if err := p.trySend(b...); err != nil {
		p.t.Fatalf("raw peer write: %v", err)
	}
}

func (p *rawPeer) trySend(b ...[]byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	defer p.conn.SetWriteDeadline(time.Time{})
	_, err := p.conn.Write(bytes.Join(b, nil))
	return err
}

// frame writes one frame: header plus payload.
func (p *rawPeer) frame(typ frameType, flags uint16, id uint32, payload []byte) {
	p.t.Helper()
	p.send(rawHeader(0, uint8(typ), flags, id, uint32(len(payload))), payload)
}

// expect returns the first frame (skipping others) that match wants, failing after d.
func (p *rawPeer) expect(d time.Duration, what string, match func(rawFrame) bool) rawFrame {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f := <-p.frames:
			if match(f) {
				return f
			}
		case err := <-p.readErr:
			p.readErr <- err
			// Frames read before the end come first.
			for {
				select {
				case f := <-p.frames:
					if match(f) {
						return f
					}
					continue
				default:
				}
				break
			}
			p.t.Fatalf("waiting for %s: connection ended: %v", what, err)
		case <-timer.C:
			p.t.Fatalf("no %s within %v", what, d)
		}
	}
}

// expectNone fails if a frame matching match arrives within d.
func (p *rawPeer) expectNone(d time.Duration, what string, match func(rawFrame) bool) {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f := <-p.frames:
			if match(f) {
				p.t.Fatalf("unexpected %s: %+v", what, f)
			}
		case <-timer.C:
			return
		}
	}
}

// drainFrames discards queued frames until none arrives for quiet, so a test that made the
// session send thousands of frames can expect new ones without the queue having overflowed.
func (p *rawPeer) drainFrames(quiet time.Duration) {
	for {
		select {
		case <-p.frames:
		case <-time.After(quiet):
			return
		}
	}
}

func isRST(id uint32) func(rawFrame) bool {
	return func(f rawFrame) bool { return f.id == id && f.flags&flagRST != 0 }
}

func isGoAway(f rawFrame) bool { return f.typ == typeGoAway }

// expectProtocolError checks the outcome of a fatal protocol violation: the session sends
// GoAway with code 1, and ends with an error that is a *ProtocolError with Code 1 and matches
// ErrSessionClosed.
func expectProtocolError(t *testing.T, s *Session, p *rawPeer) {
	t.Helper()
	f := p.expect(5*time.Second, "GoAway", isGoAway)
	if f.length != GoAwayProtocolError || f.id != 0 || f.ver != 0 {
		t.Fatalf("GoAway frame %+v, want code %d on stream 0", f, GoAwayProtocolError)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still running after a protocol error")
	}
	err := s.Err()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != GoAwayProtocolError {
		t.Fatalf("session error %v (%T), want a *ProtocolError with code 1", err, err)
	}
	if !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("session error %v does not match ErrSessionClosed", err)
	}
}

// acceptOne accepts a stream on s within 3 s.
func acceptOne(t *testing.T, s *Session) *Stream {
	t.Helper()
	st, err := s.AcceptStream(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	return st
}

// checkLegitStream proves the session still works for a well-behaved stream: the raw peer
// opens stream id with data and FIN, the session accepts it and reads exactly that data, and
// its reply reaches the peer.
func checkLegitStream(t *testing.T, s *Session, p *rawPeer, id uint32) {
	t.Helper()
	msg := []byte("legit request after the attack")
	p.frame(typeData, flagSYN|flagFIN, id, msg)
	st := acceptOne(t, s)
	if st.ID() != id {
		t.Fatalf("accepted stream %d, want %d", st.ID(), id)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("legit stream read %q, %v; want %q", got, err, msg)
	}
	if _, err := st.Write([]byte("reply")); err != nil {
		t.Fatalf("legit stream write: %v", err)
	}
	st.Close()
	f := p.expect(5*time.Second, "reply data", func(f rawFrame) bool { return f.typ == typeData && f.id == id && len(f.payload) > 0 })
	if string(f.payload) != "reply" {
		t.Fatalf("reply payload %q", f.payload)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}

// goroutineCeiling samples runtime.NumGoroutine while f runs and returns the maximum. Callers
// allow 32 over the start: timers of earlier tests may still fire, but a per-frame or
// per-stream goroutine would show as thousands.
func goroutineCeiling(f func()) int {
	var peak atomic.Int64
	peak.Store(int64(runtime.NumGoroutine()))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { // also when f fails the test
		close(stop)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if n := int64(runtime.NumGoroutine()); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	f()
	return int(peak.Load())
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// smallBuffers shrinks both socket buffers so a peer that does not read pushes back quickly.
func smallBuffers(peer, sess *net.TCPConn) {
	peer.SetReadBuffer(4 << 10)
	sess.SetWriteBuffer(4 << 10)
}

// TestHostilePingFlood: 100k pings from a peer that does not read. The receive loop keeps
// reading (the peer's writes complete), replies beyond the pong backlog are dropped and
// counted, goroutines and heap stay bounded, and once the peer reads again the session works.
func TestHostilePingFlood(t *testing.T) {
	s, p := hostileServer(t, nil)
	const n = 100_000
	flood := make([]byte, 0, n*12)
	for i := range n {
		flood = append(flood, rawHeader(0, uint8(typePing), flagSYN, 0, uint32(i))...)
	}
	base := runtime.NumGoroutine()
	heap0 := heapInUse()
	peak := goroutineCeiling(func() {
		for off := 0; off < len(flood); off += 64 << 10 {
			p.send(flood[off:min(off+64<<10, len(flood))])
		}
		// Every ping has been parsed once the frame counter covers them.
		waitFor(t, func() bool { return s.Stats().FramesReceived >= n })
	})
	if peak > base+32 {
		t.Errorf("goroutines rose from %d to %d during the flood", base, peak)
	}
	if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes during the flood", grown)
	}
	st := s.Stats()
	if st.PongsDropped == 0 {
		t.Errorf("PongsDropped = 0 after %d pings from a peer that does not read", n)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended by a ping flood: %v", err)
	}
	p.autoPong = true
	p.start()
	waitFor(t, func() bool { return p.pongs.Load()+int64(st.PongsDropped) >= n })
	if got := p.pongs.Load() + int64(s.Stats().PongsDropped); got != n {
		t.Errorf("pongs received %d + dropped %d = %d, want %d", p.pongs.Load(), s.Stats().PongsDropped, got, n)
	}
	checkLegitStream(t, s, p, 1)
	if _, err := s.Ping(testCtx(t, 5*time.Second)); err != nil {
		t.Fatalf("Ping after the flood: %v", err)
	}
}

// TestHostileSYNFlood: thousands of SYNs past AcceptBacklog and MaxIncomingStreams, with no
// Accept on the session and a peer that reads. Every extra SYN is refused with RST, no
// goroutine or heap grows, the backlog holds exactly the limit, and the session accepts legit
// streams after. "paced" writes the SYNs in bursts of 512 and reads the refusals in between;
// "burst" writes all of them back to back (60 KB of SYNs in one go) while reading.
func TestHostileSYNFlood(t *testing.T) {
	for _, tc := range []struct {
		name            string
		backlog, maxInc int
		burst           int // SYNs per write; the peer waits for their RSTs after each write
	}{
		{"paced-backlog", 16, 1024, 512},
		{"paced-max-incoming", 64, 16, 512},
		{"burst", 16, 1024, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hostileConfig()
			cfg.AcceptBacklog = tc.backlog
			cfg.MaxIncomingStreams = tc.maxInc
			s, p := hostileServer(t, cfg)
			p.start()
			limit := min(tc.backlog, tc.maxInc)
			const n = 5000
			base := runtime.NumGoroutine()
			heap0 := heapInUse()
			peak := goroutineCeiling(func() {
				var buf []byte
				for i := range n {
					// half with a data payload, half bare WindowUpdate SYNs
					if i%2 == 0 {
						buf = append(buf, rawHeader(0, uint8(typeData), flagSYN, uint32(2*i+1), 4)...)
						buf = append(buf, "junk"...)
					} else {
						buf = append(buf, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
					}
					if tc.burst > 0 && (i+1)%tc.burst == 0 {
						p.send(buf)
						buf = buf[:0]
						want := int64(max(0, i+1-limit))
						waitFor(t, func() bool { return p.rsts.Load() >= want })
					}
				}
				p.send(buf)
				waitFor(t, func() bool { return p.rsts.Load() >= n-int64(limit) || s.Err() != nil })
			})
			if err := s.Err(); err != nil {
				t.Fatalf("SYN flood ended the session: %v", err)
			}
			if peak > base+32 {
				t.Errorf("goroutines rose from %d to %d during the flood", base, peak)
			}
			if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
				t.Errorf("heap grew by %d bytes during the flood", grown)
			}
			if got := p.rsts.Load(); got != n-int64(limit) {
				t.Errorf("got %d RSTs, want %d", got, n-limit)
			}
			if got := s.Stats().StreamsRefused; got != uint64(n-limit) {
				t.Errorf("StreamsRefused = %d, want %d", got, n-limit)
			}
			if got := s.NumStreams(); got != limit {
				t.Errorf("NumStreams = %d, want %d", got, limit)
			}
			// The first `limit` streams were kept: accept them.
			for i := range limit {
				st := acceptOne(t, s)
				if st.ID() != uint32(2*i+1) {
					t.Fatalf("accepted stream %d, want %d", st.ID(), 2*i+1)
				}
				st.Reset()
			}
			waitFor(t, func() bool { return s.NumStreams() == 0 })
			p.drainFrames(50 * time.Millisecond)
			checkLegitStream(t, s, p, 2*n+1)
		})
	}
}

// TestHostileSYNFloodNoRead: a SYN flood from a peer that never reads the refusals. The
// receive loop slows the peer down while refusals queue up, and the session ends within about
// WriteTimeout with a defined error (*ProtocolError: refusals not read, or ErrWriteTimeout);
// goroutines stay bounded throughout.
func TestHostileSYNFloodNoRead(t *testing.T) {
	cfg := hostileConfig()
	cfg.AcceptBacklog = 4
	cfg.WriteTimeout = 500 * time.Millisecond
	s, p := hostileSession(t, cfg, false, smallBuffers)
	base := runtime.NumGoroutine()
	peak := goroutineCeiling(func() {
		var buf []byte
		for i := range 20000 {
			buf = append(buf, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
			if len(buf) >= 32<<10 {
				if p.trySend(buf) != nil {
					return // the session gave up on us
				}
				buf = buf[:0]
			}
		}
		p.trySend(buf)
	})
	if peak > base+32 {
		t.Errorf("goroutines rose from %d to %d during the flood", base, peak)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still up 5 s after a flood whose refusals are never read")
	}
	var pe *ProtocolError
	if err := s.Err(); !errors.As(err, &pe) && !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("session ended with %v, want a *ProtocolError or ErrWriteTimeout", err)
	}
}

// TestHostileWindowOverflow: WindowUpdate deltas that push the send window past 2^32-1 reset
// that stream (RST on the wire, ErrStreamReset locally); the session and other streams go on.
func TestHostileWindowOverflow(t *testing.T) {
	for _, deltas := range [][]uint32{
		{0xFFFFFFFF},
		{0x80000000, 0x80000000},
		{0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF},
	} {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		p.frame(typeWindowUpdate, flagSYN, 3, nil) // a bystander stream
		st1 := acceptOne(t, s)
		st3 := acceptOne(t, s)
		for _, d := range deltas {
			p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, d))
		}
		f := p.expect(5*time.Second, "RST for stream 1", isRST(1))
		if f.typ != typeWindowUpdate {
			t.Errorf("RST came on a %v frame", f.typ)
		}
		st1.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := st1.Write([]byte("x")); !errors.Is(err, ErrStreamReset) {
			t.Errorf("deltas %#x: Write on the overflowed stream = %v, want ErrStreamReset", deltas, err)
		}
		if _, err := st1.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Errorf("deltas %#x: Read on the overflowed stream = %v, want ErrStreamReset", deltas, err)
		}
		// stream 3 still works both ways
		p.frame(typeData, 0, 3, []byte("ping3"))
		buf := make([]byte, 5)
		st3.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(st3, buf); err != nil || string(buf) != "ping3" {
			t.Fatalf("bystander read %q, %v", buf, err)
		}
		if _, err := st3.Write([]byte("pong3")); err != nil {
			t.Fatal(err)
		}
		p.expect(5*time.Second, "bystander data", func(f rawFrame) bool { return f.typ == typeData && f.id == 3 })
		if err := s.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	}
}

// TestHostileDataBeyondWindow: a Data frame larger than the granted window resets only that
// stream; its payload is skipped so the next frame parses correctly.
func TestHostileDataBeyondWindow(t *testing.T) {
	t.Run("one-frame", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeData, flagSYN, 1, make([]byte, initialWindow+1))
		p.expect(5*time.Second, "RST for stream 1", isRST(1))
		// The stream reached the backlog before its data overflowed: it reads as reset.
		st := acceptOne(t, s)
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if st.ID() != 1 {
			t.Fatalf("accepted stream %d, want 1", st.ID())
		}
		if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("Read on the overflowed stream: %v, want ErrStreamReset", err)
		}
		// The 256 KiB+1 payload was skipped exactly: this frame right behind it works.
		checkLegitStream(t, s, p, 3)
	})
	t.Run("cumulative", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeData, flagSYN, 1, make([]byte, initialWindow-10))
		st := acceptOne(t, s)
		// Nothing read yet, so no window was given back: 11 more bytes overflow it.
		p.frame(typeData, 0, 1, make([]byte, 11))
		p.expect(5*time.Second, "RST for stream 1", isRST(1))
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, st); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("reading the overflowed stream: %v, want ErrStreamReset", err)
		}
		var se *StreamError
		if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) || se.Remote {
			t.Fatalf("stream error %v, want a local *StreamError", err)
		}
		checkLegitStream(t, s, p, 3)
	})
}

// TestHostileFatalFrames: frames that break the protocol beyond one stream end the session
// with GoAway(1) on the wire and a *ProtocolError as Err().
func TestHostileFatalFrames(t *testing.T) {
	cases := []struct {
		name   string
		frames [][]byte
	}{
		{"duplicate-SYN", [][]byte{
			rawHeader(0, uint8(typeWindowUpdate), flagSYN, 1, 0),
			rawHeader(0, uint8(typeWindowUpdate), flagSYN, 1, 0),
		}},
		{"duplicate-SYN-data", [][]byte{
			rawHeader(0, uint8(typeData), flagSYN, 1, 3), []byte("abc"),
			rawHeader(0, uint8(typeData), flagSYN, 1, 3), []byte("abc"),
		}},
		{"wrong-parity-SYN", [][]byte{rawHeader(0, uint8(typeWindowUpdate), flagSYN, 2, 0)}},
		{"unknown-type", [][]byte{rawHeader(0, 4, 0, 1, 0)}},
		{"type-255", [][]byte{rawHeader(0, 255, flagSYN, 0, 0)}},
		{"bad-version", [][]byte{rawHeader(1, uint8(typePing), flagSYN, 0, 7)}},
		{"ping-on-stream", [][]byte{rawHeader(0, uint8(typePing), flagSYN, 5, 7)}},
		{"goaway-on-stream", [][]byte{rawHeader(0, uint8(typeGoAway), 0, 5, 0)}},
		{"data-on-stream-0", [][]byte{rawHeader(0, uint8(typeData), 0, 0, 3), []byte("abc")}},
		{"window-update-on-stream-0", [][]byte{rawHeader(0, uint8(typeWindowUpdate), 0, 0, 100)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, p := hostileServer(t, nil)
			p.start()
			p.send(tc.frames...)
			expectProtocolError(t, s, p)
		})
	}
	t.Run("wrong-parity-SYN-at-client", func(t *testing.T) {
		s, p := hostileSession(t, nil, true, nil)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 7, nil) // the server side must use even IDs
		expectProtocolError(t, s, p)
	})
}

// TestHostileHugeDataUnknownStream: a Data frame for a stream that does not exist, announcing
// almost 4 GiB, followed by the peer closing. The session skips the payload without buffering
// it and ends with a connection error (not a protocol error) when the peer hangs up.
func TestHostileHugeDataUnknownStream(t *testing.T) {
	for _, flags := range []uint16{0, flagSYN} {
		s, p := hostileServer(t, nil)
		p.start()
		heap0 := heapInUse()
		p.send(rawHeader(0, uint8(typeData), flags, 99, 0xFFFFFFF0), make([]byte, 1<<20))
		waitFor(t, func() bool { return s.Stats().FramesReceived >= 1 })
		time.Sleep(50 * time.Millisecond)
		if grown := int64(heapInUse()) - int64(heap0); grown > 4<<20 {
			t.Errorf("heap grew by %d bytes while skipping a huge payload", grown)
		}
		if flags&flagSYN != 0 {
			p.expect(5*time.Second, "RST for stream 99", isRST(99))
		}
		if err := s.Err(); err != nil {
			t.Fatalf("session ended before the peer hung up: %v", err)
		}
		p.conn.Close()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("session still running after the peer hung up")
		}
		var pe *ProtocolError
		if err := s.Err(); errors.As(err, &pe) || !errors.Is(err, ErrSessionClosed) {
			t.Fatalf("session error %v, want a connection error", err)
		}
	}
}

// TestHostileFINTwice: a second FIN on a half-closed stream is ignored (hashicorp/yamux would
// end the session); the stream's data and EOF are delivered once and the session goes on.
func TestHostileFINTwice(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeData, flagSYN|flagFIN, 1, []byte("once"))
	p.frame(typeWindowUpdate, flagFIN, 1, nil)
	p.frame(typeData, flagFIN, 1, nil)
	st := acceptOne(t, s)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "once" {
		t.Fatalf("read %q, %v", got, err)
	}
	p.expectNone(200*time.Millisecond, "RST or GoAway", func(f rawFrame) bool { return f.typ == typeGoAway || f.flags&flagRST != 0 })
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
	if _, err := st.Write([]byte("still open")); err != nil {
		t.Fatalf("write on the half-closed stream: %v", err)
	}
	st.Close()
	p.expect(5*time.Second, "our FIN", func(f rawFrame) bool { return f.id == 1 && f.flags&flagFIN != 0 })
	waitFor(t, func() bool { return s.NumStreams() == 0 })
	checkLegitStream(t, s, p, 3)
}

// TestHostileDataAfterFIN: data after the peer's own FIN resets the stream (RST), the data
// before the FIN stays readable up to the reset, and the session goes on.
func TestHostileDataAfterFIN(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeData, flagSYN|flagFIN, 1, []byte("done"))
	st := acceptOne(t, s)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(st, got); err != nil || string(got) != "done" {
		t.Fatalf("read %q, %v", got, err)
	}
	p.frame(typeData, 0, 1, []byte("more after FIN"))
	p.expect(5*time.Second, "RST for stream 1", isRST(1))
	if _, err := st.Read(make([]byte, 10)); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("Read after the peer's data-after-FIN: %v, want ErrStreamReset", err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
	checkLegitStream(t, s, p, 3)
}

// TestHostileDataAfterClose: data arriving after our full Close is answered with RST so the
// writer learns promptly; the session goes on.
func TestHostileDataAfterClose(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeData, flagSYN, 1, []byte("hello"))
	st := acceptOne(t, s)
	st.Close()
	p.expect(5*time.Second, "FIN for stream 1", func(f rawFrame) bool { return f.id == 1 && f.flags&flagFIN != 0 })
	p.frame(typeData, 0, 1, []byte("nobody reads this"))
	p.expect(5*time.Second, "RST for stream 1", isRST(1))
	waitFor(t, func() bool { return s.NumStreams() == 0 })
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
	checkLegitStream(t, s, p, 3)
}

// TestHostileNeverACK: a peer that reads our SYN but never ACKs it. The stream alone fails with
// ErrStreamReset after StreamOpenTimeout (an RST goes out); the session stays up and a stream
// the peer does ACK works.
func TestHostileNeverACK(t *testing.T) {
	cfg := hostileConfig()
	cfg.StreamOpenTimeout = 300 * time.Millisecond
	s, p := hostileServer(t, cfg)
	p.start()
	ctx := testCtx(t, 5*time.Second)
	st, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID()%2 != 0 {
		t.Fatalf("server opened odd ID %d", st.ID())
	}
	if _, err := st.Write([]byte("0-RTT data")); err != nil {
		t.Fatalf("0-RTT write: %v", err)
	}
	p.expect(5*time.Second, "SYN", func(f rawFrame) bool { return f.id == st.ID() && f.flags&flagSYN != 0 })
	start := time.Now()
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = st.Read(make([]byte, 1))
	if !errors.Is(err, ErrStreamReset) {
		t.Fatalf("Read on the un-ACKed stream: %v, want ErrStreamReset", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("open timeout took %v", d)
	}
	p.expect(5*time.Second, "RST", isRST(st.ID()))
	if err := s.Err(); err != nil {
		t.Fatalf("session ended with the stream: %v", err)
	}
	waitFor(t, func() bool { return s.NumStreams() == 0 })

	// A stream the peer ACKs is not touched by the timer.
	st2, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.expect(5*time.Second, "SYN", func(f rawFrame) bool { return f.id == st2.ID() && f.flags&flagSYN != 0 })
	p.frame(typeWindowUpdate, flagACK, st2.ID(), nil)
	time.Sleep(2 * cfg.StreamOpenTimeout)
	p.frame(typeData, 0, st2.ID(), []byte("late but fine"))
	buf := make([]byte, 13)
	st2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(st2, buf); err != nil || string(buf) != "late but fine" {
		t.Fatalf("ACKed stream read %q, %v", buf, err)
	}
	st2.Reset()
}

// TestHostileNeverReads: a peer that grants a huge window and then stops reading. Our Write
// blocks until WriteTimeout ends the session with an error that is a net.Error with
// Timeout() true, and the blocked Write returns it.
func TestHostileNeverReads(t *testing.T) {
	cfg := hostileConfig()
	cfg.WriteTimeout = 500 * time.Millisecond
	s, p := hostileSession(t, cfg, false, smallBuffers)
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	p.frame(typeWindowUpdate, 0, 1, []byte{}) // no-op
	p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 64<<20))
	waitFor(t, func() bool { return s.Stats().FramesReceived >= 3 })
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(make([]byte, 32<<20))
		werr <- err
	}()
	var err error
	select {
	case err = <-werr:
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked 5 s after the peer stopped reading")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Write returned after %v with WriteTimeout %v", d, cfg.WriteTimeout)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write error %v, want a net.Error with Timeout()", err)
	}
	<-s.Done()
	serr := s.Err()
	if !errors.Is(serr, ErrWriteTimeout) || !errors.As(serr, &ne) || !ne.Timeout() {
		t.Fatalf("session error %v, want ErrWriteTimeout as a timeout net.Error", serr)
	}
}

// TestHostileKeepAlive: a silent peer is cut off within interval + timeout with
// ErrKeepAliveTimeout; a peer that keeps sending data (and never answers pings) is not.
func TestHostileKeepAlive(t *testing.T) {
	const interval, timeout = 300 * time.Millisecond, 400 * time.Millisecond
	cfg := func() *Config {
		c := hostileConfig()
		c.EnableKeepAlive = true
		c.KeepAliveInterval = interval
		c.KeepAliveTimeout = timeout
		return c
	}
	t.Run("silent", func(t *testing.T) {
		start := time.Now()
		s, p := hostileServer(t, cfg())
		p.start()
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("silent peer not cut off")
		}
		d := time.Since(start)
		if d < interval+timeout-50*time.Millisecond || d > interval+timeout+time.Second {
			t.Errorf("silent peer cut off after %v, want about %v", d, interval+timeout)
		}
		if err := s.Err(); !errors.Is(err, ErrKeepAliveTimeout) || !errors.Is(err, ErrSessionClosed) {
			t.Fatalf("session error %v, want ErrKeepAliveTimeout", err)
		}
		var ne net.Error
		if !errors.As(s.Err(), &ne) || !ne.Timeout() {
			t.Errorf("keepalive error %v is not a timeout net.Error", s.Err())
		}
		p.expect(5*time.Second, "keepalive ping", func(f rawFrame) bool { return f.typ == typePing && f.flags&flagSYN != 0 })
	})
	t.Run("busy", func(t *testing.T) {
		s, p := hostileServer(t, cfg())
		p.start() // never answers pings
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		st := acceptOne(t, s)
		var got atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			n, _ := io.Copy(io.Discard, st)
			got.Store(n)
		}()
		deadline := time.Now().Add(4 * (interval + timeout))
		sent := 0
		for time.Now().Before(deadline) {
			p.frame(typeData, 0, 1, []byte("tick"))
			sent += 4
			time.Sleep(50 * time.Millisecond)
			if err := s.Err(); err != nil {
				t.Fatalf("busy peer cut off after %d bytes: %v", sent, err)
			}
		}
		p.frame(typeWindowUpdate, flagFIN, 1, nil)
		<-done
		if got.Load() != int64(sent) {
			t.Errorf("read %d of %d bytes", got.Load(), sent)
		}
		if err := s.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// TestHostileKeepAliveSlowFrame: a peer that sends one large Data frame slowly but steadily
// (1 KiB every 25 ms, 64 KiB in all, about 1.6 s at interval 300 ms + timeout 500 ms) is alive:
// bytes keep arriving, only the frame is long. The session must not end with
// ErrKeepAliveTimeout, and the frame's bytes must all reach the reader.
func TestHostileKeepAliveSlowFrame(t *testing.T) {
	cfg := hostileConfig()
	cfg.EnableKeepAlive = true
	cfg.KeepAliveInterval = 300 * time.Millisecond
	cfg.KeepAliveTimeout = 500 * time.Millisecond
	s, p := hostileServer(t, cfg)
	p.start()
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, st)
		got <- n
	}()
	p.send(rawHeader(0, uint8(typeData), 0, 1, 64<<10))
	for i := range 64 {
		p.send(make([]byte, 1024))
		time.Sleep(25 * time.Millisecond)
		if err := s.Err(); err != nil {
			t.Fatalf("session ended after %d KiB of a steadily arriving frame: %v", i+1, err)
		}
	}
	p.frame(typeWindowUpdate, flagFIN, 1, nil)
	select {
	case n := <-got:
		if n != 64<<10 {
			t.Fatalf("read %d bytes, want %d", n, 64<<10)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not reach EOF")
	}
}

// TestHostileOthersUnaffected: while one session is flooded and then broken by a protocol
// violation, two other sessions in the same process keep moving checksummed data.
func TestHostileOthersUnaffected(t *testing.T) {
	type pair struct{ c, s *Session }
	var pairs []pair
	for range 2 {
		c, s := sessionPair(t, nil, nil)
		pairs = append(pairs, pair{c, s})
	}
	ctx := testCtx(t, 20*time.Second)
	stop := make(chan struct{})
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	rounds := make([]atomic.Int64, len(pairs))
	for i, pr := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- echoRounds(ctx, pr.c, pr.s, uint64(i), stop, &rounds[i])
		}()
	}

	victim, p := hostileSession(t, nil, false, smallBuffers)
	var flood []byte
	for i := range 5000 {
		flood = append(flood, rawHeader(0, uint8(typePing), flagSYN, 0, uint32(i))...)
		flood = append(flood, rawHeader(0, uint8(typeWindowUpdate), flagSYN, uint32(2*i+1), 0)...)
	}
	p.start()
	p.send(flood)
	p.frame(typeWindowUpdate, flagSYN, 1, nil) // duplicate: fatal
	select {
	case <-victim.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("victim session survived a duplicate SYN")
	}
	for i := range rounds { // each pair completes three more rounds after the victim's end
		after := rounds[i].Load() + 3
		waitFor(t, func() bool { return rounds[i].Load() >= after })
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	for i, pr := range pairs {
		if pr.c.Err() != nil || pr.s.Err() != nil {
			t.Errorf("pair %d ended: %v / %v", i, pr.c.Err(), pr.s.Err())
		}
	}
}

// echoRounds opens streams on c, has s echo them, and checks each echo until stop closes;
// it returns the first mismatch or error. It counts completed rounds in done, and goes on
// past stop until at least three have completed.
func echoRounds(ctx context.Context, c, s *Session, seed uint64, stop chan struct{}, done *atomic.Int64) error {
	go func() {
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				io.Copy(st, st)
				st.Close()
			}()
		}
	}()
	rounds := 0
	for i := uint64(0); ; i++ {
		select {
		case <-stop:
			if rounds >= 3 { // at least a few rounds, however slow the machine
				return nil
			}
		default:
		}
		data := randomBytes(int(32<<10+i%1000), seed<<32|i)
		st, err := c.Open(ctx)
		if err != nil {
			return err
		}
		go func() {
			st.Write(data)
			st.CloseWrite()
		}()
		got, err := io.ReadAll(st)
		st.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return errors.New("echo mismatch")
		}
		rounds++
		done.Add(1)
	}
}

// TestHostileGoAway: after our GoAway (code 0 on the wire) a SYN is refused with RST while an
// existing stream goes on; a peer's GoAway 0 stops our Opens only; a peer's GoAway 2 ends the
// session with a remote *GoAwayError carrying the code.
func TestHostileGoAway(t *testing.T) {
	t.Run("ours-then-SYN", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeData, flagSYN, 1, []byte("early"))
		st := acceptOne(t, s)
		if err := s.GoAway(); err != nil {
			t.Fatal(err)
		}
		f := p.expect(5*time.Second, "GoAway", isGoAway)
		if f.length != GoAwayNormal {
			t.Fatalf("GoAway code %d, want 0", f.length)
		}
		p.frame(typeData, flagSYN, 3, []byte("too late"))
		p.expect(5*time.Second, "RST for stream 3", isRST(3))
		p.frame(typeData, flagFIN, 1, []byte(" and more"))
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(st); err != nil || string(got) != "early and more" {
			t.Fatalf("existing stream read %q, %v", got, err)
		}
		if s.Err() != nil || s.Stats().StreamsRefused != 1 {
			t.Fatalf("session err %v, refused %d", s.Err(), s.Stats().StreamsRefused)
		}
	})
	t.Run("theirs-0", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.send(rawHeader(0, uint8(typeGoAway), 0, 0, GoAwayNormal))
		waitFor(t, func() bool { return s.Stats().FramesReceived >= 1 })
		if _, err := s.Open(testCtx(t, time.Second)); !errors.Is(err, ErrRemoteGoAway) {
			t.Fatalf("Open after the peer's GoAway: %v", err)
		}
		if s.Err() != nil {
			t.Fatalf("GoAway 0 ended the session: %v", s.Err())
		}
		checkLegitStream(t, s, p, 1)
	})
	t.Run("theirs-2", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.send(rawHeader(0, uint8(typeGoAway), 0, 0, GoAwayInternalError))
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("GoAway 2 did not end the session")
		}
		var ge *GoAwayError
		if err := s.Err(); !errors.As(err, &ge) || ge.Code != GoAwayInternalError || !ge.Remote {
			t.Fatalf("session error %v, want a remote *GoAwayError code 2", err)
		}
	})
}

// TestHostileMemoryBudget: a peer that opens streams and fills every window while the
// application never reads. Each stream reserves its 256 KiB window from MaxSessionMemory; once
// the budget is spent, further SYNs are refused with RST, so buffered data never exceeds the
// budget; reading and closing the streams returns the memory and new streams work again.
func TestHostileMemoryBudget(t *testing.T) {
	cfg := hostileConfig()
	cfg.MaxSessionMemory = 4 * initialWindow
	s, p := hostileServer(t, cfg)
	p.start()
	heap0 := heapInUse()
	full := make([]byte, initialWindow)
	for i := range 10 {
		id := uint32(2*i + 1)
		p.frame(typeData, flagSYN, id, full)
	}
	for i := 4; i < 10; i++ {
		p.expect(5*time.Second, "RST for a stream past the budget", isRST(uint32(2*i+1)))
	}
	waitFor(t, func() bool { return s.Stats().BytesReceived >= 10*initialWindow })
	st := s.Stats()
	if st.MemoryReserved > st.MemoryLimit || st.StreamsRefused != 6 || st.Streams != 4 {
		t.Fatalf("reserved %d of %d, refused %d, streams %d; want within budget, 6 refused, 4 live",
			st.MemoryReserved, st.MemoryLimit, st.StreamsRefused, st.Streams)
	}
	if grown := int64(heapInUse()) - int64(heap0); grown > int64(cfg.MaxSessionMemory)+4<<20 {
		t.Errorf("heap grew by %d bytes with a %d-byte budget", grown, cfg.MaxSessionMemory)
	}
	// One more byte on a full stream is beyond its window: RST, not buffered.
	p.frame(typeData, 0, 1, []byte("x"))
	p.expect(5*time.Second, "RST for stream 1", isRST(1))
	// The backlog holds streams 1..7: read the live ones in full, then close them all.
	for range 4 {
		a := acceptOne(t, s)
		if a.ID() == 1 {
			a.Close()
			continue
		}
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.ReadFull(a, make([]byte, initialWindow)); err != nil {
			t.Fatalf("stream %d: read %d: %v", a.ID(), n, err)
		}
		a.Close()
		p.frame(typeWindowUpdate, flagFIN, a.ID(), nil)
	}
	waitFor(t, func() bool { return s.NumStreams() == 0 && s.Stats().MemoryReserved == 0 })
	checkLegitStream(t, s, p, 101)
}

// TestHostileUnACKedBacklog: when AcceptBacklog of our opened streams wait for an ACK that
// never comes, Open waits (bounded by its ctx) instead of sending more SYNs the peer would
// refuse; when the open timeouts reset them, Open proceeds again.
func TestHostileUnACKedBacklog(t *testing.T) {
	cfg := hostileConfig()
	cfg.AcceptBacklog = 4
	cfg.StreamOpenTimeout = 400 * time.Millisecond
	s, p := hostileServer(t, cfg)
	p.start()
	for range 4 {
		if _, err := s.Open(testCtx(t, time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Open(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open past the un-ACKed backlog: %v, want to wait until ctx ends", err)
	}
	start := time.Now()
	st, err := s.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Open after the open timeouts: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open waited %v", d)
	}
	reset := map[uint32]bool{}
	for len(reset) < 4 { // the timers fire in any order
		f := p.expect(5*time.Second, "RSTs for the timed-out opens", func(f rawFrame) bool { return f.flags&flagRST != 0 })
		if f.id > 8 || f.id%2 != 0 {
			t.Fatalf("RST for stream %d", f.id)
		}
		reset[f.id] = true
	}
	p.frame(typeData, flagACK, st.ID(), []byte("ack with data"))
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 13)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ack with data" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}

// TestHostileRSTBeforeACK: the peer refuses a stream we opened (RST instead of ACK): our Read
// and Write fail with a remote *StreamError, the stream is freed, the session goes on.
func TestHostileRSTBeforeACK(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	st, err := s.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p.expect(5*time.Second, "SYN", func(f rawFrame) bool { return f.id == st.ID() && f.flags&flagSYN != 0 })
	p.frame(typeWindowUpdate, flagRST, st.ID(), nil)
	st.SetDeadline(time.Now().Add(5 * time.Second))
	var se *StreamError
	if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) || !se.Remote || !errors.Is(err, ErrStreamReset) {
		t.Fatalf("Read on a refused stream: %v, want a remote *StreamError", err)
	}
	waitFor(t, func() bool { return s.NumStreams() == 0 }) // the refused stream is freed: it leaves the table
	if _, err := st.Write([]byte("x")); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("Write on a refused stream: %v", err)
	}
	if s.Stats().ResetsReceived != 1 || s.Err() != nil {
		t.Fatalf("resets %d, err %v", s.Stats().ResetsReceived, s.Err())
	}
	checkLegitStream(t, s, p, 1)
}

// TestHostileRSTWithLength: Length on an RST frame is not a window delta (libp2p/go-yamux v5
// puts a stream error code there): the stream reads as reset by the peer, and no RST is sent
// back in answer to the peer's RST, whatever the Length.
func TestHostileRSTWithLength(t *testing.T) {
	for _, length := range []uint32{7, 0xFFFFFFFF} {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		st := acceptOne(t, s)
		p.send(rawHeader(0, uint8(typeWindowUpdate), flagRST, 1, length))
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		var se *StreamError
		if _, err := st.Read(make([]byte, 1)); !errors.As(err, &se) || !se.Remote {
			t.Fatalf("length %#x: Read after the peer's RST: %v, want a remote *StreamError", length, err)
		}
		p.expectNone(200*time.Millisecond, "RST in answer to an RST", isRST(1))
		if s.Err() != nil || s.NumStreams() != 0 {
			t.Fatalf("length %#x: session err %v, streams %d", length, s.Err(), s.NumStreams())
		}
	}
}

// TestHostileTinyFrames: 100k one-byte Data frames on one stream that nobody reads (within
// the 256 KiB window). Buffering must cost about the bytes, not a buffer per frame: heap growth
// stays far below 100k × any chunk size, and every byte reads back in order.
func TestHostileTinyFrames(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	const n = 100_000
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	heap0 := heapInUse()
	buf := make([]byte, 0, n*13)
	for i := range n {
		buf = append(buf, rawHeader(0, uint8(typeData), 0, 1, 1)...)
		buf = append(buf, byte(i))
	}
	p.send(buf)
	waitFor(t, func() bool { return s.Stats().BytesReceived >= n })
	if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes buffering %d one-byte frames", grown, n)
	}
	got := make([]byte, n)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(st, got); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got[i] != byte(i) {
			t.Fatalf("byte %d = %d, want %d", i, got[i], byte(i))
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// TestHostileNeverFINs: we Close a stream and the peer never sends its FIN; after
// StreamCloseTimeout the stream alone is reset (RST on the wire) and forgotten, its memory
// returned; the session goes on.
func TestHostileNeverFINs(t *testing.T) {
	cfg := hostileConfig()
	cfg.StreamCloseTimeout = 300 * time.Millisecond
	s, p := hostileServer(t, cfg)
	p.start()
	p.frame(typeData, flagSYN, 1, []byte("unread"))
	st := acceptOne(t, s)
	start := time.Now()
	st.Close()
	p.expect(5*time.Second, "FIN", func(f rawFrame) bool { return f.id == 1 && f.flags&flagFIN != 0 })
	p.expect(5*time.Second, "RST after the close timeout", isRST(1))
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("RST after %v, want about %v", d, cfg.StreamCloseTimeout)
	}
	waitFor(t, func() bool { return s.NumStreams() == 0 && s.Stats().MemoryReserved == 0 })
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	checkLegitStream(t, s, p, 3)
}

// TestHostileZeroWindowDeadline: the peer never grants window beyond the initial 256 KiB. A
// Write of more blocks, its write deadline ends it with a timeout net.Error matching
// os.ErrDeadlineExceeded and the count written so far; the stream and session stay usable.
func TestHostileZeroWindowDeadline(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	st.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := st.Write(make([]byte, initialWindow+1000))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the window: %v, want a timeout", err)
	}
	if n != initialWindow {
		t.Fatalf("Write reported %d bytes written, want the window %d", n, initialWindow)
	}
	// Window arrives: the stream goes on after the deadline is cleared.
	st.SetWriteDeadline(time.Time{})
	p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 1000))
	if _, err := st.Write(make([]byte, 1000)); err != nil {
		t.Fatalf("Write after window update: %v", err)
	}
	total := 0
	for total < initialWindow+1000 {
		f := p.expect(5*time.Second, "data", func(f rawFrame) bool { return f.typ == typeData && f.id == 1 })
		total += len(f.payload)
	}
	if total != initialWindow+1000 || s.Err() != nil {
		t.Fatalf("peer got %d bytes, session err %v", total, s.Err())
	}
}

// TestHostileStreamChurn: 20k streams opened and torn down at once by the peer (SYN with data
// then RST, or SYN|FIN with data then our Close), with the application accepting them all.
// The stream table, the memory reservation and the goroutine count all return to where they
// started; nothing is retained per dead stream.
func TestHostileStreamChurn(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	ctx := testCtx(t, 30*time.Second)
	const n = 20000
	var accepted atomic.Int64
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for accepted.Load() < n {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				t.Errorf("AcceptStream after %d: %v (stats %+v)", accepted.Load(), err, s.Stats())
				return
			}
			st.Close()
			accepted.Add(1)
		}
	}()
	base := runtime.NumGoroutine()
	heap0 := heapInUse()
	peak := goroutineCeiling(func() {
		var buf []byte
		for i := range n {
			id := uint32(2*i + 1)
			if i%2 == 0 {
				buf = append(buf, rawHeader(0, uint8(typeData), flagSYN, id, 3)...)
				buf = append(buf, "abc"...)
				buf = append(buf, rawHeader(0, uint8(typeWindowUpdate), flagRST, id, 0)...)
			} else {
				buf = append(buf, rawHeader(0, uint8(typeData), flagSYN|flagFIN, id, 3)...)
				buf = append(buf, "xyz"...)
			}
			if i%64 == 63 {
				p.send(buf)
				buf = buf[:0]
				// stay within the accept backlog (256) so nothing is refused
				waitFor(t, func() bool { return int64(i)-accepted.Load() <= 128 })
			}
		}
		p.send(buf)
		select {
		case <-acceptDone:
		case <-time.After(20 * time.Second):
			t.Fatalf("accepted %d of %d streams", accepted.Load(), n)
		}
	})
	waitFor(t, func() bool { return s.NumStreams() == 0 && s.Stats().MemoryReserved == 0 })
	if peak > base+32 {
		t.Errorf("goroutines rose from %d to %d", base, peak)
	}
	if grown := int64(heapInUse()) - int64(heap0); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes over %d dead streams", grown, n)
	}
	if st := s.Stats(); st.StreamsRefused != 0 || st.StreamsAccepted != n || s.Err() != nil {
		t.Fatalf("refused %d, accepted %d, err %v", st.StreamsRefused, st.StreamsAccepted, s.Err())
	}
	p.drainFrames(100 * time.Millisecond)
	checkLegitStream(t, s, p, 2*n+1)
}

// TestHostileFINAfterBlockedWrite: CloseWrite while a Write waits for window. On the wire, no
// FIN may appear until every byte of that Write went out: the FIN rides on (or follows) the
// last Data frame, after the peer grants the window.
func TestHostileFINAfterBlockedWrite(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	const size = initialWindow + 44<<10
	want := randomBytes(size, 77)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(want)
		werr <- err
	}()
	got := 0
	var wire []byte
	sawFIN := false
	take := func(limit int, d time.Duration) {
		for got < limit {
			f := p.expect(d, "data", func(f rawFrame) bool { return f.id == 1 && (f.typ == typeData || f.flags&flagFIN != 0) })
			if sawFIN {
				t.Fatalf("frame after FIN: %+v", f)
			}
			got += len(f.payload)
			wire = append(wire, f.payload...)
			if f.flags&flagFIN != 0 {
				sawFIN = true
				if got != size {
					t.Fatalf("FIN after %d of %d bytes", got, size)
				}
			}
		}
	}
	take(initialWindow, 5*time.Second) // the whole initial window
	waitFor(t, func() bool { return writeWaitsForWindow(s, st) })
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	p.expectNone(200*time.Millisecond, "FIN or data without window", func(f rawFrame) bool { return f.id == 1 })
	p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 1<<20))
	take(size, 5*time.Second)
	if !sawFIN {
		p.expect(5*time.Second, "FIN", func(f rawFrame) bool { return f.id == 1 && f.flags&flagFIN != 0 })
	}
	if err := <-werr; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(wire, want) {
		t.Fatal("bytes on the wire differ from the bytes written")
	}
}

// writeWaitsForWindow reports whether st's Write has used up the peer's window and waits for more.
func writeWaitsForWindow(s *Session, st *Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.sendWindow == 0 && len(st.wbuf) > 0
}

// readWaits reports whether a Read of st waits for data: counted as a waiter while another
// reads the connection, or reading it itself.
func readWaits(s *Session, st *Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.rwaits > 0 || s.rt.holder == st
}

// TestHostileNoFramesAfterRST: once an RST went either way, nothing more is sent for that
// stream: accepting a backlogged stream that the peer already reset, or that we reset for a
// flow-control violation, must not send an ACK for it (hashicorp/yamux logs a WARN for every
// frame on a stream it no longer knows).
func TestHostileNoFramesAfterRST(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeData, flagSYN, 1, []byte("x"))
	p.frame(typeWindowUpdate, flagRST, 1, nil)
	waitFor(t, func() bool { return s.Stats().ResetsReceived == 1 })
	st := acceptOne(t, s)
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("Read on a stream reset before Accept: %v", err)
	}
	p.expectNone(300*time.Millisecond, "frame for a stream the peer reset", func(f rawFrame) bool { return f.id == 1 })

	p.frame(typeData, flagSYN, 3, make([]byte, initialWindow+1))
	p.expect(5*time.Second, "RST", isRST(3))
	acceptOne(t, s)
	p.expectNone(300*time.Millisecond, "frame after our RST", func(f rawFrame) bool { return f.id == 3 })
}

// TestHostileWindowOnSYNAndACK: a window delta carried by the peer's SYN (a stream it opens)
// or by its ACK (a stream we open) is credit like any other: exactly 256 KiB + delta can be
// written before the Write waits, in frames of at most 64 KiB.
func TestHostileWindowOnSYNAndACK(t *testing.T) {
	const delta = 768 << 10
	for _, weOpen := range []bool{false, true} {
		s, p := hostileServer(t, nil)
		p.start()
		var st *Stream
		if weOpen {
			var err error
			if st, err = s.Open(testCtx(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			p.expect(5*time.Second, "SYN", func(f rawFrame) bool { return f.id == st.ID() && f.flags&flagSYN != 0 })
			p.send(rawHeader(0, uint8(typeWindowUpdate), flagACK, st.ID(), delta))
		} else {
			p.send(rawHeader(0, uint8(typeWindowUpdate), flagSYN, 1, delta))
			st = acceptOne(t, s)
		}
		waitFor(t, func() bool { // the delta is credited
			s.mu.Lock()
			defer s.mu.Unlock()
			return st.sendWindow == initialWindow+delta
		})
		st.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := st.Write(make([]byte, initialWindow+delta+1))
		if !errors.Is(err, ErrTimeout) || n != initialWindow+delta {
			t.Fatalf("weOpen=%v: Write = %d, %v; want %d then a timeout", weOpen, n, err, initialWindow+delta)
		}
		got := 0
		for got < n {
			f := p.expect(5*time.Second, "data", func(f rawFrame) bool { return f.typ == typeData && f.id == st.ID() })
			if len(f.payload) > maxDataFrame {
				t.Fatalf("Data frame of %d bytes, above %d", len(f.payload), maxDataFrame)
			}
			got += len(f.payload)
		}
		if got != n {
			t.Fatalf("peer got %d bytes, want %d", got, n)
		}
	}
}

// TestHostileHangUpAfterRequests: the peer sends complete requests (SYN, data, FIN) and one
// incomplete one, then hangs up before anything is accepted. The backlog is still handed out
// after the session ended: complete streams read their data and then io.EOF (the peer did send
// FIN), the incomplete one reads its data and then the session's error, never io.EOF.
func TestHostileHangUpAfterRequests(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	for i := range 3 {
		p.frame(typeData, flagSYN, uint32(2*i+1), randomBytes(1000+i, uint64(i)))
		p.frame(typeWindowUpdate, flagFIN, uint32(2*i+1), nil)
	}
	p.frame(typeData, flagSYN, 7, []byte("no FIN"))
	waitFor(t, func() bool { return s.Stats().FramesReceived >= 7 })
	p.conn.Close()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still up after the peer hung up")
	}
	for i := range 3 {
		st := acceptOne(t, s)
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, randomBytes(1000+i, uint64(i))) {
			t.Fatalf("stream %d after the hang-up: %d bytes, %v", st.ID(), len(got), err)
		}
	}
	st := acceptOne(t, s)
	got, err := io.ReadAll(st)
	if string(got) != "no FIN" || err == nil || !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("incomplete stream: %q, %v; want its data, then the session's error", got, err)
	}
	if _, err := s.AcceptStream(testCtx(t, time.Second)); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("AcceptStream with an empty backlog after the end: %v", err)
	}
}

// TestHostileStreamIDEdges: the highest IDs work on the wire in both directions, and this
// side stops opening (ErrStreamsExhausted) rather than wrapping around to reuse IDs.
func TestHostileStreamIDEdges(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	// The peer (client) opens the largest odd ID.
	p.frame(typeData, flagSYN|flagFIN, 0xFFFFFFFF, []byte("top"))
	st := acceptOne(t, s)
	if got, err := io.ReadAll(st); st.ID() != 0xFFFFFFFF || string(got) != "top" || err != nil {
		t.Fatalf("stream %#x read %q, %v", st.ID(), got, err)
	}
	st.Close()
	// This side (server, even IDs) near the end of its ID space.
	s.mu.Lock()
	s.nextID = 1<<32 - 6
	s.mu.Unlock()
	ctx := testCtx(t, 5*time.Second)
	for _, want := range []uint32{1<<32 - 6, 1<<32 - 4} {
		st, err := s.Open(ctx)
		if err != nil || st.ID() != want {
			t.Fatalf("Open near the end: %v, %v; want ID %#x", st, err, want)
		}
		p.expect(5*time.Second, "SYN", func(f rawFrame) bool { return f.id == want && f.flags&flagSYN != 0 })
	}
	if _, err := s.Open(ctx); !errors.Is(err, ErrStreamsExhausted) {
		t.Fatalf("Open past the last ID: %v, want ErrStreamsExhausted", err)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// TestHostileGoAwayWakesOpen: an Open waiting because AcceptBacklog of our streams are still
// un-ACKed returns ErrRemoteGoAway as soon as the peer's GoAway 0 arrives, not at its ctx.
func TestHostileGoAwayWakesOpen(t *testing.T) {
	cfg := hostileConfig()
	cfg.AcceptBacklog = 2
	s, p := hostileServer(t, cfg)
	p.start()
	for range 2 {
		if _, err := s.Open(testCtx(t, time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	waiters := s.rt.waiters
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Open(testCtx(t, 10*time.Second))
		errc <- err
	}()
	waitFor(t, func() bool { // the Open waits for ACKs, counted as a wait on the peer
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.rt.waiters > waiters
	})
	start := time.Now()
	p.send(rawHeader(0, uint8(typeGoAway), 0, 0, GoAwayNormal))
	select {
	case err := <-errc:
		if !errors.Is(err, ErrRemoteGoAway) {
			t.Fatalf("waiting Open after GoAway: %v, want ErrRemoteGoAway", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Open not woken by GoAway")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open woke %v after the GoAway", d)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// TestHostileIDReuse: the peer reuses the ID of a stream it reset while that dead stream still
// waits in the accept backlog. Both are handed out in order, each with its own fate (reset;
// data then EOF), and the live one's frames are not confused with the dead one's.
func TestHostileIDReuse(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeData, flagSYN, 1, []byte("old"))
	p.frame(typeWindowUpdate, flagRST, 1, nil)
	p.frame(typeData, flagSYN, 1, []byte("new"))
	p.frame(typeWindowUpdate, flagFIN, 1, nil)
	waitFor(t, func() bool { return s.Stats().FramesReceived >= 4 })
	old := acceptOne(t, s)
	if _, err := old.Read(make([]byte, 3)); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("reset stream: %v", err)
	}
	st := acceptOne(t, s)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(st); string(got) != "new" || err != nil {
		t.Fatalf("reused ID: %q, %v", got, err)
	}
	st.Write([]byte("reply"))
	st.Close()
	f := p.expect(5*time.Second, "reply", func(f rawFrame) bool { return f.id == 1 && f.typ == typeData })
	if string(f.payload) != "reply" {
		t.Fatalf("reply %q", f.payload)
	}
	waitFor(t, func() bool { return s.NumStreams() == 0 })
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// TestHostileExactWindowUse: a peer that sends exactly as much as it has been granted, never
// a byte more or less, on four streams at once (8 MiB each, its Data frames as large as its
// credit allows up to 256 KiB), with a small session budget and pongs delayed by 10 ms so that
// auto-tuning wants to grow every window to 1 MiB (4 MiB in all, twice the budget). Our window
// accounting must match the wire exactly: no stream is reset for flow control, every byte
// arrives in order, some window grows, and the reserved memory never exceeds MaxSessionMemory.
func TestHostileExactWindowUse(t *testing.T) {
	cfg := hostileConfig()
	cfg.MaxSessionMemory = 2 << 20
	cfg.MaxStreamWindow = 1 << 20
	s, p := hostileServer(t, cfg)
	p.autoPong = true
	p.pongDelay = 10 * time.Millisecond // a round trip that makes auto-tuning grow windows
	p.start()
	const streams, size = 4, 8 << 20
	ids := []uint32{1, 3, 5, 7}
	var mu sync.Mutex
	credit := map[uint32]int{}
	more := make(chan struct{}, 1)
	for _, id := range ids {
		credit[id] = initialWindow
		p.frame(typeWindowUpdate, flagSYN, id, nil)
	}
	pumpDone := make(chan error, 1)
	stopPump := make(chan struct{})
	defer close(stopPump)
	go func() { // credits from our WindowUpdates; any RST is a failure
		for {
			var f rawFrame
			select {
			case f = <-p.frames:
			case <-stopPump:
				return
			}
			if f.flags&flagRST != 0 {
				pumpDone <- fmt.Errorf("RST for stream %d", f.id)
				return
			}
			if f.typ == typeWindowUpdate && f.length > 0 {
				mu.Lock()
				credit[f.id] += int(f.length)
				mu.Unlock()
				notify(more)
			}
		}
	}()
	results := make(chan error, streams)
	for range streams {
		st := acceptOne(t, s)
		go func() {
			st.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, sum, err := sumReader(st)
			if err == nil && (n != size || sum != sha256Of(randomBytes(size, uint64(st.ID())))) {
				err = fmt.Errorf("stream %d: %d bytes, checksum mismatch", st.ID(), n)
			}
			results <- err
		}()
	}
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
				if r := s.Stats().MemoryReserved; r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	data := map[uint32][]byte{}
	for _, id := range ids {
		data[id] = randomBytes(size, uint64(id))
	}
	deadline := time.Now().Add(30 * time.Second)
	for sent := 0; sent < streams*size; {
		progress := false
		for _, id := range ids {
			mu.Lock()
			n := min(credit[id], 256<<10, len(data[id]))
			credit[id] -= n
			mu.Unlock()
			if n == 0 {
				continue
			}
			p.frame(typeData, 0, id, data[id][:n])
			data[id] = data[id][n:]
			if len(data[id]) == 0 {
				p.frame(typeWindowUpdate, flagFIN, id, nil)
			}
			sent += n
			progress = true
		}
		if !progress {
			select {
			case <-more:
			case err := <-pumpDone:
				t.Fatal(err)
			case <-time.After(time.Until(deadline)):
				t.Fatalf("no window after %d of %d bytes", sent, streams*size)
			}
		}
	}
	for range streams {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	close(stopSampling)
	<-sampled
	if peak.Load() > int64(cfg.MaxSessionMemory) {
		t.Errorf("reserved memory peaked at %d, over the budget %d", peak.Load(), cfg.MaxSessionMemory)
	}
	select {
	case err := <-pumpDone:
		t.Fatal(err)
	default:
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	if s.Stats().WindowGrowths == 0 {
		t.Errorf("no window grew: the budget was not put to the test (peak %d)", peak.Load())
	}
}

// TestHostileSendRespectsWindow: a peer that hands out credit in odd little pieces (1, 7, 1000,
// 4093 ... bytes) only when the previous credit is used up. Our sender must never send a byte
// beyond the credit (checked at every frame), must use one-byte credit too, and must deliver
// the whole Write intact.
func TestHostileSendRespectsWindow(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	p.frame(typeWindowUpdate, flagSYN, 1, nil)
	st := acceptOne(t, s)
	const size = initialWindow + 200<<10
	want := randomBytes(size, 9)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(want)
		if err == nil {
			err = st.CloseWrite()
		}
		werr <- err
	}()
	granted, got := initialWindow, 0
	var wire []byte
	pieces := []int{1, 7, 1000, 4093, 1, 65536, 12345}
	for i := 0; got < size; {
		f := p.expect(5*time.Second, "data", func(f rawFrame) bool { return f.id == 1 && f.typ == typeData })
		got += len(f.payload)
		wire = append(wire, f.payload...)
		if got > granted {
			t.Fatalf("received %d bytes with %d granted", got, granted)
		}
		if got == granted && got < size {
			d := pieces[i%len(pieces)]
			i++
			granted += d
			p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, uint32(d)))
		}
	}
	p.expect(5*time.Second, "FIN", func(f rawFrame) bool { return f.id == 1 && f.flags&flagFIN != 0 })
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wire, want) {
		t.Fatal("bytes on the wire differ from the bytes written")
	}
}

// TestHostileResetIsAtomic: a reset ends both directions at once. Once a Read has returned
// the reset, a Write that follows it in the same goroutine must fail too (and send nothing),
// however closely it follows. 300 streams, each reset by the peer while a Read waits.
func TestHostileResetIsAtomic(t *testing.T) {
	s, p := hostileServer(t, nil)
	p.start()
	const n = 300
	bad := 0
	for i := range n {
		id := uint32(2*i + 1)
		p.frame(typeWindowUpdate, flagSYN, id, nil)
		st := acceptOne(t, s)
		res := make(chan error, 1)
		go func() {
			st.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
				res <- fmt.Errorf("Read: %v", err)
				return
			}
			_, err := st.Write([]byte("after reset"))
			res <- err
		}()
		p.frame(typeWindowUpdate, flagRST, id, nil)
		err := <-res
		if err == nil {
			bad++
		} else if !errors.Is(err, ErrStreamReset) {
			t.Fatalf("stream %d: %v", id, err)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d Writes after a Read saw the reset succeeded", bad, n)
	}
}
