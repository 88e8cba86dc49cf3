package mux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	lp "github.com/libp2p/go-yamux/v5"
)

// The tests in this file protect how streams and sessions end, each against every peer that
// has the behaviour (peers_test.go): half-close (CloseWrite, and hashicorp/yamux's Close),
// full Close (data after it is answered with RST, a Write blocked on either side's used-up
// window fails promptly when the other side closes), Reset (atomic, both directions, both
// ways), the open and close timers, blocked calls that end whatever ends the stream or the
// session, and bytes for which Write returned that arrive even when the writer closes the
// stream and the session at once. Interleavings are forced with the session's test hooks
// (in the tests that use them) or by waiting for a state, never by sleeping.

// msg16k is the writer's message size in the blocked-writer tests: 16 KiB.
const msg16k = 16 << 10

// windowUsedUp reports whether the peer has used all the window st granted and every byte
// of it has arrived (none is still being read): a writer on the other end now waits for
// window, and nothing is on its way that could be answered.
func windowUsedUp(st *Stream) bool {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	return st.outstanding == 0 && st.pending == 0
}

// readN reads exactly n bytes from r.
func readN(t *testing.T, r io.Reader, n int) {
	t.Helper()
	if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
}

// writeUntilError writes 16 KiB messages to w until a Write fails, and sends that error.
func writeUntilError(w io.Writer) <-chan error {
	done := make(chan error, 1)
	go func() {
		msg := make([]byte, msg16k)
		for {
			if _, err := w.Write(msg); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

// expectWriteFailsSoon checks that the writer's blocked Write fails within about a second.
func expectWriteFailsSoon(t *testing.T, werr <-chan error) error {
	t.Helper()
	select {
	case err := <-werr:
		return err
	case <-time.After(1500 * time.Millisecond):
		t.Fatal("the Write blocked on window still waits 1.5 s after the peer's Close")
		return nil
	}
}

// longCloseConfig is interopConfig with a close timer far beyond the test, so only the
// behaviour under test can end a blocked Write.
func longCloseConfig() *Config {
	c := interopConfig()
	c.StreamCloseTimeout = time.Minute
	return c
}

// TestPeerCloseEndsBlockedWrite: the reader reads 80 KiB of a writer's 16 KiB messages and
// closes the stream while the writer (mux, hashicorp/yamux, go-yamux or a raw peer) waits for
// window, with every byte sent so far already arrived (the case in which nothing could be answered with RST). Close gives the window
// back, the writer's next bytes are answered with RST, and its Write fails within about a
// second instead of waiting for the close timer (hashicorp/yamux#133).
func TestPeerCloseEndsBlockedWrite(t *testing.T) {
	t.Run("mux-writer", func(t *testing.T) {
		client, server := sessionPair(t, longCloseConfig(), longCloseConfig())
		w, err := client.Open(testCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		werr := writeUntilError(w)
		r := acceptOne(t, server)
		readN(t, r, 80<<10)
		waitFor(t, func() bool { return windowUsedUp(r) })
		r.Close()
		if err := expectWriteFailsSoon(t, werr); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("blocked Write: %v, want ErrStreamReset", err)
		}
	})

	for _, topo := range topologies {
		t.Run("yamux-writer/"+topo.name, func(t *testing.T) {
			hc := hcConfig()
			hc.StreamCloseTimeout = time.Minute
			p := newInteropPair(t, topo.ourClient, longCloseConfig(), hc)
			r, err := p.ours.Open(testCtx(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			w := p.theirAccept(t, 5*time.Second)
			werr := writeUntilError(w)
			readN(t, r, 80<<10)
			waitFor(t, func() bool { return windowUsedUp(r) })
			r.Close()
			if err := expectWriteFailsSoon(t, werr); !errors.Is(err, yamux.ErrConnectionReset) {
				t.Fatalf("their blocked Write: %v, want yamux.ErrConnectionReset", err)
			}
		})
	}

	for _, topo := range topologies {
		t.Run("go-yamux-writer/"+topo.name, func(t *testing.T) {
			p := newLPPair(t, topo.ourClient, longCloseConfig())
			r, w := openToLP(t, p)
			werr := writeUntilError(w)
			readN(t, r, 80<<10)
			waitFor(t, func() bool { return windowUsedUp(r) })
			r.Close()
			if err := expectWriteFailsSoon(t, werr); !errors.Is(err, lp.ErrStreamReset) {
				t.Fatalf("their blocked Write: %v, want go-yamux ErrStreamReset", err)
			}
		})
	}

	t.Run("raw-writer", func(t *testing.T) {
		cfg := hostileConfig()
		cfg.StreamCloseTimeout = time.Minute
		s, p := hostileServer(t, cfg)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		r := acceptOne(t, s)
		msg := make([]byte, msg16k)
		for range initialWindow / msg16k {
			p.frame(typeData, 0, 1, msg)
		}
		readN(t, r, 80<<10)
		waitFor(t, func() bool { return windowUsedUp(r) })
		r.Close()
		f := p.expect(time.Second, "window credit for stream 1 after Close", func(f rawFrame) bool {
			return f.id == 1 && f.typ == typeWindowUpdate && f.length > 0
		})
		if f.length != initialWindow {
			t.Fatalf("credit after Close: %d, want the whole window %d", f.length, initialWindow)
		}
		p.frame(typeData, 0, 1, msg)
		p.expect(time.Second, "RST for the data sent after Close", isRST(1))
		if err := s.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// protocolWindow is the receive window every yamux stream starts with (spec.md, "Flow
// Control"): 256 KiB.
const protocolWindow = 256 << 10

// TestPeerFullCloseEndsOurBlockedWrite: our Write of 16 KiB messages waits on a window the
// peer used up (the peer read 80 KiB of the 256 KiB it granted, less than the half window
// after which every peer here credits it back), and then the peer closes its stream as fully
// as it can. What ends our Write depends on what the closer tells us:
//
//   - mux: Close stops reading and gives the window back with its FIN, so our next bytes are
//     answered with RST: the Write fails within about a second (hashicorp/yamux#133 is this
//     wait, without the credit), whatever its close timer.
//   - hashicorp/yamux: its Close is a half-close (a FIN, and it would read on); it has no Reset
//     and no CloseRead, so the most it can do is Close and read nothing more. Nothing reaches
//     us until its StreamCloseTimeout resets the stream: the Write fails with ErrStreamReset
//     then (one second here).
//   - go-yamux: Close is CloseRead (it sends nothing) and CloseWrite (a FIN); the stream is
//     forgotten and nothing more is said. A FIN alone cannot end our Write (the peer may
//     still read: that is what a half-close means), so our write deadline does, and the
//     session is unharmed (MIGRATING.md: set write deadlines against such peers).
//
// Our side opens the stream; the peer accepts it. For the mux closer the test also waits
// until every byte sent has arrived, the case in which nothing in flight could be answered.
func TestPeerFullCloseEndsOurBlockedWrite(t *testing.T) {
	const peerCloseTimeout = time.Second
	o := peerOpts{
		ours:  longCloseConfig(),
		mux:   longCloseConfig(),
		yamux: func(c *yamux.Config) { c.StreamCloseTimeout = peerCloseTimeout },
	}
	forEachPeer(t, allPeers, o, func(t *testing.T, ours *Session, p peer) {
		w, r := openToPeer(t, ours, p)
		bound, want := 2*time.Second, error(nil) // mux: any error within 2 s
		switch p.(type) {
		case yamuxSide:
			bound, want = peerCloseTimeout+2*time.Second, ErrStreamReset
		case lpSide:
			w.SetWriteDeadline(time.Now().Add(3 * time.Second))
			bound, want = 5*time.Second, ErrTimeout
		}
		werr := writeUntilError(w)
		readN(t, r, 80<<10)
		// The peer credits nothing back before half its window is read: our Write has sent
		// the 256 KiB granted and waits.
		waitFor(t, func() bool { return writeWaitsForWindow(ours, w) })
		if m, ok := p.(muxSide); ok {
			waitFor(t, func() bool { return m.s.Stats().BytesReceived >= protocolWindow })
		}
		if sent := ours.Stats().BytesSent; sent != protocolWindow {
			t.Fatalf("we sent %d bytes before the close, want the %d-byte window", sent, protocolWindow)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("peer Close: %v", err)
		}
		// hashicorp/yamux: from here on the test reads nothing more from r.
		start := time.Now()
		select {
		case err := <-werr:
			t.Logf("our Write failed %v after the peer's Close: %v", time.Since(start).Round(time.Millisecond), err)
			if want != nil && !errors.Is(err, want) {
				t.Fatalf("our Write: %v, want %v", err, want)
			}
		case <-time.After(bound):
			t.Fatalf("our Write, blocked on the window the peer used up, still waits %v after the peer's Close", bound)
		}
		if _, err := ours.Ping(testCtx(t, 5*time.Second)); err != nil {
			t.Fatalf("session after the blocked Write ended: %v", err)
		}
	})
}

// TestCloseSendsQueuedFramesBeforeGoAway: Write, CloseWrite, then Session.Close while the
// FIN is still queued (the send loop is held by a hook until Close has begun). The FIN, and
// the data before it, go out before the GoAway; a peer that takes GoAway as the end of the
// session (go-yamux) would otherwise lose them.
func TestCloseSendsQueuedFramesBeforeGoAway(t *testing.T) {
	// Less than half of go-yamux's 256 KiB window: its Read fails once its session has ended
	// and a window update is due, whatever the order of the frames that ended it.
	const size = 100 << 10
	data := randomBytes(size, 7)

	// closeWithFINQueued writes data on st, holds the send loop, queues the FIN and closes
	// the session, releasing the send loop only once the session has ended.
	closeWithFINQueued := func(t *testing.T, s *Session, st *Stream) {
		t.Helper()
		if _, err := st.Write(data); err != nil {
			t.Fatalf("Write: %v", err)
		}
		// held has room for one signal, so the send loop's first stop is seen even if it
		// comes before the test waits for it (other frames, a pong, may take it there first).
		held, release := make(chan struct{}, 1), make(chan struct{})
		hook := func() {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
		s.hooks.beforeSendLoopWrite.Store(&hook)
		if err := st.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		<-held // the send loop has the FIN to write and waits in the hook
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		<-s.Done()
		s.hooks.beforeSendLoopWrite.Store(nil)
		close(release)
		<-closed
	}

	t.Run("raw-peer", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		st := acceptOne(t, s)
		closeWithFINQueued(t, s, st)
		var got []byte
		for {
			f := p.expect(5*time.Second, "stream 1's data, FIN and the GoAway", func(f rawFrame) bool {
				return f.id == 1 || f.typ == typeGoAway
			})
			if f.typ == typeGoAway {
				t.Fatalf("GoAway after %d bytes and before the FIN that CloseWrite queued", len(got))
			}
			got = append(got, f.payload...)
			if f.flags&flagFIN != 0 {
				break
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("peer got %d bytes before the FIN, want the %d written", len(got), size)
		}
		p.expect(5*time.Second, "GoAway after the FIN", isGoAway)
	})

	t.Run("mux-peer", func(t *testing.T) {
		client, server := sessionPair(t, nil, nil)
		st, err := client.Open(testCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			r, err := server.AcceptStream(context.Background())
			if err != nil {
				got <- nil
				return
			}
			got <- readAllNoting(r)
		}()
		closeWithFINQueued(t, client, st)
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("peer read %d bytes (%q at the end), want %d and EOF", len(b), tail(b), size)
		}
	})

	for _, topo := range topologies {
		t.Run("go-yamux-peer/"+topo.name, func(t *testing.T) {
			p := newLPPair(t, topo.ourClient, nil)
			st, r := openToLP(t, p)
			got := readAllAsync(r)
			closeWithFINQueued(t, p.ours, st)
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatalf("their stream read %d bytes (%q at the end), want %d and EOF", len(b), tail(b), size)
			}
		})
		t.Run("yamux-peer/"+topo.name, func(t *testing.T) {
			p := newInteropPair(t, topo.ourClient, nil, nil)
			st, err := p.ours.Open(testCtx(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			r := p.theirAccept(t, 5*time.Second) // before Close: their Accept fails once the session ends
			got := readAllAsync(r)
			closeWithFINQueued(t, p.ours, st)
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatalf("their stream read %d bytes (%q at the end), want %d and EOF", len(b), tail(b), size)
			}
		})
	}
}

// tail returns the last bytes of b: where a read-to-EOF result ends with the error text.
func tail(b []byte) []byte { return b[max(0, len(b)-80):] }

// TestWriteSucceedsWhenResetAfterLastByte: the peer reads every byte of a Write and resets
// the stream before the Write has looked at its outcome (a hook holds it there until the
// reset is in). Every byte was sent, so the Write returns (len(p), nil), not ErrStreamReset.
// hashicorp/yamux v0.1.2 has no Reset, so it is not among the peers here.
func TestWriteSucceedsWhenResetAfterLastByte(t *testing.T) {
	const size = 100 << 10
	data := randomBytes(size, 3)

	// holdUntilReset makes st's Write wait, once all its bytes went out, until st is reset.
	holdUntilReset := func(t *testing.T, s *Session) {
		hook := func(st *Stream) {
			s.mu.Lock()
			all := st.written == size && st.inflight == 0
			s.mu.Unlock()
			if all {
				waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return st.send == sendReset })
			}
		}
		s.hooks.afterWriteWait.Store(&hook)
	}

	t.Run("raw-peer", func(t *testing.T) {
		s, p := hostileServer(t, nil)
		p.start()
		p.frame(typeWindowUpdate, flagSYN, 1, nil)
		st := acceptOne(t, s)
		holdUntilReset(t, s)
		go func() {
			n := 0
			for n < size {
				select {
				case f := <-p.frames:
					if f.id == 1 && f.typ == typeData {
						n += len(f.payload)
					}
				case <-time.After(5 * time.Second):
					return // the Write's own check reports it
				}
			}
			p.trySend(rawHeader(0, uint8(typeWindowUpdate), flagRST, 1, 0))
		}()
		if n, err := st.Write(data); n != size || err != nil {
			t.Fatalf("Write = (%d, %v), want (%d, nil): every byte was sent", n, err, size)
		}
	})

	for _, topo := range topologies {
		t.Run("go-yamux-peer/"+topo.name, func(t *testing.T) {
			p := newLPPair(t, topo.ourClient, nil)
			st, r := openToLP(t, p)
			holdUntilReset(t, p.ours)
			go func() {
				io.ReadFull(r, make([]byte, size))
				r.Reset()
			}()
			if n, err := st.Write(data); n != size || err != nil {
				t.Fatalf("Write = (%d, %v), want (%d, nil): every byte was sent", n, err, size)
			}
		})
	}

	t.Run("mux-peer", func(t *testing.T) {
		client, server := sessionPair(t, nil, nil)
		st, err := client.Open(testCtx(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		holdUntilReset(t, client)
		go func() {
			r, err := server.AcceptStream(context.Background())
			if err != nil {
				return
			}
			io.ReadFull(r, make([]byte, size))
			r.Reset()
		}()
		if n, err := st.Write(data); n != size || err != nil {
			t.Fatalf("Write = (%d, %v), want (%d, nil): every byte was sent", n, err, size)
		}
	})
}

// TestReadAfterCloseSaysCloseWrite: code written for hashicorp/yamux, whose Close is a
// half-close, writes a request, calls Close and reads the reply. Here Close stops reading, so
// that Read fails, and its error says to call CloseWrite instead (it still matches
// ErrStreamClosed). Run against a hashicorp/yamux echo server, as such code would be; the
// server holds its reply until our Read has returned, the usual order (the reply is a round
// trip away). (When the reply arrives between our Close and our Read, our RST for it makes
// that Read fail with "stream reset: peer sent data after Close" instead: not tested here.)
func TestReadAfterCloseSaysCloseWrite(t *testing.T) {
	p := newInteropPair(t, true, nil, nil)
	st, err := p.ours.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		hst, err := p.theirs.AcceptStreamWithContext(testCtx(t, 5*time.Second))
		if err != nil {
			return
		}
		buf := make([]byte, len("request"))
		io.ReadFull(hst, buf)
		<-readDone
		hst.Write(buf)
		hst.Close()
	}()
	st.Close()
	_, err = st.Read(make([]byte, 16))
	close(readDone)
	<-echoed
	if !errors.Is(err, ErrStreamClosed) || !strings.Contains(err.Error(), "CloseWrite") {
		t.Fatalf("Read after Close: %v, want ErrStreamClosed naming CloseWrite", err)
	}
}

// TestBlockedCallsEnd: blocked Read and Write return promptly with a non-EOF error when the
// stream is reset, the session closes, or the connection drops.
func TestBlockedCallsEnd(t *testing.T) {
	cases := []struct {
		name string
		do   func(client, server *Session, cst, sst *Stream, cconn net.Conn)
		is   error
	}{
		{"peer-reset", func(_, _ *Session, _, sst *Stream, _ net.Conn) { sst.Reset() }, ErrStreamReset},
		{"local-reset", func(_, _ *Session, cst, _ *Stream, _ net.Conn) { cst.Reset() }, ErrStreamReset},
		{"session-close", func(client, _ *Session, _, _ *Stream, _ net.Conn) { client.Close() }, ErrSessionClosed},
		{"peer-session-close", func(_, server *Session, _, _ *Stream, _ net.Conn) { server.Close() }, ErrSessionClosed},
		{"conn-drop", func(_, _ *Session, _, _ *Stream, c net.Conn) { c.Close() }, ErrSessionClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := tcpPair(t)
			client, _ := Client(cc, testConfig())
			server, _ := Server(sc, testConfig())
			defer func() {
				client.Close()
				server.Close()
				client.Wait()
				server.Wait()
			}()
			ctx := testCtx(t, 10*time.Second)
			cst, err := client.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cst.Write([]byte("x"))
			sst, err := server.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A reader blocked on an empty stream, and a writer blocked on a full window.
			readErr := make(chan error, 1)
			go func() {
				_, err := cst.Read(make([]byte, 10))
				readErr <- err
			}()
			writeErr := make(chan error, 1)
			go func() {
				_, err := cst.Write(make([]byte, 2*initialWindow))
				writeErr <- err
			}()
			waitFor(t, func() bool { return readWaits(client, cst) && writeWaitsForWindow(client, cst) })
			start := time.Now()
			tc.do(client, server, cst, sst, cc)
			for _, c := range []chan error{readErr, writeErr} {
				select {
				case err := <-c:
					if err == nil || err == io.EOF || !errors.Is(err, tc.is) {
						t.Fatalf("blocked call returned %v, want %v", err, tc.is)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("blocked call did not return")
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("blocked calls took %v to return", d)
			}
		})
	}
}

// TestHostileBlockedCallsEnd: against a raw peer, a Read blocked on an empty stream and a
// Write blocked on an exhausted window both return well under a second, with a non-EOF error
// of the right kind, whatever ends them (an RST, the peer hanging up, GoAway with an error
// code, a protocol error on another stream, a keepalive timeout). TestBlockedCallsEnd checks
// the same against a mux peer, TestBlockedCallsEndAcrossPeers against every peer.
func TestHostileBlockedCallsEnd(t *testing.T) {
	cases := []struct {
		name    string
		cfg     func(*Config)
		trigger func(p *rawPeer)
		want    []error // errors.Is targets for both calls
		wantAs  func(error) bool
	}{
		{name: "peer-RST", trigger: func(p *rawPeer) { p.frame(typeWindowUpdate, flagRST, 1, nil) },
			want: []error{ErrStreamReset}},
		{name: "peer-hangs-up", trigger: func(p *rawPeer) { p.conn.Close() },
			want: []error{ErrSessionClosed}},
		{name: "peer-GoAway-2", trigger: func(p *rawPeer) { p.send(rawHeader(0, uint8(typeGoAway), 0, 0, 2)) },
			want: []error{ErrSessionClosed}, wantAs: func(err error) bool { var g *GoAwayError; return errors.As(err, &g) }},
		{name: "protocol-error-elsewhere", trigger: func(p *rawPeer) { p.send(rawHeader(0, 7, 0, 0, 0)) },
			want: []error{ErrSessionClosed}, wantAs: func(err error) bool { var pe *ProtocolError; return errors.As(err, &pe) }},
		{name: "keepalive-timeout", cfg: func(c *Config) {
			c.EnableKeepAlive, c.KeepAliveInterval, c.KeepAliveTimeout = true, 300*time.Millisecond, 200*time.Millisecond
		}, trigger: func(p *rawPeer) {}, want: []error{ErrSessionClosed, ErrKeepAliveTimeout}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hostileConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			s, p := hostileServer(t, cfg)
			p.start()
			p.frame(typeWindowUpdate, flagSYN, 1, nil)
			st := acceptOne(t, s)
			readErr, writeErr := blockReadAndWrite(t, s, st, initialWindow)
			start := time.Now()
			tc.trigger(p)
			limit := time.Second
			if tc.cfg != nil { // keepalive: the trigger is the silence itself
				limit = cfg.KeepAliveInterval + cfg.KeepAliveTimeout + time.Second
			}
			for _, c := range []struct {
				what string
				ch   chan error
			}{{"Read", readErr}, {"Write", writeErr}} {
				select {
				case err := <-c.ch:
					if err == nil || err == io.EOF {
						t.Fatalf("blocked %s returned %v", c.what, err)
					}
					for _, w := range tc.want {
						if !errors.Is(err, w) {
							t.Fatalf("blocked %s returned %v, want it to match %v", c.what, err, w)
						}
					}
					if tc.wantAs != nil && !tc.wantAs(err) {
						t.Fatalf("blocked %s returned %v (%T), not the expected type", c.what, err, err)
					}
				case <-time.After(limit + 2*time.Second):
					t.Fatalf("blocked %s still blocked", c.what)
				}
			}
			if d := time.Since(start); d > limit {
				t.Errorf("blocked calls returned after %v, want within %v", d, limit)
			}
		})
	}
}

// TestBlockedCallsEndAcrossPeers: our Read blocked on an empty stream and our Write blocked on
// the peer's used-up window return promptly with a non-EOF error of the right kind, whatever
// ends them, against every peer that can end them that way: our own Reset or session Close,
// the peer's session Close (a peer that closes its session sends no FIN for its streams, so EOF
// would be a lie), the peer's Reset (not hashicorp/yamux, which has none), hashicorp/yamux's
// close timer (its RST after its Close), and not the peer's GoAway 0, which leaves existing
// streams alone.
// TestBlockedCallsEnd and TestHostileBlockedCallsEnd check the same against a mux peer (also
// a dropped connection) and a raw peer (also protocol errors and a keepalive timeout).
func TestBlockedCallsEndAcrossPeers(t *testing.T) {
	const closeTimeout = 200 * time.Millisecond // hashicorp/yamux's, for its close-timeout RST
	cases := []struct {
		name    string
		kinds   []peerKind
		trigger func(ours *Session, p peer, ost *Stream, pst net.Conn)
		want    error
		eofRead bool          // the peer sent FIN first: EOF is right for the Read
		extra   time.Duration // how much later than 1 s the calls may return
	}{
		{"local-reset", allPeers, func(_ *Session, _ peer, ost *Stream, _ net.Conn) { ost.Reset() }, ErrStreamReset, false, 0},
		{"local-session-close", allPeers, func(ours *Session, _ peer, _ *Stream, _ net.Conn) { ours.Close() }, ErrSessionClosed, false, 0},
		{"peer-session-close", allPeers, func(_ *Session, p peer, _ *Stream, _ net.Conn) { p.Close() }, ErrSessionClosed, false, 0},
		// hashicorp/yamux has no Reset.
		{"peer-reset", append([]peerKind{muxPeer}, lpPeers...), func(_ *Session, _ peer, _ *Stream, pst net.Conn) {
			pst.(interface{ Reset() error }).Reset()
		}, ErrStreamReset, false, 0},
		// hashicorp/yamux's Close is a half-close; its close timer then resets the stream.
		{"peer-close-timeout-RST", yamuxPeers, func(_ *Session, _ peer, _ *Stream, pst net.Conn) { pst.Close() },
			ErrStreamReset, true, closeTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := peerOpts{yamux: func(c *yamux.Config) { c.StreamCloseTimeout = closeTimeout }}
			forEachPeer(t, tc.kinds, o, func(t *testing.T, ours *Session, p peer) {
				ost, pst := openToPeer(t, ours, p)
				readErr, writeErr := blockReadAndWrite(t, ours, ost, protocolWindow)
				// The peer's GoAway 0 is not an end for existing streams. A ping round trip
				// started after it is answered after it, so our side has seen it when the Ping
				// returns.
				if err := p.(interface{ GoAway() error }).GoAway(); err != nil {
					t.Fatal(err)
				}
				if _, err := ours.Ping(testCtx(t, 5*time.Second)); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-readErr:
					t.Fatalf("Read ended by the peer's GoAway 0: %v", err)
				case err := <-writeErr:
					t.Fatalf("Write ended by the peer's GoAway 0: %v", err)
				default:
				}
				start := time.Now()
				tc.trigger(ours, p, ost, pst)
				limit := time.Second + tc.extra
				for _, c := range []struct {
					what string
					ch   chan error
				}{{"Read", readErr}, {"Write", writeErr}} {
					select {
					case err := <-c.ch:
						if c.what == "Read" && tc.eofRead && err == io.EOF {
							continue
						}
						if err == nil || err == io.EOF || !errors.Is(err, tc.want) {
							t.Fatalf("blocked %s returned %v, want %v", c.what, err, tc.want)
						}
					case <-time.After(limit + 2*time.Second):
						t.Fatalf("blocked %s still blocked", c.what)
					}
				}
				if d := time.Since(start); d > limit {
					t.Errorf("blocked calls returned after %v, want within %v", d, limit)
				}
			})
		})
	}
}

// readAllNoting reads r to its end; an error other than EOF is appended to what was
// read, so a comparison with the expected bytes shows it.
func readAllNoting(r io.Reader) []byte {
	b, err := io.ReadAll(r)
	if err != nil {
		b = append(b, " then "+err.Error()...)
	}
	return b
}

// readAllAsync is readAllNoting in a goroutine of its own; the result comes on the channel.
func readAllAsync(r io.Reader) <-chan []byte {
	got := make(chan []byte, 1)
	go func() { got <- readAllNoting(r) }()
	return got
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
	// A stream opened after st2 and never ACKed: once its open timer has reset it, st2's,
	// started earlier, would have fired too.
	st3, err := s.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.expect(5*time.Second, "RST for the later un-ACKed stream", isRST(st3.ID()))
	p.frame(typeData, 0, st2.ID(), []byte("late but fine"))
	buf := make([]byte, 13)
	st2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(st2, buf); err != nil || string(buf) != "late but fine" {
		t.Fatalf("ACKed stream read %q, %v", buf, err)
	}
	st2.Reset()
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

// TestHalfCloseAcrossPeers: a FIN ends only one direction, both ways, against every peer. Our
// CloseWrite makes their Read return EOF while they keep writing and we keep reading (our Write
// after CloseWrite fails with ErrStreamClosed, which matches net.ErrClosed); their half-close
// (CloseWrite, or Close on hashicorp/yamux) makes our Read return EOF while we keep writing and
// they keep reading. Both streams are then freed on both sides.
func TestHalfCloseAcrossPeers(t *testing.T) {
	forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 10*time.Second)
		reply := randomBytes(1<<20, 7)

		// Our CloseWrite → their EOF; they answer afterwards.
		ost, err := ours.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ost.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		if err := ost.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := ost.Write([]byte("more")); !errors.Is(err, ErrStreamClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after CloseWrite: %v, want ErrStreamClosed (net.ErrClosed)", err)
		}
		pst := acceptPeer(t, p)
		pst.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(pst)
		if err != nil || string(got) != "request" {
			t.Fatalf("their read %q, %v; want request then EOF", got, err)
		}
		go func() {
			pst.Write(reply)
			peerHalfClose(pst)
		}()
		ost.SetReadDeadline(time.Now().Add(10 * time.Second))
		back, err := io.ReadAll(ost)
		if err != nil || !bytes.Equal(back, reply) {
			t.Fatalf("our read after CloseWrite: %d bytes, %v", len(back), err)
		}
		if _, err := ost.Write([]byte("x")); !errors.Is(err, ErrStreamClosed) {
			t.Fatalf("Write after CloseWrite: %v, want ErrStreamClosed", err)
		}
		ost.Close()

		// Their half-close (FIN) → our EOF; we answer afterwards.
		pst2, err := p.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pst2.Write([]byte("their request"))
		peerHalfClose(pst2)
		ost2, err := ours.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ost2.SetDeadline(time.Now().Add(10 * time.Second))
		got, err = io.ReadAll(ost2)
		if err != nil || string(got) != "their request" {
			t.Fatalf("our read %q, %v", got, err)
		}
		go func() {
			ost2.Write(reply)
			ost2.CloseWrite()
		}()
		pst2.SetDeadline(time.Now().Add(10 * time.Second))
		back, err = io.ReadAll(pst2)
		if err != nil || !bytes.Equal(back, reply) {
			t.Fatalf("their read after their half-close: %d bytes, %v", len(back), err)
		}
		waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
	})
}

// TestResetAcrossPeers: our Reset reaches every peer, on a stream either side opened: their
// blocked Read and their later Write fail with their reset error, our Read fails with
// ErrStreamReset, and the stream is freed on both sides; the sessions stay up. (The peer's
// Reset reaching us: TestBlockedCallsEndAcrossPeers.)
func TestResetAcrossPeers(t *testing.T) {
	forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		for _, weOpen := range []bool{true, false} {
			ost, pst := openEitherWay(t, ours, p, !weOpen)
			buf := make([]byte, 2)
			pst.SetDeadline(time.Now().Add(5 * time.Second))
			ost.SetDeadline(time.Now().Add(5 * time.Second))
			if weOpen {
				ost.Write([]byte("hi"))
				io.ReadFull(pst, buf)
			} else {
				pst.Write([]byte("hi"))
				io.ReadFull(ost, buf)
			}
			readErr := make(chan error, 1)
			go func() {
				_, err := pst.Read(buf) // blocks: nothing more is coming
				readErr <- err
			}()
			// Their Read may or may not be blocked yet when the RST arrives (nothing here can see
			// into another implementation); it must fail with their reset error either way.
			ost.Reset()
			select {
			case err := <-readErr:
				if !isPeerReset(err) {
					t.Fatalf("their blocked Read after our Reset: %v, want their reset error", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("their Read still blocked after our Reset")
			}
			if _, err := pst.Write([]byte("late")); !isPeerReset(err) {
				t.Fatalf("their Write after our Reset: %v, want their reset error", err)
			}
			if _, err := ost.Read(buf); !errors.Is(err, ErrStreamReset) {
				t.Fatalf("our Read after our Reset: %v", err)
			}
			pst.Close()
			waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
		}
		if ours.Err() != nil || peerEnded(p) {
			t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
		}
	})
}

// TestYamuxCloseTimeoutRSTReachesUs: hashicorp/yamux closes (FIN) and we never send FIN; after
// its StreamCloseTimeout it sends RST, and our Write learns it (a remote *StreamError); the
// stream is freed on both sides and the sessions stay up. (Its other RST, for SYNs past its
// backlog: TestPeerRefusalAcrossPeers.)
func TestYamuxCloseTimeoutRSTReachesUs(t *testing.T) {
	o := peerOpts{yamux: func(c *yamux.Config) { c.StreamCloseTimeout = 200 * time.Millisecond }}
	forEachPeer(t, yamuxPeers, o, func(t *testing.T, ours *Session, p peer) {
		resets := ours.Stats().ResetsReceived
		ost, pst := openToPeer(t, ours, p)
		ost.Write([]byte("hi"))
		pst.Close()
		ost.SetDeadline(time.Now().Add(5 * time.Second))
		// They sent nothing but FIN: we read EOF.
		if b, err := io.ReadAll(ost); err != nil || len(b) != 0 {
			t.Fatalf("our read before their RST: %q, %v", b, err)
		}
		waitFor(t, func() bool { return ours.Stats().ResetsReceived > resets }) // their RST
		_, werr := ost.Write([]byte("still writing"))
		var se *StreamError
		if !errors.As(werr, &se) || !se.Remote || !errors.Is(werr, ErrStreamReset) {
			t.Fatalf("our Write after their close timeout: %v, want a remote *StreamError", werr)
		}
		waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
		if ours.Err() != nil || peerEnded(p) {
			t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
		}
	})
}

// TestWriteThenCloseAcrossPeers: bytes for which our Write returned reach the peer even when
// we close the stream and the whole session right after: the peer reads every byte
// (checksummed), four streams at once, sizes from 1 byte to 4 MiB. go-yamux is not among the
// peers: it takes our GoAway as the end of its session, after which its AcceptStream fails
// (streams not yet accepted are lost) and so does a Read once a window update is due (bytes
// that did arrive are lost); TestCloseSendsQueuedFramesBeforeGoAway checks it within one
// window on a stream it has accepted.
func TestWriteThenCloseAcrossPeers(t *testing.T) {
	forEachPeer(t, append([]peerKind{muxPeer}, yamuxPeers...), peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 20*time.Second)
		const streams = 4
		sizes := []int{1, 100 << 10, 1 << 20, 4 << 20}
		results := make(chan error, 2*streams)
		for range streams {
			go func() {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				pst, err := p.Accept(actx)
				if err != nil {
					results <- err
					return
				}
				// Accept order among these goroutines is arbitrary: the stream ID says
				// which Open (1, 3, 5, 7 or 2, 4, 6, 8) this stream is.
				i := int((streamID(pst) - 1) / 2)
				want := sha256Of(randomBytes(sizes[i], uint64(50+i)))
				pst.SetReadDeadline(time.Now().Add(15 * time.Second))
				n, sum, err := sumReader(pst)
				if n == int64(sizes[i]) && sum == want {
					// Every byte arrived. hashicorp/yamux's Read can still fail after the
					// last bytes: it returns the error of the window update it sends, and
					// their session closes its connection once ours is closed.
					err = nil
				} else if err == nil {
					err = fmt.Errorf("peer got %d of %d bytes, checksum match %v", n, sizes[i], sum == want)
				}
				results <- err
			}()
		}
		var wg sync.WaitGroup
		for i := range streams {
			st, err := ours.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.Write(randomBytes(sizes[i], uint64(50+i))); err != nil {
					results <- fmt.Errorf("our Write: %w", err)
				}
				st.Close()
			}()
		}
		wg.Wait()
		ours.Close()
		for range streams {
			if err := <-results; err != nil {
				t.Error(err)
			}
		}
	})
}

