package mux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/yamux"
	lp "github.com/libp2p/go-yamux/v5"
)

// The tests in this file protect keepalive and GoAway: pings are answered and measured
// against every peer, keepalive pings from either side never end a live session, a silent peer
// is cut off after interval + timeout, GoAway with code 0 stops new streams in both
// directions while existing ones go on, and a peer's Close (GoAway, then hang up) is an
// orderly end while a dropped connection is not.

// TestHostileKeepAlive: a silent peer is cut off interval + timeout after the session starts,
// with ErrKeepAliveTimeout; a peer that keeps sending data (and never answers pings) is not.
// Both run on the fake clock of a testing/synctest bubble, so the times are exact.
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
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			s, p := hostilePipeServer(t, cfg())
			p.start()
			<-s.Done()
			// A ping one interval after the start, then the timeout with nothing heard.
			if d := time.Since(start); d != interval+timeout {
				t.Errorf("silent peer cut off after %v, want %v", d, interval+timeout)
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
	})
	t.Run("busy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, p := hostilePipeServer(t, cfg())
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
			// A frame every 50 ms, for four times what a silent peer gets.
			sent := 0
			for range 4 * (interval + timeout) / (50 * time.Millisecond) {
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
	})
}

// TestHostileKeepAliveSlowFrame: a peer that sends one large Data frame slowly but steadily
// (1 KiB every 25 ms, 64 KiB in all, 1.6 s at interval 300 ms + timeout 500 ms) is alive:
// bytes keep arriving, only the frame is long. The session must not end with
// ErrKeepAliveTimeout, and the frame's bytes must all reach the reader. It runs on the fake
// clock of a testing/synctest bubble.
func TestHostileKeepAliveSlowFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := hostileConfig()
		cfg.EnableKeepAlive = true
		cfg.KeepAliveInterval = 300 * time.Millisecond
		cfg.KeepAliveTimeout = 500 * time.Millisecond
		s, p := hostilePipeServer(t, cfg)
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
		if n := <-got; n != 64<<10 {
			t.Fatalf("read %d bytes, want %d", n, 64<<10)
		}
	})
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
		// The frame counter moves before the core acts on the frame: wait for the GoAway
		// itself.
		waitFor(t, s.remoteGoAwaySeen)
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

// TestPingAcrossPeers: pings both ways return a round-trip time against every peer, and ours
// feed RTT and Stats().RTT.
func TestPingAcrossPeers(t *testing.T) {
	forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 10*time.Second)
		for range 5 {
			rtt, err := ours.Ping(ctx)
			if err != nil {
				t.Fatalf("our Ping: %v", err)
			}
			if rtt <= 0 || rtt > 2*time.Second {
				t.Fatalf("our Ping RTT %v", rtt)
			}
			prtt, err := peerPing(p)
			if err != nil {
				t.Fatalf("their Ping: %v", err)
			}
			if prtt <= 0 || prtt > 2*time.Second {
				t.Fatalf("their Ping RTT %v", prtt)
			}
		}
		if ours.Stats().RTT <= 0 || ours.RTT() <= 0 {
			t.Fatalf("RTT not recorded after pings: Stats().RTT %v, RTT() %v", ours.Stats().RTT, ours.RTT())
		}
	})
}

// TestGoAwayKeepsExistingStreams: GoAway with code 0 means "no new streams", both ways; existing
// streams go on in both directions (more than a window each way, so window updates flow after
// the GoAway) and neither session ends. The peer's GoAway runs against every peer; ours not
// against go-yamux, which takes any GoAway it receives as the end of its session.
func TestGoAwayKeepsExistingStreams(t *testing.T) {
	t.Run("theirs", func(t *testing.T) {
		forEachPeer(t, allPeers, peerOpts{}, func(t *testing.T, ours *Session, p peer) {
			ctx := testCtx(t, 10*time.Second)
			ost, pst := openToPeer(t, ours, p)
			ost.Write([]byte("before"))
			pst.Write([]byte("before"))
			if err := p.(interface{ GoAway() error }).GoAway(); err != nil {
				t.Fatal(err)
			}
			if m, ok := p.(muxSide); ok {
				if _, err := m.s.Open(ctx); !errors.Is(err, ErrLocalGoAway) {
					t.Fatalf("the mux peer's Open after its own GoAway: %v, want ErrLocalGoAway", err)
				}
			}
			// A ping round trip would not order it: go-yamux queues GoAway behind data and
			// sends pongs ahead of both.
			waitFor(t, ours.remoteGoAwaySeen)
			if _, err := ours.Open(ctx); !errors.Is(err, ErrRemoteGoAway) {
				t.Fatalf("our Open after their GoAway: %v, want ErrRemoteGoAway", err)
			}
			checkStreamBothWays(t, ost, pst)
			if ours.Err() != nil || peerEnded(p) {
				t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
			}
		})
	})
	t.Run("ours", func(t *testing.T) {
		forEachPeer(t, append([]peerKind{muxPeer}, yamuxPeers...), peerOpts{}, func(t *testing.T, ours *Session, p peer) {
			ctx := testCtx(t, 10*time.Second)
			pst, ost := openFromPeer(t, ours, p)
			pst.Write([]byte("before"))
			ost.Write([]byte("before"))
			if err := ours.GoAway(); err != nil {
				t.Fatal(err)
			}
			if _, err := peerPing(p); err != nil { // our GoAway goes out before the pong
				t.Fatal(err)
			}
			if _, err := p.Open(ctx); !errors.Is(err, ErrRemoteGoAway) && !errors.Is(err, yamux.ErrRemoteGoAway) {
				t.Fatalf("their Open after our GoAway: %v, want their ErrRemoteGoAway", err)
			}
			if _, err := ours.Open(ctx); !errors.Is(err, ErrLocalGoAway) {
				t.Fatalf("our Open after our GoAway: %v, want ErrLocalGoAway", err)
			}
			// (A SYN sent despite our GoAway is answered with RST: TestHostileGoAway.)
			checkStreamBothWays(t, ost, pst)
			if ours.Err() != nil || peerEnded(p) {
				t.Fatalf("a session ended: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
			}
		})
	})
}

// checkStreamBothWays reads the "before" each side wrote, moves more than a window each way on
// an existing stream pair, then closes it.
func checkStreamBothWays(t *testing.T, ost *Stream, pst net.Conn) {
	t.Helper()
	ost.SetDeadline(time.Now().Add(5 * time.Second))
	pst.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 6)
	for _, c := range []net.Conn{ost, pst} {
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "before" {
			t.Fatalf("read %q, %v", buf, err)
		}
	}
	big := randomBytes(600<<10, 3) // more than a window: needs window updates after GoAway
	go func() {
		pst.Write(big)
		peerHalfClose(pst)
	}()
	if got, err := io.ReadAll(ost); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("our read after GoAway: %d bytes, %v", len(got), err)
	}
	go func() {
		ost.Write(big)
		ost.CloseWrite()
	}()
	if got, err := io.ReadAll(pst); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("their read after GoAway: %d bytes, %v", len(got), err)
	}
	ost.Close()
	pst.Close()
}

