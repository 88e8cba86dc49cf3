package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// The tests in this file drive the core alone (doc.go, "Design"): no connection, no drivers,
// no goroutines of the session's. Frames go in as the connection reader hands them over,
// frames come out of the scheduler as the writer would take them, and time is a fake clock
// (Session.now) that moves only when a test advances it, with the timers' expiry functions
// called directly. Each test is one exact sequence of events.

// coreFrame is one frame the core sent.
type coreFrame struct {
	typ     frameType
	flags   uint16
	id      uint32
	length  uint32
	payload []byte
}

// core is a session core under test.
type core struct {
	t     *testing.T
	s     *Session
	clock time.Time // the core's time: it moves only by advance
}

// advance moves the core's clock forward by d.
func (c *core) advance(d time.Duration) { c.clock = c.clock.Add(d) }

func newTestCore(t *testing.T, client bool, cfg *Config) *core {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	s := newCore(cfg.withDefaults(), client)
	s.sched.batch = newBatch(nil) // no vectored writes: every payload is copied into out
	c := &core{t: t, s: s, clock: time.Unix(1e9, 0)}
	s.now = func() time.Time { return c.clock }
	return c
}

// in hands the core one frame as the connection reader would: the header, the payload into a
// chunk (or discarded, as the core decides), then the frame's end. It returns the core's plan.
func (c *core) in(typ frameType, flags uint16, id, length uint32, payload []byte) rxPlan {
	c.t.Helper()
	var h header
	h.encode(typ, flags, id, length)
	if err := h.validate(); err != nil {
		return rxPlan{end: err}
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.onHeaderLocked(&h, nil)
	if p.end != nil {
		return p
	}
	if p.n > 0 && p.dst != nil {
		if len(payload) != int(p.n) {
			c.t.Fatalf("payload of %d bytes for a header of %d", len(payload), p.n)
		}
		for rest := payload; len(rest) > 0; { // in chunks, as the reader fills them
			ch := getChunk(len(rest))
			ch.w = copy(ch.b, rest)
			rest = rest[ch.w:]
			s.onChunkLocked(p.dst, ch)
		}
	}
	s.onFrameEndLocked(&p)
	if w := p.answered; w != nil {
		close(w.done)
	}
	return p
}

// out returns the frames the core sends next, as one writer batch that was written whole.
func (c *core) out() []coreFrame {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.sched.batch
	s.sched.fillLocked(b, false)
	var frames []coreFrame
	wire := b.out
	for len(wire) >= headerSize {
		var h header
		copy(h[:], wire)
		f := coreFrame{typ: h.typ(), flags: h.flags(), id: h.streamID(), length: h.length()}
		wire = wire[headerSize:]
		if f.typ == typeData {
			f.payload = append([]byte(nil), wire[:f.length]...)
			wire = wire[f.length:]
		}
		frames = append(frames, f)
	}
	s.sched.completeLocked(b)
	b.giveBack()
	s.finishSentLocked(b)
	return frames
}

// expect asserts the next batch is exactly want (payloads compared when want has one).
func (c *core) expect(what string, want ...coreFrame) {
	c.t.Helper()
	got := c.out()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.typ == w.typ && g.flags == w.flags && g.id == w.id && g.length == w.length &&
			(w.payload == nil || bytes.Equal(g.payload, w.payload))
	}
	if !ok {
		c.t.Fatalf("%s: sent %+v, want %+v", what, got, want)
	}
}

// openAndWrite opens a stream and starts a Write of p on it, which waits for the writer (the
// core has none: out stands for it); it returns once the Write has queued p, with the channel
// its result comes on.
func (c *core) openAndWrite(p []byte) (*Stream, <-chan error) {
	c.t.Helper()
	st, err := c.s.Open(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := st.Write(p)
		wrote <- err
	}()
	waitFor(c.t, func() bool { c.s.mu.Lock(); defer c.s.mu.Unlock(); return len(st.wbuf) > 0 })
	return st, wrote
}

// accept takes the next stream from the accept backlog and accepts it (queuing its ACK).
func (c *core) accept() *Stream {
	c.t.Helper()
	select {
	case st := <-c.s.acceptCh:
		return c.s.accepted(st)
	default:
		c.t.Fatal("no stream in the accept backlog")
		return nil
	}
}

func (c *core) streams() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return len(c.s.streams)
}

func (c *core) state(st *Stream) (sendState, recvState) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return st.send, st.recv
}

func wu(flags uint16, id, delta uint32) coreFrame {
	return coreFrame{typ: typeWindowUpdate, flags: flags, id: id, length: delta}
}

