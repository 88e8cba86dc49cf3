package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	lp "github.com/libp2p/go-yamux/v5"
)

// The tests in this file check how streams and sessions end, each against every peer that has
// the behaviour: a scripted raw peer (frames checked on the wire), a mux peer, hashicorp/yamux
// and go-yamux. Interleavings are forced with the session's test hooks or by waiting for
// a state, never by sleeping.

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
		held, release := make(chan struct{}), make(chan struct{})
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
// ErrStreamClosed). Run against a hashicorp/yamux echo server, as such code would be.
func TestReadAfterCloseSaysCloseWrite(t *testing.T) {
	p := newInteropPair(t, true, nil, nil)
	go hcEcho(p.theirs)
	st, err := p.ours.Open(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = st.Read(make([]byte, 16))
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
// the same against a mux peer, TestInteropBlockedCallsEnd against hashicorp/yamux.
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
			readErr, writeErr := make(chan error, 1), make(chan error, 1)
			go func() {
				_, err := st.Read(make([]byte, 10))
				readErr <- err
			}()
			go func() {
				_, err := st.Write(make([]byte, initialWindow+1)) // one byte more than the window
				writeErr <- err
			}()
			// Wait until the Write has used up the window and waits, and the Read waits.
			waitFor(t, func() bool { return writeWaitsForWindow(s, st) && readWaits(s, st) })
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

// TestInteropBlockedCallsEnd (TestHostileBlockedCallsEnd against HC): our Read blocked on an
// empty stream and our Write blocked on HC's exhausted window return well under a second with
// a non-EOF error when HC closes its session (HC sends no FIN for its streams then, so EOF would be a lie) or
// when HC times out our half-closed stream with RST; HC's GoAway 0 does not end them.
func TestInteropBlockedCallsEnd(t *testing.T) {
	cases := []struct {
		name    string
		trigger func(p *interopPair, hst *yamux.Stream)
		want    error
	}{
		{"their-session-close", func(p *interopPair, _ *yamux.Stream) { p.theirs.Close() }, ErrSessionClosed},
		{"their-close-timeout-RST", func(_ *interopPair, hst *yamux.Stream) { hst.Close() }, ErrStreamReset},
	}
	for _, top := range topologies {
		for _, tc := range cases {
			t.Run(top.name+"/"+tc.name, func(t *testing.T) {
				hcfg := hcConfig()
				hcfg.StreamCloseTimeout = 200 * time.Millisecond
				p := newInteropPair(t, top.ourClient, nil, hcfg)
				ctx := testCtx(t, 10*time.Second)
				ost, err := p.ours.Open(ctx)
				if err != nil {
					t.Fatal(err)
				}
				hst := p.theirAccept(t, 5*time.Second)
				readErr, writeErr := make(chan error, 1), make(chan error, 1)
				go func() {
					_, err := ost.Read(make([]byte, 10))
					readErr <- err
				}()
				go func() {
					_, err := ost.Write(make([]byte, initialWindow+1))
					writeErr <- err
				}()
				waitFor(t, func() bool { return p.ours.Stats().BytesSent >= initialWindow })
				// HC's GoAway 0 is not an end for existing streams.
				if err := p.theirs.GoAway(); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-readErr:
					t.Fatalf("Read ended by GoAway 0: %v", err)
				case err := <-writeErr:
					t.Fatalf("Write ended by GoAway 0: %v", err)
				case <-time.After(100 * time.Millisecond):
				}
				start := time.Now()
				tc.trigger(p, hst)
				limit := time.Second
				if tc.want == ErrStreamReset {
					limit += hcfg.StreamCloseTimeout
				}
				for _, c := range []struct {
					what string
					ch   chan error
				}{{"Read", readErr}, {"Write", writeErr}} {
					select {
					case err := <-c.ch:
						if c.what == "Read" && tc.want == ErrStreamReset && err == io.EOF {
							// HC's Close sends FIN first: EOF is right for the Read here.
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
		}
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
