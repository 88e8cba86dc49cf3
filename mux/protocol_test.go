package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// The tests in this file protect the defined outcome of a peer that breaks the protocol, as
// only a raw peer (hand-written frames, reactions read on the wire) can: a violation beyond one
// stream ends the session with GoAway code 1 and a *ProtocolError, a violation within a stream
// resets that stream alone, and frames the spec leaves odd (a second FIN, Length on an RST, an
// RST instead of an ACK, a reused ID, a peer hanging up after complete requests) are handled
// without harm to the session.

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
		// Small socket buffers: the raw peer's 1 MiB write completes only once the session
		// has read (and skipped) all of it but about 128 KiB.
		s, p := hostileSession(t, nil, false, func(peer, sess *net.TCPConn) {
			peer.SetWriteBuffer(64 << 10)
			sess.SetReadBuffer(64 << 10)
		})
		p.start()
		heap0 := heapInUse()
		p.send(rawHeader(0, uint8(typeData), flags, 99, 0xFFFFFFF0), make([]byte, 1<<20))
		waitFor(t, func() bool { return s.Stats().FramesReceived >= 1 })
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