func data(flags uint16, id uint32, p []byte) coreFrame {
	return coreFrame{typ: typeData, flags: flags, id: id, length: uint32(len(p)), payload: p}
}

// An incoming SYN waits for Accept, which sends the ACK (lazy ACK, as hashicorp/yamux and
// go-yamux do); data on the SYN is buffered for Read.
func TestCoreAcceptSendsACK(t *testing.T) {
	c := newTestCore(t, false, nil)
	c.in(typeData, flagSYN, 1, 5, []byte("hello"))
	c.expect("before Accept")
	st := c.accept()
	c.expect("after Accept", wu(flagACK, 1, 0))
	buf := make([]byte, 16)
	if n, err := st.Read(buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read: %q, %v", buf[:n], err)
	}
}

// Reading frees window, credited back once half the window is free: one WindowUpdate per
// half window.
func TestCoreWindowCreditedAfterHalfIsRead(t *testing.T) {
	c := newTestCore(t, false, nil)
	half := bytes.Repeat([]byte{7}, initialWindow/2)
	c.in(typeData, flagSYN, 1, uint32(len(half)), half)
	st := c.accept()
	c.in(typeData, 0, 1, uint32(len(half)), half)
	c.expect("ACK", wu(flagACK, 1, 0))
	buf := make([]byte, initialWindow/2-1)
	io.ReadFull(st, buf)
	c.expect("less than half the window read")
	io.ReadFull(st, make([]byte, 1))
	c.expect("half the window read", wu(0, 1, initialWindow/2))
}

// A reader that keeps up with the round trip grows its window (auto-tuning): it consumed half
// the window in 2 ms with a 10 ms minimum RTT, so the window doubles to 512 KiB, the credit
// covers it, and an RTT probe goes out to refine the minimum.
func TestCoreWindowGrowsForAFastReader(t *testing.T) {
	c, st := halfWindowRead(t, 10*time.Millisecond, 2*time.Millisecond)
	c.expect("the grown window's credit", wu(0, 1, 2*initialWindow-initialWindow/2))
	if got := c.s.Stats().WindowGrowths; got != 1 || st.window != 2*initialWindow {
		t.Fatalf("%d window growths, window %d; want 1 and %d", got, st.window, 2*initialWindow)
	}
	// The same read rate with a 100 µs minimum RTT does not grow it: the sender was not held
	// back by the window.
	c, _ = halfWindowRead(t, 100*time.Microsecond, 2*time.Millisecond)
	c.expect("the unchanged window's credit", wu(0, 1, initialWindow/2))
}

// A stream's first epoch is its start-up: the peer's first window arrives at once and what
// follows a round trip later, so its rate is not the stream's and is no baseline. A growth
// that makes the stream twice as fast as the epochs after the start-up stays, however fast the
// start-up was (judged against it, a real link's first growth looked only a third faster).
func TestCoreWindowStartUpIsNoBaseline(t *testing.T) {
	// Start-up at 128 KiB/ms, then 64 KiB/ms: the window doubles to 512 KiB.
	c, st := halfWindowRead(t, 10*time.Millisecond, time.Millisecond)
	c.expect("the growth", wu(0, 1, 2*initialWindow-initialWindow/2))
	// Twice the baseline, the start-up's rate.
	if window, _ := judgeGrowth(c, st, 2*time.Millisecond); window != 2*initialWindow {
		t.Fatalf("window %d after a growth that doubled the rate, want %d", window, 2*initialWindow)
	}
	c.expect("paid: the grown window's credit", wu(0, 1, initialWindow))
}

// halfWindowRead sets up a core whose minimum RTT is rtt and one accepted stream, 1 MiB of
// MaxStreamWindow, on which half the initial window arrives and is read, three times: the
// first epoch is the stream's start-up, read startUp later (it sends the RTT probe; its rate
// is no baseline), the second auto-tuning's baseline and the third its first judgement, each
// read 2 ms later (64 KiB/ms). The frames the third sends are left for the caller.
func halfWindowRead(t *testing.T, rtt, startUp time.Duration) (*core, *Stream) {
	t.Helper()
	cfg := testConfig()
	cfg.MaxStreamWindow = 4 * initialWindow
	c := newTestCore(t, false, cfg)
	c.s.mu.Lock()
	c.s.observeRTTLocked(rtt)
	c.s.mu.Unlock()
	half := bytes.Repeat([]byte{7}, initialWindow/2)
	c.in(typeData, flagSYN, 1, uint32(len(half)), half)
	st := c.accept()
	c.expect("ACK", wu(flagACK, 1, 0))
	c.advance(startUp)
	io.ReadFull(st, make([]byte, len(half)))
	c.expect("the start-up epoch: RTT probe and credit",
		coreFrame{typ: typePing, flags: flagSYN, length: 1}, wu(0, 1, initialWindow/2))
	for _, epoch := range []string{"the baseline epoch: credit", ""} {
		c.in(typeData, 0, 1, uint32(len(half)), half)
		c.advance(2 * time.Millisecond)
		io.ReadFull(st, make([]byte, len(half)))
		if epoch != "" {
			c.expect(epoch, wu(0, 1, initialWindow/2))
		}
	}
	return c, st
}

