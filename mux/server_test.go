package mux

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// The tests in this file run a SessionServer on loopback TCP against real clients: a mux
// Client and a hashicorp/yamux client. Each waits for the state it needs (a stream echoed, the
// server's GoAway sent), never sleeps.

// serverClient is one client session connected to a SessionServer.
type serverClient struct {
	open  func() (st net.Conn, closeWrite func() error, err error)
	done  <-chan struct{} // closed when the client session has ended
	close func()
}

// serverPeers are the client implementations a SessionServer is tested against.
var serverPeers = []struct {
	name string
	dial func(t *testing.T, addr string) serverClient
}{
	{"mux", func(t *testing.T, addr string) serverClient {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := Client(conn, interopConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close(); sess.Wait() })
		return serverClient{
			open: func() (net.Conn, func() error, error) {
				st, err := sess.Open(context.Background())
				if err != nil {
					return nil, nil, err
				}
				return st, st.CloseWrite, nil
			},
			done:  sess.Done(),
			close: func() { sess.Close(); sess.Wait() },
		}
	}},
	{"hashicorp", func(t *testing.T, addr string) serverClient {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := yamux.Client(conn, hcConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sess.Close() })
		return serverClient{
			open: func() (net.Conn, func() error, error) {
				st, err := sess.OpenStream()
				if err != nil {
					return nil, nil, err
				}
				return st, st.Close, nil // hashicorp/yamux's Close is the half-close
			},
			done:  sess.CloseChan(),
			close: func() { sess.Close() },
		}
	}},
}

// echoServer is a SessionServer whose handler echoes every stream until the peer's FIN,
// then half-closes and closes it; the handler waits for its stream goroutines before
// returning. Every session it serves is sent on sessions (buffered: 16).
type echoServer struct {
	srv      *SessionServer
	addr     string
	served   chan error // Serve's result
	sessions chan *Session
}

func startEchoServer(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String(), served: make(chan error, 1), sessions: make(chan *Session, 16)}
	e.srv = &SessionServer{Config: interopConfig(), Handler: func(sess *Session) {
		e.sessions <- sess
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			st, err := sess.AcceptStream(context.Background())
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(st, st)
				st.CloseWrite()
				st.Close()
			})
		}
	}}
	go func() { e.served <- e.srv.Serve(ln) }()
	t.Cleanup(func() { e.srv.Close() })
	return e
}

// serveResult waits for Serve to return and checks that it returned ErrServerClosed.
func (e *echoServer) serveResult(t *testing.T) {
	t.Helper()
	select {
	case err := <-e.served:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5 s of the server closing")
	}
}

// waitClosed waits up to 5 s for c to be closed.
func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5 s", what)
	}
}

// echoOnce opens a stream on c, checks an echo of msg and returns the stream still open in
// both directions.
func echoOnce(t *testing.T, c serverClient, msg string) (net.Conn, func() error) {
	t.Helper()
	st, closeWrite, err := c.open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := st.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: got %q, %v; want %q", buf, err, msg)
	}
	return st, closeWrite
}

