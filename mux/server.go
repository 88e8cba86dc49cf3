package mux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrServerClosed is returned by SessionServer's Serve after Close or Shutdown was called.
var ErrServerClosed = errors.New("mux: server closed")

// SessionServer runs a server-side session on every connection a net.Listener accepts and
// ends them all on Close or Shutdown: the loop that http.Server runs for HTTP, for mux. (It
// is not called Server because Server is the function that starts one session.)
//
//	srv := &mux.SessionServer{Handler: func(sess *mux.Session) {
//		for {
//			st, err := sess.AcceptStream(context.Background())
//			if err != nil {
//				return // the session ended
//			}
//			go serveStream(st)
//		}
//	}}
//	go srv.Serve(ln)
//	...
//	srv.Shutdown(ctx) // GoAway, wait for streams to finish; then srv.Close() if ctx ran out
//
// Goroutines and ownership: Serve runs in the caller's goroutine and owns the listener's
// Accept loop. For each accepted connection it starts a session (Server(conn, Config)) and one
// goroutine that runs Handler(sess); the session owns the connection, and the handler owns the
// session while it runs (the server only sends GoAway on it in Shutdown, or ends it in Close
// or Shutdown). When Handler returns, that goroutine closes the session and waits for the
// session's own goroutines (Session.Wait), then forgets it. Goroutines a handler starts itself
// are the handler's: the server does not wait for them. While Shutdown waits, it runs one
// goroutine per session that closes the session once its last stream has ended; they return
// before Shutdown does. The server's fields are read by Serve: set them before the first
// Serve. Its methods are safe for concurrent use, and Serve may be called with several
// listeners.
type SessionServer struct {
	// Handler is called in its own goroutine for each session; it must not be nil. The session
	// is closed when Handler returns, so Handler returns when it is done with the session
	// (typically when AcceptStream fails because the session ended).
	Handler func(*Session)

	// Config configures each session; nil means DefaultConfig().
	Config *Config

	mu        sync.Mutex
	closed    bool // Close or Shutdown was called: no new listeners or sessions
	listeners map[net.Listener]struct{}
	sessions  map[*Session]struct{} // sessions whose handler has not finished yet
	idle      chan struct{}         // closed when sessions is empty after closed is set; nil until needed
}

// Serve accepts connections on ln and runs a session with Handler on each until ln fails or
// the server is closed. It closes ln when it returns. After Close or Shutdown it returns
// ErrServerClosed; otherwise the error from ln.Accept (it does not retry), or an error
// wrapping ErrInvalidConfig when Config is invalid or Handler is nil (ln is then not used).
func (srv *SessionServer) Serve(ln net.Listener) error {
	if srv.Handler == nil {
		ln.Close()
		return fmt.Errorf("%w: SessionServer.Handler is nil", ErrInvalidConfig)
	}
	if srv.Config != nil {
		if err := srv.Config.Validate(); err != nil {
			ln.Close()
			return err
		}
	}
	if !srv.track(func() { srv.listeners[ln] = struct{}{} }) {
		ln.Close()
		return ErrServerClosed
	}
	defer func() {
		srv.mu.Lock()
		delete(srv.listeners, ln)
		srv.mu.Unlock()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if srv.isClosed() {
				return ErrServerClosed
			}
			return err
		}
		sess, err := Server(conn, srv.Config)
		if err != nil { // not reached: Config was validated above
			conn.Close()
			return err
		}
		if !srv.track(func() { srv.sessions[sess] = struct{}{} }) {
			sess.Close()
			sess.Wait()
			return ErrServerClosed
		}
		go srv.handle(sess)
	}
}

// track runs add with srv.mu held, after making the maps, unless the server is closed.
func (srv *SessionServer) track(add func()) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return false
	}
	if srv.listeners == nil {
		srv.listeners = make(map[net.Listener]struct{})
		srv.sessions = make(map[*Session]struct{})
	}
	add()
	return true
}

func (srv *SessionServer) isClosed() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closed
}

// handle runs Handler on sess, then closes sess, waits for its goroutines and forgets it.
func (srv *SessionServer) handle(sess *Session) {
	defer func() {
		sess.Close()
		sess.Wait()
		srv.mu.Lock()
		delete(srv.sessions, sess)
		if len(srv.sessions) == 0 && srv.idle != nil {
			close(srv.idle)
			srv.idle = nil
		}
		srv.mu.Unlock()
	}()
	srv.Handler(sess)
}

// shut marks the server closed, closes its listeners and returns its sessions and a channel
// closed once every handler has finished and its session has ended.
func (srv *SessionServer) shut() ([]*Session, <-chan struct{}) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.closed = true
	for ln := range srv.listeners {
		ln.Close()
	}
	sessions := make([]*Session, 0, len(srv.sessions))
	for sess := range srv.sessions {
		sessions = append(sessions, sess)
	}
	if len(sessions) == 0 {
		return nil, closedChan
	}
	if srv.idle == nil {
		srv.idle = make(chan struct{})
	}
	return sessions, srv.idle
}

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Close closes the listeners, then closes every session as Session.Close does (frames
// queued before it go out before its GoAway; blocked calls on the sessions and their streams
// fail with ErrSessionClosed), and waits for every handler to return and every session's
// goroutines to end. A handler that does not return once its session has ended keeps Close
// waiting. Serve returns ErrServerClosed afterwards. Close returns nil; calling it again, or
// after Shutdown, closes what is left.
func (srv *SessionServer) Close() error {
	sessions, idle := srv.shut()
	for _, sess := range sessions { // all sessions end at once, ...
		sess.end(ErrSessionClosed, endGraceful)
	}
	for _, sess := range sessions { // ... then each one's last frames are waited for
		<-sess.flushed
	}
	<-idle
	return nil
}

// Shutdown ends the server gracefully: it closes the listeners, sends GoAway on every session
// (the peer can open no new streams; existing ones go on), closes each session as soon as its
// last stream has ended in both directions, and waits for every handler to return and every
// session's goroutines to end. It returns nil then, or ctx's error if ctx ends first; the
// sessions still running are then left as they are, for a later Close to end. While it waits,
// Shutdown runs one goroutine per session that watches for that session's last stream; they
// have returned when Shutdown returns. Serve returns ErrServerClosed afterwards.
func (srv *SessionServer) Shutdown(ctx context.Context) error {
	sessions, idle := srv.shut()
	stop := make(chan struct{})
	var watchers sync.WaitGroup
	defer func() {
		close(stop)
		watchers.Wait()
	}()
	for _, sess := range sessions {
		sess.GoAway() // an error means the session has ended already
		watchers.Go(func() {
			select {
			case <-sess.idleAfterGoAway():
				sess.end(ErrSessionClosed, endGraceful) // the handler's Close waits for the flush
			case <-sess.Done():
			case <-stop:
			}
		})
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