// judgeGrowth runs the two epochs after a growth to 512 KiB on halfWindowRead's stream: half
// the grown window comes in the round trip after the growth, at the old rate (not judged,
// credited), then half again, read in read (judged). It returns the window and the bytes
// reserved after the judgement, whose frames are left for the caller.
func judgeGrowth(c *core, st *Stream, read time.Duration) (window uint32, reserved int64) {
	c.t.Helper()
	c.in(typeData, 0, 1, initialWindow, bytes.Repeat([]byte{8}, initialWindow))
	c.advance(10 * time.Millisecond)
	io.ReadFull(st, make([]byte, initialWindow))
	c.expect("the epoch the growth began: credit, no judgement", wu(0, 1, initialWindow))
	c.in(typeData, 0, 1, initialWindow, bytes.Repeat([]byte{8}, initialWindow))
	c.advance(read)
	io.ReadFull(st, make([]byte, initialWindow))
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return st.window, st.reserved
}

// A growth is a probe, judged on the first epoch that starts a round trip after it (the epoch
// it began, which ends before the writer can have used it, is not judged): when that epoch is
// not read faster (the sender was not held back by the window), the window goes back to its
// size before, no credit is renewed beyond it, the memory returns once the peer's credit is
// used, and the stream does not grow again for tuneRetry. When it is read faster, the growth
// stays. Faster means about as much faster as a sender held back by the window gets with
// twice the window (growthPays): a third faster, as loopback's run-to-run noise is, does not
// keep a growth whose longer queues other streams' frames would wait behind.
func TestCoreWindowGrowthKeptOnlyIfItPays(t *testing.T) {
	for _, tc := range []struct {
		read time.Duration // to read half the grown window; 4 ms is the rate before the growth
		pays bool
	}{{2 * time.Millisecond, true}, {3 * time.Millisecond, false}, {4 * time.Millisecond, false}} {
		pays := tc.pays
		c, st := halfWindowRead(t, 10*time.Millisecond, 2*time.Millisecond) // the window doubles to 512 KiB
		c.out()
		// Read in 2 ms (twice the rate before the growth: it paid), 3 ms (a third faster: not
		// enough) or 4 ms (the same rate: it did not).
		window, reserved := judgeGrowth(c, st, tc.read)
		if pays {
			if window != 2*initialWindow {
				t.Fatalf("read in %v, paid: window %d, want %d", tc.read, window, 2*initialWindow)
			}
			c.expect("paid: the grown window's credit", wu(0, 1, initialWindow))
			continue
		}
		if window != initialWindow || reserved != 2*initialWindow {
			t.Fatalf("read in %v, did not pay: window %d reserved %d, want %d and %d until the credit is used", tc.read, window, reserved, initialWindow, 2*initialWindow)
		}
		c.expect("did not pay: no credit beyond the smaller window (the peer still holds 256 KiB)")
		// The peer uses its credit; reading it frees the growth's memory, and no new growth
		// comes before tuneRetry, however fast the reading.
		c.in(typeData, 0, 1, initialWindow, bytes.Repeat([]byte{9}, initialWindow))
		c.advance(time.Millisecond)
		io.ReadFull(st, make([]byte, initialWindow))
		c.s.mu.Lock()
		window, reserved = st.window, st.reserved
		c.s.mu.Unlock()
		if window != initialWindow || reserved != initialWindow {
			t.Fatalf("after the credit was used: window %d reserved %d, want %d for both", window, reserved, initialWindow)
		}
		c.expect("credit for the initial window", wu(0, 1, initialWindow))
	}
}

// Data beyond the granted window resets that stream alone (RST), and the session goes on.
func TestCoreDataBeyondWindowResetsStream(t *testing.T) {
	c := newTestCore(t, false, nil)
	c.in(typeWindowUpdate, flagSYN, 1, 0, nil)
	st := c.accept()
	c.expect("ACK", wu(flagACK, 1, 0))
	if p := c.in(typeData, 0, 1, initialWindow+1, nil); p.dst != nil || p.n != initialWindow+1 || p.end != nil {
		t.Fatalf("plan %+v: want the payload discarded and the session kept", p)
	}
	c.expect("RST", wu(flagRST, 1, 0))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("Read: %v, want ErrStreamReset", err)
	}
	if c.streams() != 0 {
		t.Fatal("the reset stream is still in the table")
	}
}