// TestDataAfterCloseGetsRSTAcrossPeers: data arriving after our full Close is answered with
// RST, so the peer's writer fails promptly with its reset error, on a stream either side
// opened; the session goes on and the stream is freed on both sides.
func TestDataAfterCloseGetsRSTAcrossPeers(t *testing.T) {
	forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		for _, weOpen := range []bool{true, false} {
			ost, pst := openEitherWay(t, ours, p, !weOpen)
			pst.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := pst.Write([]byte("hello")); err != nil {
				t.Fatalf("their Write before our Close: %v", err)
			}
			ost.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 5)
			if _, err := io.ReadFull(ost, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("our read %q, %v", buf, err)
			}
			ost.Close()
			// Their next writes are answered with RST; those sent before it arrives succeed.
			var werr error
			waitFor(t, func() bool {
				_, werr = pst.Write([]byte("anyone there?"))
				return werr != nil
			})
			if !isPeerReset(werr) {
				t.Fatalf("their Write after our Close: %v, want their reset error", werr)
			}
			pst.Close()
			waitFor(t, func() bool { return ours.NumStreams() == 0 && peerStreams(p) == 0 })
		}
		if ours.Err() != nil || peerEnded(p) {
			t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
		}
	})
}

// chaosOpens is how many streams each side opens in TestChaosAcrossPeers, with at most
// chaosLive of its own running at once.
const (
	chaosOpens = 400
	chaosLive  = 128
)

