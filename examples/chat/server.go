package main

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"github.com/muxpool/muxpool/mux"
)

// outboxSize is how many lines may wait for one client before senders wait for it.
const outboxSize = 256

// DefaultSlowTimeout is NewServer's Server.SlowTimeout.
const DefaultSlowTimeout = 5 * time.Second

// handshakeTimeout bounds how long a new client may take to open its send stream and
// name itself.
const handshakeTimeout = 10 * time.Second

// Server is the chat server. Each TCP client gets one mux session: the client opens a
// stream to send its lines, and the server opens a stream to push every chat line to it.
type Server struct {
	// SlowTimeout is how long a sender waits for a client whose outbox is full before that
	// client is disconnected, so one stuck client cannot hold up the room for long. Set it
	// before Serve.
	SlowTimeout time.Duration

	mu       sync.Mutex
	members  map[*member]struct{}
	sessions map[*mux.Session]struct{}
	closed   bool
	ln       net.Listener
	wg       sync.WaitGroup
}

// member is one joined client: its name, its session, the queue its writer drains onto
// its push stream, and gone, closed when it stops being a member.
type member struct {
	name string
	sess *mux.Session
	push *mux.Stream
	out  chan string
	gone chan struct{}
}

// NewServer returns a server that is not yet serving.
func NewServer() *Server {
	return &Server{SlowTimeout: DefaultSlowTimeout, members: make(map[*member]struct{}), sessions: make(map[*mux.Session]struct{})}
}

// Serve accepts clients on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		sess, err := mux.Server(conn, nil)
		if err != nil {
			conn.Close()
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			sess.Close()
			sess.Wait()
			continue
		}
		s.sessions[sess] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(sess)
	}
}

// Online returns how many clients have joined and not left.
func (s *Server) Online() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members)
}

// Close stops accepting, disconnects every client and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for m := range s.members {
		delete(s.members, m)
		close(m.gone)
	}
	sessions := make([]*mux.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.Close()
	}
	s.wg.Wait()
	return err
}

// handle runs one client's session: handshake, then its reader; a writer goroutine
// drains the member's queue onto the push stream.
func (s *Server) handle(sess *mux.Session) {
	defer s.wg.Done()
	defer func() {
		sess.Close()
		sess.Wait()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	in, err := sess.AcceptStream(ctx)
	if err != nil {
		return
	}
	in.SetReadDeadline(time.Now().Add(handshakeTimeout))
	lines := bufio.NewScanner(in)
	if !lines.Scan() || validName(lines.Text()) != nil {
		in.Reset()
		return
	}
	in.SetReadDeadline(time.Time{})
	push, err := sess.Open(ctx)
	if err != nil {
		return
	}
	m := &member{name: lines.Text(), sess: sess, push: push, out: make(chan string, outboxSize), gone: make(chan struct{})}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.write(m, push)
		sess.Close() // the member is gone (left, too slow, or server closing)
	}()
	if s.join(m) {
		for lines.Scan() {
			s.broadcast(m.name + ": " + lines.Text())
		}
		if s.leave(m) {
			s.broadcast("* " + m.name + " left")
		}
	}
	<-writerDone
}

// write copies m's queued lines to its push stream until m is gone, then writes what is
// still queued (a leaving client still gets its own last lines).
func (s *Server) write(m *member, push *mux.Stream) {
	send := func(line string) bool {
		push.SetWriteDeadline(time.Now().Add(s.SlowTimeout))
		_, err := push.Write([]byte(line + "\n"))
		return err == nil
	}
	for {
		select {
		case line := <-m.out:
			if !send(line) {
				s.leave(m)
				return
			}
		case <-m.gone:
			for {
				select {
				case line := <-m.out:
					if !send(line) {
						return
					}
				default:
					return
				}
			}
		}
	}
}