// FIN in both directions ends the stream: it leaves the table once its FIN was written.
func TestCoreFINBothWaysRemovesStream(t *testing.T) {
	c := newTestCore(t, false, nil)
	c.in(typeData, flagSYN|flagFIN, 1, 2, []byte("hi"))
	st := c.accept()
	if s, r := c.state(st); s != sendOpen || r != recvFIN {
		t.Fatalf("states %d/%d, want sendOpen/recvFIN", s, r)
	}
	st.CloseWrite()
	if s, _ := c.state(st); s != sendFINQueued {
		t.Fatalf("send state %d, want sendFINQueued", s)
	}
	if c.streams() != 1 {
		t.Fatal("stream left the table before its FIN was written")
	}
	c.expect("ACK and FIN", wu(flagACK|flagFIN, 1, 0))
	if s, _ := c.state(st); s != sendFINSent || c.streams() != 0 {
		t.Fatalf("send state %d, %d streams; want sendFINSent and none", s, c.streams())
	}
	b, err := io.ReadAll(st)
	if string(b) != "hi" || err != nil {
		t.Fatalf("ReadAll: %q, %v", b, err)
	}
}

// A FIN never overtakes data: CloseWrite behind a Write rides on the last Data frame.
func TestCoreFINRidesOnLastData(t *testing.T) {
	c := newTestCore(t, true, nil)
	st, wrote := c.openAndWrite([]byte("abc"))
	st.CloseWrite()
	c.expect("SYN, then data with FIN", wu(flagSYN, 1, 0), data(flagFIN, 1, []byte("abc")))
	if err := <-wrote; err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// Close gives back the window the peer does not hold with its FIN, so a peer writer blocked
// on a used-up window sends again and learns of the Close from the RST its data gets; without
// the peer's FIN within StreamCloseTimeout the stream is reset.
func TestCoreCloseGivesWindowBackThenTimesOut(t *testing.T) {
	c := newTestCore(t, false, nil)
	chunk := bytes.Repeat([]byte{1}, 100<<10)
	c.in(typeData, flagSYN, 1, uint32(len(chunk)), chunk)
	st := c.accept()
	c.expect("ACK", wu(flagACK, 1, 0))
	st.Close()
	c.expect("FIN with the buffered bytes credited back", wu(flagFIN, 1, uint32(len(chunk))))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Read after Close: %v, want ErrStreamClosed", err)
	}
	c.s.closeTimedOut(st) // StreamCloseTimeout passes
	c.expect("RST", wu(flagRST, 1, 0))
	if c.streams() != 0 {
		t.Fatal("stream still in the table after its close timeout")
	}
}

// Data after Close is answered with RST at once.
func TestCoreDataAfterCloseIsReset(t *testing.T) {
	c := newTestCore(t, false, nil)
	c.in(typeWindowUpdate, flagSYN, 1, 0, nil)
	st := c.accept()
	st.Close()
	c.expect("ACK and FIN (the peer holds the whole window: nothing to give back)", wu(flagACK|flagFIN, 1, 0))
	c.in(typeData, 0, 1, 4, []byte("late"))
	c.expect("RST for data after Close", wu(flagRST, 1, 0))
	// The reset the data caused does not change what Close promised callers.
	if _, err := st.Read(make([]byte, 1)); err != errReadAfterClose {
		t.Fatalf("Read after Close and the peer's late data: %v, want the Read-after-Close error", err)
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Write after Close and the peer's late data: %v, want ErrStreamClosed", err)
	}
	if c.streams() != 0 {
		t.Fatal("stream still in the table after its RST")
	}
}

// An outbound stream the peer does not ACK within StreamOpenTimeout is reset alone; its
// Write fails with a *StreamError saying so.
func TestCoreOpenTimeoutResetsStream(t *testing.T) {
	c := newTestCore(t, true, nil)
	st, err := c.s.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.expect("SYN", wu(flagSYN, 1, 0))
	c.s.openTimedOut(st) // StreamOpenTimeout passes
	c.expect("RST", wu(flagRST, 1, 0))
	var se *StreamError
	if _, err := st.Write([]byte("x")); !errors.As(err, &se) || se.Remote {
		t.Fatalf("Write: %v, want a local *StreamError", err)
	}
	if c.s.Err() != nil {
		t.Fatalf("session ended: %v", c.s.Err())
	}
}