// TestChaosAcrossPeers: against every peer, both sides open streams concurrently and do random
// things on them (write, half-close, reset, full close, read part or all, deadlines) while the
// other side does the same; then the client's session closes mid-traffic. Nothing may panic or hang: every
// goroutine returns within a few seconds of the close, and our session ends with an error
// matching ErrSessionClosed.
func TestChaosAcrossPeers(t *testing.T) {
	for _, k := range allPeers {
		t.Run(k.name, func(t *testing.T) {
			ocfg := interopConfig()
			ocfg.AcceptBacklog = 16
			ocfg.StreamCloseTimeout = 300 * time.Millisecond
			o := peerOpts{ours: ocfg, mux: ocfg,
				// hashicorp/yamux's close timer must not fire during the chaos: v0.1.2's
				// closeTimeout marks the stream closed before removing it from the session, and
				// a FIN of ours arriving in between kills their session ("unexpected FIN flag in
				// state 6"). Ours (300 ms) keeps firing.
				yamux: func(c *yamux.Config) { c.StreamCloseTimeout = 10 * time.Second },
			}
			ours, p := startPeer(t, k, o)
			// theirOps are the half-close and reset of a peer stream (hashicorp/yamux has
			// neither: its Close, a half-close, stands for both).
			theirOps := func(c net.Conn) (closeWrite, reset func() error) {
				closeWrite = func() error { return peerHalfClose(c) }
				reset = c.Close
				if r, ok := c.(interface{ Reset() error }); ok {
					reset = r.Reset
				}
				return closeWrite, reset
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			// chaos drives one stream with ops picked from seed.
			chaos := func(c net.Conn, seed uint64, closeWrite, reset func() error) {
				defer wg.Done()
				defer c.Close()
				r := randomBytes(8, seed)
				c.SetDeadline(time.Now().Add(time.Duration(50+int(r[0])*4) * time.Millisecond))
				payload := randomBytes(int(r[1])<<10, seed)
				switch r[2] % 6 {
				case 0: // write all, half-close, read all
					c.Write(payload)
					closeWrite()
					io.Copy(io.Discard, c)
				case 1: // write, reset
					c.Write(payload[:len(payload)/2])
					reset()
				case 2: // read a little, close
					c.Read(make([]byte, 10))
				case 3: // write concurrently with reading
					go c.Write(payload)
					io.Copy(io.Discard, c)
				case 4: // reset at once
					reset()
				case 5: // read everything, then write
					io.Copy(io.Discard, c)
					c.Write(payload)
				}
			}
			for i := range 2 { // acceptors
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i == 0 {
						for {
							st, err := ours.AcceptStream(ctx)
							if err != nil {
								return
							}
							wg.Add(1)
							go chaos(st, uint64(st.ID()), st.CloseWrite, st.Reset)
						}
					}
					for {
						st, err := p.Accept(ctx)
						if err != nil {
							return
						}
						wg.Add(1)
						cw, rst := theirOps(st)
						go chaos(st, uint64(streamID(st))+1<<40, cw, rst)
					}
				}()
			}
			// Each opener opens chaosOpens streams, at most chaosLive of its own running at
			// once: a slot is taken before an Open and given back when its chaos ends.
			var openers sync.WaitGroup
			for i := range 2 {
				wg.Add(1)
				openers.Add(1)
				live := make(chan struct{}, chaosLive)
				chaosSlot := func(c net.Conn, seed uint64, closeWrite, reset func() error) {
					defer func() { <-live }()
					chaos(c, seed, closeWrite, reset)
				}
				go func() {
					defer wg.Done()
					defer openers.Done()
					for j := 0; j < chaosOpens && ctx.Err() == nil; j++ {
						select {
						case live <- struct{}{}:
						case <-ctx.Done():
							return
						}
						if i == 0 {
							st, err := ours.Open(ctx)
							if err != nil {
								if ctx.Err() == nil {
									t.Errorf("our Open during the chaos: %v", err)
								}
								return
							}
							wg.Add(1)
							go chaosSlot(st, uint64(j)<<20, st.CloseWrite, st.Reset)
						} else {
							st, err := p.Open(ctx)
							if err != nil {
								if ctx.Err() == nil {
									t.Errorf("their Open during the chaos: %v", err)
								}
								return
							}
							wg.Add(1)
							cw, rst := theirOps(st)
							go chaosSlot(st, uint64(j)<<21+1, cw, rst)
						}
					}
				}()
			}
			// The last streams' chaos is still running when the openers are done.
			waitAllWithin(t, &openers, 30*time.Second, "the openers did not open their streams")
			if err := ours.Err(); err != nil {
				t.Errorf("our session ended during the chaos: %v", err)
			}
			if peerEnded(p) {
				t.Errorf("their session ended during the chaos")
			}
			opened := ours.Stats().StreamsOpened + ours.Stats().StreamsAccepted
			cancel()
			if k.ourClient {
				ours.Close()
			} else {
				p.Close()
			}
			waitAllWithin(t, &wg, 10*time.Second, "goroutines still running after the sessions closed")
			select {
			case <-ours.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("our session did not end after the close")
			}
			if !errors.Is(ours.Err(), ErrSessionClosed) {
				t.Fatalf("our session error %v", ours.Err())
			}
			if opened < 10 {
				st := ours.Stats()
				t.Errorf("only %d streams in the chaos (opened %d, accepted %d, refused %d)", opened, st.StreamsOpened, st.StreamsAccepted, st.StreamsRefused)
			}
		})
	}
}

