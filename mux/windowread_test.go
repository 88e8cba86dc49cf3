package mux

import (
	"errors"
	"io"
	"testing"
	"time"
)

// The tests in this file attack the window read (readtoken.go, recv.go): a Write whose send
// window is used up reads the connection itself while the read token is parked, until a
// WindowUpdate opens the window or something ends the wait.

// windowReading reports whether st's Write holds the session's read token (a window read).
func windowReading(s *Session, st *Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt.holder == st && st.windowRead
}

type writeRes struct {
	n   int
	err error
	at  time.Time
}

// primeWindowRead gets st's Write into a window read: with the token parked (parkToken), a
// Write of the initial window and 1000 bytes more sends the window's worth and then takes
// the token to wait for more. It returns that Write, with holdParked cleared.
func primeWindowRead(t *testing.T, s *Session, p *rawPeer, st *Stream) chan writeRes {
	t.Helper()
	parkToken(t, s, st, func(b []byte) { p.frame(typeData, 0, st.ID(), b) })
	c := make(chan writeRes, 1)
	go func() {
		n, err := st.Write(make([]byte, initialWindow+1000))
		c <- writeRes{n, err, time.Now()}
	}()
	waitFor(t, func() bool { return windowReading(s, st) })
	s.hooks.holdParked.Store(false)
	return c
}

// TestWindowReadServesTheSession: while a Write reads for window, every frame the peer sends
// is handled as the receive loop would: another stream's data reaches its Read, a Ping is
// answered, data for the writing stream itself is buffered for its Read; then the peer's
// WindowUpdate lets the Write finish, and the token is parked again for the next reader.
func TestWindowReadServesTheSession(t *testing.T) {
	s, p := rawPeerForDirect(t)
	st := openRaw(t, s, p, 1)
	other := openRaw(t, s, p, 3)
	wc := primeWindowRead(t, s, p, st)

	rc := goRead(other, 100)
	p.frame(typeData, 0, 3, []byte("other"))
	if r := <-rc; r.err != nil || string(r.b) != "other" {
		t.Fatalf("other stream's Read during the window read: %q, %v", r.b, r.err)
	}
	pongs := p.pongs.Load()
	p.send(rawHeader(0, uint8(typePing), flagSYN, 0, 77))
	waitFor(t, func() bool { return p.pongs.Load() > pongs })
	p.frame(typeData, 0, 1, []byte("own"))
	if !windowReading(s, st) {
		t.Fatal("the Write stopped reading for window before any window came")
	}
	own := make([]byte, 3)
	if _, err := io.ReadFull(st, own); err != nil || string(own) != "own" {
		t.Fatalf("the writing stream's own data: %q, %v", own, err)
	}

	p.send(rawHeader(0, uint8(typeWindowUpdate), 0, 1, 1<<20))
	select {
	case r := <-wc:
		if r.err != nil || r.n != initialWindow+1000 {
			t.Fatalf("Write after the window opened: %d, %v", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked 5 s after the window opened")
	}
	waitFor(t, func() bool { return parked(s) || s.rt.loop })
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}

// TestWindowReadEnds: a Write reading for window is ended promptly by Reset, Close, its
// write deadline (set before or during the read), the peer's RST and the session's end, with
// the error each promises and the window's worth counted as written; the session goes on
// (but for its own end) and another stream's Read still gets its data.
func TestWindowReadEnds(t *testing.T) {
	ends := []struct {
		name string
		end  func(s *Session, p *rawPeer, st *Stream)
		want error
	}{
		{"Reset", func(s *Session, p *rawPeer, st *Stream) { st.Reset() }, ErrStreamReset},
		{"Close", func(s *Session, p *rawPeer, st *Stream) { st.Close() }, ErrStreamClosed},
		{"SetWriteDeadline", func(s *Session, p *rawPeer, st *Stream) { st.SetWriteDeadline(time.Now()) }, ErrTimeout},
		{"SetWriteDeadlineFuture", func(s *Session, p *rawPeer, st *Stream) {
			st.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		}, ErrTimeout},
		{"PeerRST", func(s *Session, p *rawPeer, st *Stream) { p.frame(typeWindowUpdate, flagRST, 1, nil) }, ErrStreamReset},
		{"SessionClose", func(s *Session, p *rawPeer, st *Stream) { go s.Close() }, ErrSessionClosed},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			s, p := rawPeerForDirect(t)
			st := openRaw(t, s, p, 1)
			other := openRaw(t, s, p, 3)
			wc := primeWindowRead(t, s, p, st)
			t0 := time.Now()
			e.end(s, p, st)
			select {
			case r := <-wc:
				if !errors.Is(r.err, e.want) || r.n != initialWindow {
					t.Fatalf("Write: %d, %v; want %d, %v", r.n, r.err, initialWindow, e.want)
				}
				if d := r.at.Sub(t0); d > kickLatency+20*time.Millisecond {
					t.Errorf("Write ended %v after %s", d, e.name)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Write still blocked 5 s after %s", e.name)
			}
			if e.want == ErrSessionClosed {
				return
			}
			rc := goRead(other, 100)
			p.frame(typeData, 0, 3, []byte("after"))
			if r := <-rc; r.err != nil || string(r.b) != "after" {
				t.Fatalf("other stream's Read after the window read ended: %q, %v", r.b, r.err)
			}
			if err := s.Err(); err != nil {
				t.Fatalf("session ended: %v", err)
			}
		})
	}
}