// A Write whose every byte was handed to the connection succeeds even when the peer resets
// the stream right after.
func TestCoreWriteSucceedsWhenSentBeforeReset(t *testing.T) {
	c := newTestCore(t, true, nil)
	_, wrote := c.openAndWrite([]byte("all of it"))
	c.expect("SYN and data", wu(flagSYN, 1, 0), data(0, 1, []byte("all of it")))
	c.in(typeWindowUpdate, flagRST, 1, 0, nil)
	if err := <-wrote; err != nil {
		t.Fatalf("Write: %v, want success: every byte went out before the RST", err)
	}
}

// Pings are answered ahead of data, and a peer that pings faster than it reads loses the
// replies past the backlog, not memory.
func TestCorePingsAnsweredWithinBacklog(t *testing.T) {
	c := newTestCore(t, false, nil)
	for i := range pongBacklog + 5 {
		c.in(typePing, flagSYN, 0, uint32(i), nil)
	}
	got := c.out()
	if len(got) != pongBacklog {
		t.Fatalf("%d pongs sent, want %d", len(got), pongBacklog)
	}
	for i, f := range got {
		if f.typ != typePing || f.flags != flagACK || f.length != uint32(i) {
			t.Fatalf("pong %d: %+v", i, f)
		}
	}
	if d := c.s.stats.pongsDropped.Load(); d != 5 {
		t.Fatalf("%d pongs dropped, want 5", d)
	}
}

// Protocol violations end the session with a *ProtocolError (GoAway code 1 follows); a
// GoAway with an error code ends it with the peer's *GoAwayError; GoAway 0 only stops Open.
func TestCoreSessionLevelOutcomes(t *testing.T) {
	var pe *ProtocolError
	c := newTestCore(t, false, nil)
	if p := c.in(typeData, flagSYN, 2, 0, nil); !errors.As(p.end, &pe) {
		t.Fatalf("SYN with this side's parity: %v, want *ProtocolError", p.end)
	}
	c = newTestCore(t, false, nil)
	c.in(typeWindowUpdate, flagSYN, 1, 0, nil)
	if p := c.in(typeWindowUpdate, flagSYN, 1, 0, nil); !errors.As(p.end, &pe) {
		t.Fatalf("duplicate SYN: %v, want *ProtocolError", p.end)
	}
	if p := c.in(frameType(9), 0, 0, 0, nil); !errors.As(p.end, &pe) {
		t.Fatalf("unknown type: %v, want *ProtocolError", p.end)
	}
	var ge *GoAwayError
	if p := c.in(typeGoAway, 0, 0, GoAwayInternalError, nil); !errors.As(p.end, &ge) || ge.Code != 2 || !ge.Remote {
		t.Fatalf("GoAway 2: %v, want the peer's *GoAwayError with code 2", p.end)
	}
	c = newTestCore(t, true, nil)
	if p := c.in(typeGoAway, 0, 0, GoAwayNormal, nil); p.end != nil {
		t.Fatalf("GoAway 0 ended the session: %v", p.end)
	}
	if _, err := c.s.Open(context.Background()); !errors.Is(err, ErrRemoteGoAway) {
		t.Fatalf("Open after GoAway 0: %v, want ErrRemoteGoAway", err)
	}
}

// Frames for a stream that is gone are ignored, their payload discarded, and the session
// goes on (as hashicorp/yamux does).
func TestCoreFramesForUnknownStreamIgnored(t *testing.T) {
	c := newTestCore(t, false, nil)
	if p := c.in(typeData, 0, 41, 10, nil); p.dst != nil || p.n != 10 || p.end != nil {
		t.Fatalf("plan %+v: want 10 bytes discarded", p)
	}
	c.in(typeWindowUpdate, flagFIN, 41, 100, nil)
	c.in(typeWindowUpdate, flagRST, 41, 0, nil)
	c.expect("nothing sent for an unknown stream")
}

// Incoming streams past the accept backlog are refused with RST, not queued.
func TestCoreAcceptBacklogRefuses(t *testing.T) {
	cfg := testConfig()
	cfg.AcceptBacklog = 2
	c := newTestCore(t, false, cfg)
	for id := uint32(1); id <= 7; id += 2 {
		c.in(typeWindowUpdate, flagSYN, id, 0, nil)
	}
	c.expect("RSTs for the two past the backlog", wu(flagRST, 5, 0), wu(flagRST, 7, 0))
	if got := c.s.stats.streamsRefused.Load(); got != 2 {
		t.Fatalf("%d refused, want 2", got)
	}
}