// keepAliveIdleFrames is how many frames TestKeepAliveAcrossPeers waits for while idle: the
// peer pings every 50 ms and ours, hearing those, does not ping, so 24 pings take 1.2 s, more
// than the 1 s keepalive timeout of either side.
const keepAliveIdleFrames = 24

// TestKeepAliveAcrossPeers: the peer's keepalive pings every 50 ms (hashicorp/yamux and
// go-yamux, reply timeout 1 s; a mux peer at 50 ms with a 1 s timeout) and ours (interval
// 100 ms, timeout 1 s) run during idle periods longer than either timeout and during a 4 MiB
// echo; neither side ends the session.
func TestKeepAliveAcrossPeers(t *testing.T) {
	ocfg := func(interval time.Duration) *Config {
		c := interopConfig()
		c.EnableKeepAlive = true
		c.KeepAliveInterval = interval
		c.KeepAliveTimeout = time.Second
		return c
	}
	o := peerOpts{
		ours: ocfg(100 * time.Millisecond),
		mux:  ocfg(50 * time.Millisecond),
		yamux: func(c *yamux.Config) {
			c.EnableKeepAlive = true
			c.KeepAliveInterval = 50 * time.Millisecond
			c.ConnectionWriteTimeout = time.Second
		},
		goyamux: func(c *lp.Config) {
			c.EnableKeepAlive = true
			c.KeepAliveInterval = 50 * time.Millisecond
			c.ConnectionWriteTimeout = time.Second
		},
	}
	forEachPeer(t, allPeers, o, func(t *testing.T, ours *Session, p peer) {
		ctx := testCtx(t, 20*time.Second)
		go peerEcho(ctx, p)

		// Idle past both keepalive timeouts (the behaviour under test): until a timeout's worth
		// of the peer's pings, and more, has come in.
		idleFrames := func() {
			t.Helper()
			from := ours.Stats().FramesReceived
			waitFor(t, func() bool { return ours.Stats().FramesReceived >= from+keepAliveIdleFrames })
		}
		idleFrames()
		st, err := ours.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoCheck(st, st.CloseWrite, randomBytes(4<<20, 9)); err != nil {
			t.Fatal(err)
		}
		st.Close()
		idleFrames() // idle again
		if ours.Err() != nil || peerEnded(p) {
			t.Fatalf("keepalive ended a session: ours %v, theirs ended %v", ours.Err(), peerEnded(p))
		}
		if n := ours.Stats().FramesReceived; n < 20 {
			t.Errorf("only %d frames received; the peer's keepalive pings missing?", n)
		}
	})
}

// TestPeerCloseIsOrderly: when the peer's Close sends GoAway and hangs up, this session's
// Err says so (ErrRemoteGoAway); a connection dropped without GoAway is a lost connection
// (io.ErrUnexpectedEOF, or a reset if the dropped end had unread input). Both match
// ErrSessionClosed, neither io.EOF.
func TestPeerCloseIsOrderly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hangUp    func(server *Session, sc net.Conn)
		is, isNot error
	}{
		{"close", func(server *Session, _ net.Conn) { server.Close() }, ErrRemoteGoAway, io.ErrUnexpectedEOF},
		{"conn-drop", func(_ *Session, sc net.Conn) { sc.Close() }, ErrSessionClosed, ErrRemoteGoAway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := tcpPair(t)
			client, server := startPair(t, cc, sc, nil, nil)
			ctx := testCtx(t, 10*time.Second)
			st, sst := openedStream(t, ctx, client, server)
			defer st.Close()
			defer sst.Close()
			tc.hangUp(server, sc)
			select {
			case <-client.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("client session still running 5 s after the peer hung up")
			}
			err := client.Err()
			if !errors.Is(err, tc.is) || errors.Is(err, tc.isNot) || !errors.Is(err, ErrSessionClosed) || errors.Is(err, io.EOF) {
				t.Fatalf("Err() = %v, want %v and ErrSessionClosed, not %v or io.EOF", err, tc.is, tc.isNot)
			}
			if _, err := st.Read(make([]byte, 1)); !errors.Is(err, tc.is) {
				t.Errorf("Read after the session ended: %v, want %v", err, tc.is)
			}
		})
	}
}
