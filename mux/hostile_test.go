package mux

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// The tests in this file attack a Session from a raw TCP peer that writes hand-built frames
// and parses what comes back, so every reaction (RST, GoAway code, session error) is checked
// on the wire and not only through the API.

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