// TestSessionServerServesEveryPeer: sessions from several clients of each kind run at once,
// each carrying several echoed streams; Close ends every session (the clients see theirs end),
// waits for the handlers, and makes Serve return ErrServerClosed.
func TestSessionServerServesEveryPeer(t *testing.T) {
	e := startEchoServer(t)
	var clients []serverClient
	for _, p := range serverPeers {
		for range 2 {
			clients = append(clients, p.dial(t, e.addr))
		}
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		for range 3 {
			wg.Go(func() {
				st, closeWrite, err := c.open()
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				defer st.Close()
				if err := echoCheck(st, closeWrite, randomBytes(100<<10, 1)); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if err := e.srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.serveResult(t)
	for i, c := range clients {
		waitClosed(t, c.done, serverPeers[i/2].name+" client session ends after the server's Close")
	}
}

// TestSessionServerShutdownWaitsForStreams: Shutdown sends GoAway, so a stream opened after it
// is not served, while a stream opened before it goes on carrying data; Shutdown returns only
// once that stream has ended in both directions, and the client then sees its session end.
func TestSessionServerShutdownWaitsForStreams(t *testing.T) {
	for _, p := range serverPeers {
		t.Run(p.name, func(t *testing.T) {
			e := startEchoServer(t)
			c := p.dial(t, e.addr)
			st, closeWrite := echoOnce(t, c, "before")
			sess := <-e.sessions

			shut := make(chan error, 1)
			go func() { shut <- e.srv.Shutdown(context.Background()) }()
			waitFor(t, func() bool { sess.mu.Lock(); defer sess.mu.Unlock(); return sess.localGoAway })
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned %v while a stream was open", err)
			default:
			}

			// A stream opened now fails to open (the GoAway arrived) or is refused with RST.
			if late, _, err := c.open(); err == nil {
				late.SetReadDeadline(time.Now().Add(5 * time.Second))
				late.Write([]byte("late"))
				if n, err := late.Read(make([]byte, 8)); err == nil || errors.Is(err, io.EOF) || isTimeout(err) {
					t.Fatalf("a stream opened after Shutdown's GoAway: Read = %d, %v; want a reset", n, err)
				}
				late.Close()
			}

			// The stream opened before Shutdown still works to its end.
			if err := echoCheck(st, closeWrite, []byte("after")); err != nil {
				t.Fatal(err)
			}
			st.Close()
			waitShutdown(t, shut)
			e.serveResult(t)
			waitClosed(t, c.done, "client session ends after Shutdown")
		})
	}
}

// isTimeout reports whether err is a net.Error timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSessionServerShutdownContextThenClose: when Shutdown's ctx ends while a stream is open,
// Shutdown returns ctx's error and leaves the session running (the stream still echoes); a
// later Close ends it, and the client's blocked Read fails.
func TestSessionServerShutdownContextThenClose(t *testing.T) {
	for _, p := range serverPeers {
		t.Run(p.name, func(t *testing.T) {
			e := startEchoServer(t)
			c := p.dial(t, e.addr)
			st, _ := echoOnce(t, c, "one")
			sess := <-e.sessions

			ctx, cancel := context.WithCancel(context.Background())
			shut := make(chan error, 1)
			go func() { shut <- e.srv.Shutdown(ctx) }()
			waitFor(t, func() bool { sess.mu.Lock(); defer sess.mu.Unlock(); return sess.localGoAway })
			cancel()
			if err := <-shut; !errors.Is(err, context.Canceled) {
				t.Fatalf("Shutdown = %v, want context.Canceled", err)
			}
			st.Write([]byte("two"))
			buf := make([]byte, 3)
			if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "two" {
				t.Fatalf("echo after Shutdown gave up: %q, %v", buf, err)
			}

			readErr := make(chan error, 1)
			go func() { _, err := st.Read(buf); readErr <- err }()
			if err := e.srv.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-readErr:
				if err == nil || isTimeout(err) {
					t.Fatalf("blocked Read after the server's Close = %v, want the stream's end", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("blocked Read still waits 5 s after the server's Close")
			}
			e.serveResult(t)
			waitClosed(t, c.done, "client session ends after Close")
			st.Close()
		})
	}
}

// TestSessionServerHandlerReturnClosesSession: when the handler returns, the server closes its
// session, and the client sees the session end (mux: with the server's GoAway).
func TestSessionServerHandlerReturnClosesSession(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &SessionServer{Config: interopConfig(), Handler: func(*Session) {}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, err := Client(conn, interopConfig())
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, client.Done(), "client session ends when the server's handler returns")
	if err := client.Err(); !errors.Is(err, ErrRemoteGoAway) {
		t.Errorf("client session error = %v, want ErrRemoteGoAway (an orderly close)", err)
	}
	client.Close()
	client.Wait()
	srv.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
}

// TestSessionServerServeErrors: Serve refuses a nil Handler and an invalid Config with an
// error wrapping ErrInvalidConfig, returns ErrServerClosed after Close, and closes ln in
// every case.
func TestSessionServerServeErrors(t *testing.T) {
	bad := interopConfig()
	bad.AcceptBacklog = -1
	for _, tc := range []struct {
		name string
		srv  *SessionServer
		want error
	}{
		{"nil handler", &SessionServer{}, ErrInvalidConfig},
		{"invalid config", &SessionServer{Handler: func(*Session) {}, Config: bad}, ErrInvalidConfig},
		{"closed", func() *SessionServer {
			s := &SessionServer{Handler: func(*Session) {}}
			s.Close()
			return s
		}(), ErrServerClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.srv.Serve(ln); !errors.Is(err, tc.want) {
				t.Fatalf("Serve = %v, want %v", err, tc.want)
			}
			if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept on the listener after Serve returned: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestSessionServerShutdownClosesEachSessionWhenIdle: Shutdown closes a session as soon as its
// last stream has ended, while it still waits for another session's stream.
func TestSessionServerShutdownClosesEachSessionWhenIdle(t *testing.T) {
	e := startEchoServer(t)
	c1, c2 := serverPeers[0].dial(t, e.addr), serverPeers[0].dial(t, e.addr)
	st1, closeWrite1 := echoOnce(t, c1, "one")
	st2, closeWrite2 := echoOnce(t, c2, "two")
	sessions := []*Session{<-e.sessions, <-e.sessions}

	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(context.Background()) }()
	for _, sess := range sessions {
		waitFor(t, func() bool { sess.mu.Lock(); defer sess.mu.Unlock(); return sess.localGoAway })
	}
	if err := echoCheck(st1, closeWrite1, []byte("last")); err != nil {
		t.Fatal(err)
	}
	st1.Close()
	waitClosed(t, c1.done, "the first client's session ends once its last stream has")
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while the second session had a stream open", err)
	default:
	}
	if err := echoCheck(st2, closeWrite2, []byte("last")); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	waitShutdown(t, shut)
	e.serveResult(t)
	waitClosed(t, c2.done, "the second client's session ends")
}

// waitShutdown waits for Shutdown's result on shut, which must be nil and come within
// 5 s of the last stream ending.
func waitShutdown(t *testing.T, shut <-chan error) {
	t.Helper()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return within 5 s of the last stream ending")
	}
}
