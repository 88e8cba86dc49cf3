package mux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// The tests in this file check write cancellation: a Write that gives up (its deadline, Reset,
// Close) returns promptly even when the connection write carrying its frames is stuck, and a
// connection write cut short inside a frame (for such a Write, or failed by WriteTimeout)
// leaves the framing intact: the rest of that frame is written before anything else, or, after
// a failed write, nothing more is written at all.

// TestHostileWriteUnblocks: a Write blocked because the peer stopped reading (the connection
// write itself is stuck, with a huge window granted) or because the window is used up must
// return well under a second when its deadline passes, when the stream is Reset, or when the
// stream is Closed (net.Conn: "any blocked Read or Write operations will be unblocked and
// return errors") — not only after WriteTimeout or StreamCloseTimeout. When the connection
// write was cut, the framing must survive: the peer, reading again, parses everything. The
// queued cases hold the write token while the Write starts, as the send loop does while it
// writes an ACK or a window update, so the Write's frames go out in the send loop's batch,
// which must be cut short for it too.
func TestHostileWriteUnblocks(t *testing.T) {
	cases := []struct {
		name    string
		stuck   bool // the connection write is stuck (peer not reading), not the window
		queued  bool // the send loop, not the Write, writes the Write's frames
		setup   func(st *Stream)
		trigger func(st *Stream)
		want    error
	}{
		{name: "window/deadline", setup: func(st *Stream) { st.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)) },
			trigger: func(*Stream) {}, want: ErrTimeout},
		{name: "window/reset", trigger: func(st *Stream) { st.Reset() }, want: ErrStreamReset},
		{name: "window/close", trigger: func(st *Stream) { st.Close() }, want: ErrStreamClosed},
		{name: "conn/deadline", stuck: true,
			setup: func(st *Stream) { st.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)) }, trigger: func(*Stream) {}, want: ErrTimeout},
		{name: "conn/reset", stuck: true, trigger: func(st *Stream) { st.Reset() }, want: ErrStreamReset},
		{name: "conn/close", stuck: true, trigger: func(st *Stream) { st.Close() }, want: ErrStreamClosed},
		{name: "conn-queued/deadline", stuck: true, queued: true,
			setup: func(st *Stream) { st.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)) }, trigger: func(*Stream) {}, want: ErrTimeout},
		{name: "conn-queued/reset", stuck: true, queued: true, trigger: func(st *Stream) { st.Reset() }, want: ErrStreamReset},
		{name: "conn-queued/close", stuck: true, queued: true, trigger: func(st *Stream) { st.Close() }, want: ErrStreamClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hostileConfig()
			cfg.WriteTimeout = 5 * time.Second
			cfg.StreamCloseTimeout = 5 * time.Second
			var tune func(peer, sess *net.TCPConn)
			if tc.stuck {
				tune = smallBuffers
			}
			s, p := hostileSession(t, cfg, false, tune)
			p.frame(typeWindowUpdate, flagSYN, 1, nil)
			st := acceptOne(t, s)
			size := initialWindow + 1000
			if tc.stuck {
				p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 64<<20))
				size = 8 << 20
			} else {
				p.start()
			}
			frames := uint64(1)
			if tc.stuck {
				frames = 2
			}
			waitFor(t, func() bool { return s.Stats().FramesReceived >= frames })
			if tc.setup != nil {
				tc.setup(st)
			}
			sc := &s.sched
			if tc.queued {
				waitFor(t, func() bool { // once the send loop is idle, take its token
					s.mu.Lock()
					defer s.mu.Unlock()
					idle := !sc.writing && !sc.hasWorkLocked()
					sc.writing = sc.writing || idle
					return idle
				})
			}
			werr := make(chan error, 1)
			go func() {
				_, err := st.Write(make([]byte, size))
				werr <- err
			}()
			if tc.queued {
				waitFor(t, func() bool { // the Write queued its data
					s.mu.Lock()
					defer s.mu.Unlock()
					return len(st.wbuf) > 0
				})
				s.mu.Lock()
				sc.writing = false
				sc.notify() // the send loop takes the token and writes the queued data
				s.mu.Unlock()
			}
			if tc.stuck {
				// The peer does not read: once its socket buffers are full, the connection
				// write carrying the Write's frames cannot progress. This wait is the silence.
				waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return sc.writing })
				time.Sleep(100 * time.Millisecond)
			} else {
				waitFor(t, func() bool { return writeWaitsForWindow(s, st) })
			}
			start := time.Now()
			tc.trigger(st)
			select {
			case err := <-werr:
				if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("Write returned %v, want %v", err, tc.want)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Write still blocked 3 s later")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Write returned %v after the trigger", d)
			}
			if tc.stuck {
				// The cut batch must still be completed frame by frame: once the peer reads
				// again, every frame parses and a new stream works.
				p.start()
				p.drainFrames(200 * time.Millisecond)
				checkLegitStream(t, s, p, 3)
				// The rest of the cut batch, written, is let go: the session does not
				// keep up to batchBytes for its life. (The write token's holder owns
				// sc.cut: it is looked at while nobody holds the token.)
				kept := 0
				waitFor(t, func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					if sc.writing {
						return false
					}
					kept = cap(sc.cut)
					return true
				})
				if kept != 0 {
					t.Errorf("the session keeps %d bytes for the rest of a cut batch it wrote", kept)
				}
			}
		})
	}
}