func TestCloseTimeoutResets(t *testing.T) {
	cfg := testConfig()
	cfg.StreamCloseTimeout = 100 * time.Millisecond
	client, server := sessionPair(t, cfg, nil)
	ctx := testCtx(t, 10*time.Second)
	st, _ := client.Open(ctx)
	st.Write([]byte("x"))
	sst, _ := server.AcceptStream(ctx)
	st.Close() // the server never closes its side
	// Both ends forget the stream: the client after its timer, the server on the RST.
	waitFor(t, func() bool { return client.NumStreams() == 0 && server.NumStreams() == 0 })
	if _, err := io.ReadAll(sst); !errors.Is(err, ErrStreamReset) {
		t.Fatalf("peer of a timed-out close: %v, want ErrStreamReset", err)
	}
}

// blockReadAndWrite starts a Read of st and a Write of one byte more than window, and returns
// their errors' channels once the Write has used up the window and waits for more, and the
// Read waits for data.
func blockReadAndWrite(t *testing.T, s *Session, st *Stream, window int) (readErr, writeErr chan error) {
	t.Helper()
	readErr, writeErr = make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 10))
		readErr <- err
	}()
	go func() {
		_, err := st.Write(make([]byte, window+1))
		writeErr <- err
	}()
	waitFor(t, func() bool { return writeWaitsForWindow(s, st) && readWaits(s, st) })
	return readErr, writeErr
}