// pausingPeer starts a Server session over a net.Pipe whose peer opens stream 1 with a
// 64 MiB window and returns it accepted. The peer reads the session's first frames (RTT probe,
// then our ACK) and 1000 payload bytes of the first Data frame, pauses, then reads everything
// until the session closes, and sends all it read on the returned wire channel (nil if the
// first read failed). The paused channel is closed when the pause begins. The session is
// closed and waited for when the test ends.
func pausingPeer(t *testing.T, cfg *Config, pause time.Duration) (s *Session, st *Stream, wire <-chan []byte, paused <-chan struct{}) {
	t.Helper()
	ours, peer := net.Pipe()
	s, err := Server(ours, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		peer.Close()
		s.Close()
		s.Wait()
	})
	wireCh := make(chan []byte, 1)
	pausing := make(chan struct{})
	go func() {
		head := make([]byte, 3*headerSize+1000)
		if _, err := io.ReadFull(peer, head); err != nil {
			wireCh <- nil
			return
		}
		close(pausing)
		time.Sleep(pause) // the peer stops reading: the behaviour under test
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, _ := io.ReadAll(peer)
		wireCh <- append(head, rest...)
	}()
	peer.SetWriteDeadline(time.Now().Add(5 * time.Second))
	peer.Write(rawHeader(0, uint8(typeWindowUpdate), flagSYN, 1, 64<<20))
	return s, acceptOne(t, s), wireCh, pausing
}

// TestHostileNothingAfterFailedWrite: when a connection write fails part-way (WriteTimeout:
// the peer stopped reading), the byte stream is cut inside a frame and its framing is lost.
// Nothing may be written after that point: a GoAway or RST written behind the cut is read by
// the peer as payload of the cut frame (hashicorp/yamux then hands those bytes to the
// application as stream data before its EOF). Over a net.Pipe the peer reads exactly up to the
// middle of a Data frame, pauses past WriteTimeout while we Close, then reads everything. The
// payload is all zeros, so any other byte inside it came from a frame written after the cut.
// Close must also return within about one WriteTimeout.
func TestHostileNothingAfterFailedWrite(t *testing.T) {
	cfg := hostileConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	// The peer pauses longer than WriteTimeout.
	s, st, wireCh, paused := pausingPeer(t, cfg, 3*cfg.WriteTimeout/2)
	go st.Write(make([]byte, 8<<20))
	select { // the write is now stuck inside the first Data frame
	case <-paused:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer did not get the first 1000 payload bytes within 5 s")
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > cfg.WriteTimeout+500*time.Millisecond {
		t.Errorf("Close took %v with WriteTimeout %v", d, cfg.WriteTimeout)
	}
	wire := <-wireCh
	for off := 0; off < len(wire); {
		if len(wire)-off < headerSize {
			break
		}
		h := wire[off : off+headerSize]
		typ, id, length := frameType(h[1]), binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		if h[0] != 0 || typ > typeGoAway {
			t.Fatalf("garbage header at offset %d: % x", off, h)
		}
		off += headerSize
		if typ != typeData {
			continue
		}
		end := min(off+int(length), len(wire))
		if id == 1 {
			if i := bytes.IndexFunc(wire[off:end], func(r rune) bool { return r != 0 }); i >= 0 {
				t.Fatalf("non-zero bytes inside stream 1's payload at offset %d (a %d-byte frame cut after %d bytes): a frame was written after the cut: % x",
					off+i, length, end-off, wire[off+i:min(off+i+12, end)])
			}
		}
		off = end
	}
}

// TestHostileCloseAfterCutWrite: a Write cut inside the connection write by its deadline
// leaves a partly written frame that the send loop must finish; a Close right after must
// finish it before its GoAway. Over a net.Pipe the peer reads 1000 payload bytes, pauses,
// then reads to the end: every frame parses, stream 1's payload is intact (all zeros), and
// the GoAway arrives as a GoAway.
func TestHostileCloseAfterCutWrite(t *testing.T) {
	cfg := hostileConfig()
	cfg.WriteTimeout = 2 * time.Second
	s, st, wireCh, _ := pausingPeer(t, cfg, 300*time.Millisecond)
	st.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := st.Write(make([]byte, 1<<20)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Write: %v, want ErrTimeout", err)
	}
	s.Close()
	wire := <-wireCh
	sawGoAway := false
	for off := 0; off < len(wire); {
		if len(wire)-off < headerSize {
			t.Fatalf("%d stray bytes at the end", len(wire)-off)
		}
		h := wire[off : off+headerSize]
		typ, id, length := frameType(h[1]), binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		if h[0] != 0 || typ > typeGoAway {
			t.Fatalf("garbage header at offset %d: % x", off, h)
		}
		off += headerSize
		if typ == typeGoAway {
			sawGoAway = true
		}
		if typ != typeData {
			continue
		}
		if off+int(length) > len(wire) {
			t.Fatalf("Data frame of %d bytes cut at %d", length, len(wire)-off)
		}
		if id == 1 && bytes.IndexFunc(wire[off:off+int(length)], func(r rune) bool { return r != 0 }) >= 0 {
			t.Fatal("foreign bytes inside stream 1's payload")
		}
		off += int(length)
	}
	if !sawGoAway {
		t.Error("no GoAway after the finished frame")
	}
}

// TestHostileCutWritesKeepFraming: four streams keep writing with 50 ms write deadlines to a
// peer that reads slowly (about 800 KB/s, small socket buffers), so Writes are cut part-way
// again and again, also inside the connection write. Afterwards every stream's bytes on the
// wire must be exactly the prefix of what it wrote whose length is the sum of the counts its
// Writes reported: no byte lost, duplicated or reordered, no frame torn, and each n honest. A
// variant also resets one stream mid-way: its bytes are a prefix, the others are unaffected.
func TestHostileCutWritesKeepFraming(t *testing.T) {
	t.Run("deadlines", func(t *testing.T) { cutWrites(t, false) })
	t.Run("deadlines-and-reset", func(t *testing.T) { cutWrites(t, true) })
}

func cutWrites(t *testing.T, resetOne bool) {
	cfg := hostileConfig()
	cfg.WriteTimeout = 5 * time.Second
	s, p := hostileSession(t, cfg, false, func(peer, sess *net.TCPConn) {
		peer.SetReadBuffer(64 << 10)
		sess.SetWriteBuffer(64 << 10)
	})
	p.slow = true
	p.autoGrant = true
	p.start()
	ids := []uint32{1, 3, 5, 7}
	const patternSize = 8 << 20
	for _, id := range ids {
		p.frame(typeWindowUpdate, flagSYN, id, nil)
	}
	type result struct {
		id       uint32
		total    int
		timeouts int
		err      error
	}
	// The patterns are made before the clock starts: under -race on a loaded machine, making
	// 32 MiB can take longer than the writers' whole run.
	patterns := map[uint32][]byte{}
	for _, id := range ids {
		patterns[id] = randomBytes(patternSize, uint64(id))
	}
	stop := make(chan struct{})
	var cuts atomic.Int64
	enough := make(chan struct{}) // closed at the 16th cut Write
	reset := make(chan struct{})  // closed when stream 7 resets (resetOne)
	results := make(chan result, len(ids))
	for range ids {
		st := acceptOne(t, s)
		go func() {
			pattern := patterns[st.ID()]
			r := result{id: st.ID()}
			defer func() { results <- r }()
			for r.total < patternSize-64<<10 {
				if resetOne && st.ID() == 7 && r.timeouts == 3 { // mid-way: after its third cut
					st.Reset()
					close(reset)
					return
				}
				select {
				case <-stop:
					st.SetWriteDeadline(time.Time{})
					r.err = st.CloseWrite()
					return
				default:
				}
				st.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				n, err := st.Write(pattern[r.total : r.total+32<<10])
				r.total += n
				if errors.Is(err, ErrTimeout) {
					r.timeouts++
					if cuts.Add(1) == 16 {
						close(enough)
					}
				} else if err != nil {
					r.err = err
					return
				}
			}
			r.err = errors.New("pattern used up: the peer read faster than planned")
		}()
	}
	// Run until 16 Writes were cut (and, in the variant, stream 7 was reset), but no more than
	// 15 s.
	limit := time.NewTimer(15 * time.Second)
	defer limit.Stop()
	if !resetOne {
		close(reset)
	}
	for _, c := range []chan struct{}{enough, reset} {
		select {
		case <-c:
		case <-limit.C:
		}
	}
	close(stop)
	wrote := map[uint32]result{}
	for range ids {
		r := <-results
		if r.err != nil {
			t.Fatalf("stream %d: %v", r.id, r.err)
		}
		wrote[r.id] = r
	}
	// Collect each stream's bytes up to its FIN (or RST for the reset one).
	got := map[uint32][]byte{}
	ends := 0
	for ends < len(ids) {
		f := p.expect(20*time.Second, "data, FIN or RST", func(f rawFrame) bool { return f.typ == typeData || f.flags&(flagFIN|flagRST) != 0 })
		if f.flags&flagRST != 0 && !(resetOne && f.id == 7) {
			t.Fatalf("RST on stream %d", f.id)
		}
		got[f.id] = append(got[f.id], f.payload...)
		if f.flags&(flagFIN|flagRST) != 0 {
			ends++
		}
	}
	timeouts := 0
	for _, id := range ids {
		r := wrote[id]
		timeouts += r.timeouts
		if resetOne && id == 7 {
			// Reset: what arrived is a prefix of what was written; the exact cut is moot.
			if !bytes.HasPrefix(patterns[id], got[id]) {
				t.Errorf("reset stream: the %d bytes received are not a prefix of the pattern", len(got[id]))
			}
			continue
		}
		want := patterns[id][:r.total]
		if !bytes.Equal(got[id], want) {
			t.Errorf("stream %d: peer got %d bytes, Writes reported %d; equal prefix: %v",
				id, len(got[id]), r.total, bytes.HasPrefix(want, got[id]) || bytes.HasPrefix(got[id], want))
		}
	}
	if timeouts == 0 {
		t.Error("no Write timed out: the test did not cut anything")
	}
	t.Logf("%d Writes timed out; totals %d %d %d %d", timeouts, wrote[1].total, wrote[3].total, wrote[5].total, wrote[7].total)
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// TestCutWriteKeepsFramingAcrossPeers: a Write blocked inside the connection write (the peer
// is not reading its end of a net.Pipe) returns at its deadline with the count it got out; the
// frame it was cut in the middle of is finished later, so every peer's parser reads every
// later frame, and both the cut stream's prefix and another stream's data arrive intact.
func TestCutWriteKeepsFramingAcrossPeers(t *testing.T) {
	var gate *gatedConn
	o := peerOpts{pipe: true, wrapPeer: func(c net.Conn) net.Conn {
		gate = &gatedConn{Conn: c, open: make(chan struct{})}
		return gate
	}}
	forEachPeer(t, allPeers, o, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 10*time.Second)
		a, err := ours.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(200<<10, 9)
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := a.Write(data)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Write to a peer that does not read: %d, %v; want ErrTimeout", n, err)
		}
		if ours.Err() != nil {
			t.Fatalf("a stream deadline ended the session: %v", ours.Err())
		}
		a.SetWriteDeadline(time.Time{})
		a.CloseWrite()
		close(gate.open)

		other := randomBytes(1<<20, 10)
		go func() {
			b, err := ours.Open(ctx)
			if err != nil {
				return
			}
			b.Write(other)
			b.CloseWrite()
		}()
		for range 2 {
			pst := acceptPeer(t, p)
			got, err := io.ReadAll(pst)
			if err != nil {
				t.Fatalf("stream %d: %v", streamID(pst), err)
			}
			want := other
			if streamID(pst) == a.ID() {
				want = data[:n]
			}
			if sha(got) != sha(want) {
				t.Fatalf("stream %d: %d bytes, want %d intact", streamID(pst), len(got), len(want))
			}
			pst.Close()
		}
		a.Close()
	})
}

// gatedConn blocks Reads until open is closed: a peer that stops reading its socket.
type gatedConn struct {
	net.Conn
	open chan struct{}
}

func (g *gatedConn) Read(p []byte) (int, error) {
	<-g.open
	return g.Conn.Read(p)
}
